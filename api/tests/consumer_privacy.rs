//! A property of the whole API: for random stores and the queries a consumer can make (list,
//! read each entity by its pseudonym, its links, the change feed, GraphQL traversal), no
//! identifiable value held in the store, no real entity id and no exact day of any date
//! (the agreement shows dates to the month, metadata included) ever appears in an answer;
//! ages do not move with the day a consumer reads at, so they cannot be bisected to a
//! birthday; and a person who opted out answers exactly as one that does not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use actix_web::test as web_test;
use pole_api::{create_app, ApiConfig, AppState};
use pole_store::{BackendKind, Store, StoreOptions, TransactionRequest};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Person {
    family: String,
    given: String,
    birth: String,
    postcode: String,
    line1: String,
    client: String,
    opted_out: bool,
    events: u8,
    /// The day of the month of the person's referrals (2 to 28: the first of a month is
    /// what a date coarsened to its month shows).
    referral_day: u32,
}

fn name() -> impl Strategy<Value = String> {
    // A marker no JSON key or code contains, then letters.
    "[A-Z][a-z]{5,10}".prop_map(|s| format!("Qx{s}"))
}

fn person() -> impl Strategy<Value = Person> {
    (
        name(),
        name(),
        (1920u32..1990, 1u32..13, 1u32..29),
        ("[A-Z]{2}[0-9]", "[0-9][A-Z]{2}"),
        "[0-9]{1,3} [A-Z][a-z]{4,8} (Road|Lane|Close)",
        "[A-Z]{3}[0-9]{5}",
        any::<bool>(),
        0u8..3,
        2u32..29,
    )
        .prop_map(|(family, given, (y, m, d), (out, inw), line1, client, opted_out, events, referral_day)| {
            Person {
                family,
                given,
                birth: format!("{y:04}-{m:02}-{d:02}"),
                postcode: format!("{out} {inw}"),
                line1,
                client,
                opted_out,
                events,
                referral_day,
            }
        })
}

fn commit(store: &Store, changes: Value) -> Value {
    let request: TransactionRequest = serde_json::from_value(
        json!({"actor": "test", "role": "admin", "source": {"council": "305"}, "changes": changes}),
    )
    .unwrap();
    serde_json::to_value(store.commit(request).unwrap().unwrap()).unwrap()
}

/// Loads the people (each with an address and some referrals); answers every identifiable
/// string, every real entity id and every exact day a consumer must not see, and the
/// people's ids.
fn load(store: &Store, people: &[Person]) -> (Vec<String>, Vec<String>) {
    let mut secrets = Vec::new();
    let mut person_ids = Vec::new();
    for p in people {
        let mut changes = vec![
            json!({"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": p.family, "given_name": p.given, "birth_date": p.birth,
                        "opted_out": p.opted_out, "gender": "1"},
                "identifiers": [{"system": "council:305:client", "value": p.client}]}}),
            json!({"target": {"ref": "a"}, "op": {"op": "create", "type": "address",
                "set": {"line1": p.line1, "postcode": p.postcode}}}),
            json!({"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}}),
        ];
        let referral = format!("2024-03-{:02}", p.referral_day);
        for i in 0..p.events {
            let r = format!("e{i}");
            changes.push(json!({"target": {"ref": r}, "valid_time": format!("{referral}T10:30:00Z"),
                "op": {"op": "create", "type": "referral", "set": {"referral_date": referral}}}));
            changes.push(json!({"target": {"ref": r}, "valid_time": format!("{referral}T10:30:00Z"),
                "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}}));
        }
        let committed = commit(store, json!(changes));
        person_ids.push(committed["refs"]["p"].as_str().unwrap().to_owned());
        for id in committed["refs"].as_object().unwrap().values() {
            secrets.push(id.as_str().unwrap().to_owned());
        }
        if p.events > 0 {
            secrets.push(referral);
        }
        secrets.extend([
            p.family.clone(),
            p.given.clone(),
            p.birth.clone(),
            p.postcode.clone(),
            p.postcode.replace(' ', ""),
            p.line1.clone(),
            p.client.clone(),
        ]);
    }
    // The day the store recorded all this: a consumer sees its month alone.
    let today = pole_model::Timestamp::now().date();
    if today.format("%d").to_string() != "01" {
        secrets.push(today.format("%Y-%m-%d").to_string());
    }
    (secrets, person_ids)
}

fn check(body: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    for secret in secrets {
        prop_assert!(!body.contains(secret.as_str()), "{} reached a consumer in {}", secret, body);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn no_identifiable_value_reaches_a_consumer(people in prop::collection::vec(person(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store"), StoreOptions { backend: BackendKind::Memory, ..Default::default() }).unwrap();
        let (secrets, person_ids) = load(&store, &people);
        let visible_people = people.iter().filter(|p| !p.opted_out).count();
        let outcome: Result<(), TestCaseError> = actix_web::rt::System::new().block_on(async {
            let app = web_test::init_service(create_app(
                AppState::new(store.clone(), support::access(&store, dir.path())).unwrap(),
                ApiConfig::default(),
            ))
            .await;
            let consumer = support::bearer("consumer", None, Some("research"));
            let get = |uri: String| {
                web_test::TestRequest::get().uri(&uri).insert_header(("Authorization", consumer.clone())).to_request()
            };
            let mut bodies = Vec::new();
            let response = web_test::call_service(&app, get("/v1/entities?kind=person&limit=1000".into())).await;
            prop_assert_eq!(response.status().as_u16(), 200);
            let page: Value = serde_json::from_slice(&web_test::read_body(response).await).unwrap();
            let listed: Vec<String> = page["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
            prop_assert_eq!(listed.len(), visible_people, "opted-out people are not listed");
            bodies.push(page.to_string());
            let events = web_test::call_service(&app, get("/v1/entities?kind=event&limit=1000".into())).await;
            let events: Value = serde_json::from_slice(&web_test::read_body(events).await).unwrap();
            bodies.push(events.to_string());
            let mut ids = listed.clone();
            ids.extend(events["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()));
            for id in &ids {
                for uri in [format!("/v1/entities/{id}"), format!("/v1/entities/{id}/links")] {
                    let response = web_test::call_service(&app, get(uri.clone())).await;
                    prop_assert_eq!(response.status().as_u16(), 200, "{}", uri);
                    bodies.push(String::from_utf8(web_test::read_body(response).await.to_vec()).unwrap());
                }
                let query = json!({"query": "query($id: ID!) { entity(id: $id) { id type links { role entity { id type links { entity { id } } } } } }", "variables": {"id": id}});
                let request = web_test::TestRequest::post()
                    .uri("/graphql")
                    .insert_header(("Authorization", consumer.clone()))
                    .set_json(query)
                    .to_request();
                let response = web_test::call_service(&app, request).await;
                bodies.push(String::from_utf8(web_test::read_body(response).await.to_vec()).unwrap());
            }
            // Ages: the same band whatever day the consumer reads at (days from now, when the
            // people exist in valid time, over ten years: every band edge is crossed).
            let today = pole_model::Timestamp::now().date();
            for id in &listed {
                let mut bands = std::collections::BTreeSet::new();
                for step in 0..30u64 {
                    let day = (today + chrono::Days::new(step * 123)).format("%Y-%m-%d");
                    let response = web_test::call_service(&app, get(format!("/v1/entities/{id}?valid_at={day}"))).await;
                    let body: Value = serde_json::from_slice(&web_test::read_body(response).await).unwrap();
                    if let Some(band) = body["attributes"]["birth_date"].as_str() {
                        bands.insert(band.to_owned());
                    }
                }
                prop_assert!(bands.len() <= 1, "the age band moved with the read's day: {:?}", bands);
            }
            // An opted-out person's pseudonym answers as a pseudonym of nobody does.
            let pseudonyms = pole_auth::Pseudonymiser::new(b"pseudonyms for the tests", "research");
            let nobody = pseudonyms.pseudonym(&pole_model::EntityId::new("01JNOBODY000000000000000000").unwrap());
            let missing = web_test::call_service(&app, get(format!("/v1/entities/{nobody}"))).await;
            prop_assert_eq!(missing.status().as_u16(), 404);
            let missing = String::from_utf8(web_test::read_body(missing).await.to_vec()).unwrap();
            for (p, id) in people.iter().zip(&person_ids) {
                if !p.opted_out {
                    continue;
                }
                let pseudonym = pseudonyms.pseudonym(&pole_model::EntityId::new(id.clone()).unwrap());
                for uri in [format!("/v1/entities/{pseudonym}"), format!("/v1/entities/{pseudonym}?as_of=1")] {
                    let response = web_test::call_service(&app, get(uri.clone())).await;
                    prop_assert_eq!(response.status().as_u16(), 404, "{}", uri);
                    let body = String::from_utf8(web_test::read_body(response).await.to_vec()).unwrap();
                    prop_assert_eq!(body.replace(&pseudonym, "ID"), missing.replace(&nobody, "ID"));
                }
            }
            let feed = web_test::call_service(&app, get("/v1/journal?limit=1000".into())).await;
            prop_assert_eq!(feed.status().as_u16(), 200);
            bodies.push(String::from_utf8(web_test::read_body(feed).await.to_vec()).unwrap());
            for body in &bodies {
                check(body, &secrets)?;
            }
            Ok(())
        });
        outcome?;
    }
}
