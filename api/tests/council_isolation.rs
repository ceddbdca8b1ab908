//! A property of the whole API: for random stores built from several councils' random
//! submissions (people, some known to several councils by one NHS number, their addresses
//! and referrals, later corrections) and random writes each council aims at records of
//! every council, no council ever sees a value, identifier or provenance another council
//! contributed, in any answer it can get (listing, each record, its links, history and
//! diff, search, identifier look-up, the change feed, GraphQL); no write outside its own
//! records succeeds; and a refusal of another council's record reads exactly as one of an
//! id that names nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use actix_web::test as web_test;
use pole_api::{create_app, ApiConfig, AppState};
use pole_store::{BackendKind, Store, StoreOptions, TransactionRequest};
use proptest::prelude::*;
use serde_json::{json, Value};

const COUNCILS: [&str; 3] = ["C1", "C2", "C3"];

/// Valid NHS numbers (Modulus 11), shared out among the councils' people.
const NHS: [&str; 4] = ["9434765005", "9434765013", "9434765021", "9434765048"];

#[derive(Debug, Clone)]
struct Submission {
    council: usize,
    /// Index into `NHS`, past its end for a person without one.
    nhs: usize,
    referrals: u8,
    corrected: bool,
}

#[derive(Debug, Clone)]
struct Attempt {
    council: usize,
    op: u8,
    target: usize,
}

fn submissions() -> impl Strategy<Value = Vec<Submission>> {
    prop::collection::vec(
        (0..COUNCILS.len(), 0..NHS.len() + 2, 0u8..3, any::<bool>())
            .prop_map(|(council, nhs, referrals, corrected)| Submission { council, nhs, referrals, corrected }),
        2..8,
    )
}

fn attempts() -> impl Strategy<Value = Vec<Attempt>> {
    prop::collection::vec(
        (0..COUNCILS.len(), 0u8..5, 0usize..16).prop_map(|(council, op, target)| Attempt { council, op, target }),
        1..12,
    )
}

/// A council's marker: every value it submits contains it, and no other council's answer may.
fn marker(council: usize) -> String {
    format!("Qzmark{}", COUNCILS[council])
}

/// Commits the councils' submissions directly; answers each person record with its council.
fn load(store: &Store, submissions: &[Submission]) -> Vec<(String, usize)> {
    let mut people = Vec::new();
    for (n, s) in submissions.iter().enumerate() {
        let code = COUNCILS[s.council];
        let mark = marker(s.council);
        let mut identifiers = vec![json!({"system": format!("council:{code}:client"), "value": format!("{mark}-{n}")})];
        if let Some(nhs) = NHS.get(s.nhs) {
            identifiers.push(json!({"system": "nhs-number", "value": nhs}));
        }
        let mut changes = vec![
            json!({"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": format!("{mark}fam{n}"), "given_name": format!("{mark}giv"), "gender": "1"},
                "identifiers": identifiers}}),
            json!({"target": {"ref": "a"}, "op": {"op": "create", "type": "address",
                "set": {"line1": format!("{n} {mark} Road"), "postcode": "LS1 4AP"}}}),
            json!({"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}}),
        ];
        for r in 0..s.referrals {
            let name = format!("r{r}");
            changes.push(json!({"target": {"ref": name}, "op": {"op": "create", "type": "referral",
                "set": {"referral_date": "2024-03-15", "referral_source": format!("{mark} team")}}}));
            changes.push(json!({"target": {"ref": name}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}}));
        }
        let request: TransactionRequest = serde_json::from_value(json!({"actor": format!("loader-{code}"),
            "role": "council", "source": {"council": code}, "changes": changes}))
        .unwrap();
        let committed = store.commit(request).unwrap().unwrap();
        let person = committed.refs["p"].to_string();
        if s.corrected {
            let request: TransactionRequest = serde_json::from_value(json!({"actor": format!("loader-{code}"),
                "role": "council", "source": {"council": code}, "changes": [
                    {"target": {"entity": person}, "op": {"op": "update", "set": {"given_name": format!("{mark}corrected")}}}]}))
            .unwrap();
            store.commit(request).unwrap().unwrap();
        }
        people.push((person, s.council));
    }
    people
}

fn write(op: u8, target: &str) -> Value {
    let change = match op {
        0 => json!({"target": {"entity": target}, "op": {"op": "update", "set": {"family_name": "Intruder"}}}),
        1 => json!({"target": {"entity": target}, "op": {"op": "retract", "reason": "not ours"}}),
        2 => json!({"target": {"entity": target}, "expected_version": 1,
            "op": {"op": "update", "set": {"gender": "2"}}}),
        3 => json!({"target": {"entity": target}, "op": {"op": "update",
            "add_identifiers": [{"system": "nhs-number", "value": NHS[0]}]}}),
        _ => json!({"target": {"entity": target}, "op": {"op": "unlink", "role": "resides_at",
            "to": {"entity": target}}}),
    };
    json!({ "changes": [change] })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn no_council_sees_or_changes_another_councils_records(submissions in submissions(), attempts in attempts()) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store"), StoreOptions { backend: BackendKind::Memory, ..Default::default() }).unwrap();
        let people = load(&store, &submissions);
        let outcome: Result<(), TestCaseError> = actix_web::rt::System::new().block_on(async {
            let app = web_test::init_service(create_app(
                AppState::new(store.clone(), support::access(&store, dir.path())).unwrap(),
                ApiConfig::default(),
            ))
            .await;
            let token = |c: usize| support::bearer("council", Some(COUNCILS[c]), None);
            let admin = support::bearer("admin", None, None);
            let call = |auth: String, method: &str, uri: String, body: Option<Value>| {
                let request = match method {
                    "POST" => web_test::TestRequest::post().set_json(body.unwrap_or(Value::Null)),
                    _ => web_test::TestRequest::get(),
                };
                request.uri(&uri).insert_header(("Authorization", auth)).to_request()
            };
            // Writes each council aims at records of every council and at ids of nobody.
            for attempt in &attempts {
                let (target, owner) = people[attempt.target % people.len()].clone();
                let nobody = "01JNOBODY00000000000000000";
                let history = |id: String| call(admin.clone(), "GET", format!("/v1/entities/{id}/history"), None);
                let before = web_test::read_body(web_test::call_service(&app, history(target.clone())).await).await;
                let theirs = web_test::call_service(&app, call(token(attempt.council), "POST", "/v1/transactions".into(), Some(write(attempt.op, &target)))).await;
                let status = theirs.status().as_u16();
                let theirs = String::from_utf8(web_test::read_body(theirs).await.to_vec()).unwrap();
                if owner != attempt.council {
                    prop_assert_eq!(status, 403, "{:?} on another council's record: {}", attempt, theirs);
                    let none = web_test::call_service(&app, call(token(attempt.council), "POST", "/v1/transactions".into(), Some(write(attempt.op, nobody)))).await;
                    prop_assert_eq!(none.status().as_u16(), 403);
                    let none = String::from_utf8(web_test::read_body(none).await.to_vec()).unwrap();
                    prop_assert_eq!(theirs.replace(&target, "ID"), none.replace(nobody, "ID"));
                    let after = web_test::read_body(web_test::call_service(&app, history(target.clone())).await).await;
                    prop_assert_eq!(before, after, "a refused write changed the record");
                } else {
                    prop_assert_ne!(status, 403, "{:?} on its own record: {}", attempt, theirs);
                }
            }
            // Everything each council can read holds nothing of another council's.
            for (c, code) in COUNCILS.iter().enumerate() {
                let mut uris = vec![
                    "/v1/entities?limit=1000".to_owned(),
                    "/v1/journal?limit=1000".to_owned(),
                    format!("/v1/search?family_name={}fam0", marker(0)),
                    format!("/v1/search?postcode=LS1%204AP"),
                ];
                uris.extend(NHS.iter().map(|n| format!("/v1/search?nhs_number={n}")));
                uris.extend(NHS.iter().map(|n| format!("/v1/identifiers/nhs-number/{n}")));
                let listed = web_test::call_service(&app, call(token(c), "GET", uris[0].clone(), None)).await;
                let listed: Value = serde_json::from_slice(&web_test::read_body(listed).await).unwrap();
                let own: Vec<String> = listed["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
                for (id, owner) in &people {
                    prop_assert_eq!(own.contains(id), *owner == c, "listing of {}: {} ({})", code, id, owner);
                }
                for id in &own {
                    for route in ["", "/links", "/links?direction=in", "/history", "/diff?from=1&to=1"] {
                        uris.push(format!("/v1/entities/{id}{route}"));
                    }
                }
                // Another council's records read exactly as records that do not exist.
                let nobody = "01JNOBODY00000000000000000";
                for (id, _) in people.iter().filter(|(_, owner)| *owner != c) {
                    for route in ["", "/links", "/history", "/diff?from=1&to=1"] {
                        let theirs = web_test::call_service(&app, call(token(c), "GET", format!("/v1/entities/{id}{route}"), None)).await;
                        prop_assert_eq!(theirs.status().as_u16(), 403, "{} read {}{}", code, id, route);
                        let theirs = String::from_utf8(web_test::read_body(theirs).await.to_vec()).unwrap();
                        let none = web_test::call_service(&app, call(token(c), "GET", format!("/v1/entities/{nobody}{route}"), None)).await;
                        let none = String::from_utf8(web_test::read_body(none).await.to_vec()).unwrap();
                        prop_assert_eq!(theirs.replace(id.as_str(), "ID"), none.replace(nobody, "ID"));
                    }
                }
                let mut bodies = Vec::new();
                for uri in uris {
                    let response = web_test::call_service(&app, call(token(c), "GET", uri.clone(), None)).await;
                    bodies.push((uri, String::from_utf8(web_test::read_body(response).await.to_vec()).unwrap()));
                }
                let query = json!({"query": "{ entities(first: 1000) { items { id links { entity { id } } } } journal(first: 1000) { transactions { seq } } }"});
                let response = web_test::call_service(&app, call(token(c), "POST", "/graphql".into(), Some(query))).await;
                bodies.push(("/graphql".into(), String::from_utf8(web_test::read_body(response).await.to_vec()).unwrap()));
                for (uri, body) in &bodies {
                    for (other, other_code) in COUNCILS.iter().enumerate().filter(|(o, _)| *o != c) {
                        prop_assert!(!body.contains(&marker(other)), "{} read {}'s values at {}: {}", code, other_code, uri, body);
                        prop_assert!(!body.contains(&format!("\"council\":\"{other_code}\"")), "{} read {}'s provenance at {}: {}", code, other_code, uri, body);
                    }
                }
            }
            Ok(())
        });
        outcome?;
    }
}
