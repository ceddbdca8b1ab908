//! A property of the whole API: for random stores and the queries a consumer can make (list,
//! read each entity by its pseudonym, its links, the change feed, GraphQL traversal), no
//! identifiable value held in the store, and no real entity id, ever appears in an answer.

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
    )
        .prop_map(|(family, given, (y, m, d), (out, inw), line1, client, opted_out, events)| Person {
            family,
            given,
            birth: format!("{y:04}-{m:02}-{d:02}"),
            postcode: format!("{out} {inw}"),
            line1,
            client,
            opted_out,
            events,
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
/// string and every real entity id.
fn load(store: &Store, people: &[Person]) -> Vec<String> {
    let mut secrets = Vec::new();
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
        for i in 0..p.events {
            let r = format!("e{i}");
            changes.push(json!({"target": {"ref": r}, "op": {"op": "create", "type": "referral",
                "set": {"referral_date": "2024-03-15"}}}));
            changes.push(json!({"target": {"ref": r}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}}));
        }
        let committed = commit(store, json!(changes));
        for id in committed["refs"].as_object().unwrap().values() {
            secrets.push(id.as_str().unwrap().to_owned());
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
    secrets
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
        let secrets = load(&store, &people);
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
