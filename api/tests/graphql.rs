//! GraphQL in process: the app from `create_app` over an in-memory store, driven with
//! `actix_web::test`. Covers typed attributes, as-of traversal, links both ways, search,
//! the transaction mutation, error codes and the depth limit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use actix_web::test;
use pole_api::{create_app, ApiConfig, AppState};
use pole_store::{BackendKind, Store, StoreOptions, TransactionRequest};
use serde_json::{json, Value};

const NHS: &str = "9434765919";

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(dir.path().join("store"), StoreOptions { backend: BackendKind::Memory, ..Default::default() })
            .unwrap();
    (dir, store)
}

/// Commits `changes` as the test actor; answers the committed transaction as JSON.
fn commit(store: &Store, changes: Value) -> Value {
    let request: TransactionRequest =
        serde_json::from_value(json!({"actor": "test", "role": "admin", "changes": changes})).unwrap();
    serde_json::to_value(store.commit(request).unwrap().unwrap()).unwrap()
}

/// A person with an address and a safeguarding concern about them (seq 1), then the person
/// renamed and the address's postcode corrected (seq 2). Answers (person, address, concern).
fn seed(store: &Store) -> (String, String, String) {
    let first = commit(
        store,
        json!([
            {"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": "Smith", "given_name": "Ann", "birth_date": "1950-02-03",
                        "gender": "2", "birth_date_estimated": false},
                "identifiers": [{"system": "nhs-number", "value": NHS}]}},
            {"target": {"ref": "a"}, "op": {"op": "create", "type": "address",
                "set": {"line1": "1 High Street", "postcode": "LS1 4AP"}}},
            {"target": {"ref": "c"}, "op": {"op": "create", "type": "safeguarding_concern",
                "set": {"date_initiated": "2024-03-01"}}},
            {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}},
            {"target": {"ref": "c"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
        ]),
    );
    assert_eq!(first["seq"], 1);
    let id = |r: &str| first["refs"][r].as_str().unwrap().to_owned();
    let (person, address, concern) = (id("p"), id("a"), id("c"));
    let second = commit(
        store,
        json!([
            {"target": {"entity": person}, "op": {"op": "update", "set": {"family_name": "Jones"}}},
            {"target": {"entity": address}, "op": {"op": "update", "set": {"postcode": "LS2 9JT"}}},
        ]),
    );
    assert_eq!(second["seq"], 2);
    (person, address, concern)
}

/// The app over `store`; the second argument is ignored (queries carry an administrator's
/// token, see `gql!`).
macro_rules! app {
    ($store:expr, $dev:expr) => {
        test::init_service(create_app(
            AppState::new($store.clone(), support::access(&$store, $store.dir())).unwrap(),
            ApiConfig::default(),
        ))
        .await
    };
}

/// Posts a query as an administrator; answers the status and the JSON body.
macro_rules! gql {
    ($app:expr, $query:expr, $variables:expr $(,)?) => {{
        let request = test::TestRequest::post()
            .uri("/graphql")
            .insert_header(("Authorization", support::bearer("admin", None, None)))
            .set_json(json!({"query": $query, "variables": $variables}))
            .to_request();
        let response = test::call_service(&$app, request).await;
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
        (status, body)
    }};
}

/// The data of an answer that must have no errors.
fn data(answer: (u16, Value)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(answer.1.get("errors").is_none(), "unexpected errors: {}", answer.1);
    answer.1["data"].clone()
}

/// The first error's extensions.
fn error(answer: (u16, Value)) -> Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    let errors = answer.1["errors"].as_array().unwrap_or_else(|| panic!("expected errors: {}", answer.1));
    assert!(!errors.is_empty());
    errors[0].clone()
}

#[actix_web::test]
async fn a_person_reads_with_typed_attributes() {
    let (_dir, store) = open();
    let (person, _, _) = seed(&store);
    let app = app!(store, true);
    let d = data(gql!(
        app,
        r#"query($id: ID!) { entity(id: $id) {
                id kind type version status identifiers { system value }
                ... on Person { family_name given_name birth_date gender birth_date_estimated }
            } }"#,
        json!({"id": person}),
    ));
    let e = &d["entity"];
    assert_eq!(e["id"], person.as_str());
    assert_eq!(e["kind"], "person");
    assert_eq!(e["type"], "person");
    assert_eq!(e["version"], 3, "created, linked, renamed: {e}");
    assert_eq!(e["status"], "active");
    assert_eq!(e["identifiers"], json!([{"system": "nhs-number", "value": NHS}]));
    assert_eq!(e["family_name"], "Jones");
    assert_eq!(e["given_name"], "Ann");
    assert_eq!(e["birth_date"], "1950-02-03");
    assert_eq!(e["gender"], "2");
    assert_eq!(e["birth_date_estimated"], false, "a boolean attribute is a Boolean");

    let unknown = data(gql!(app, r#"{ entity(id: "01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }"#, json!({})));
    assert_eq!(unknown["entity"], Value::Null, "an unknown id reads as null");
}

#[actix_web::test]
async fn as_of_holds_for_the_whole_traversal() {
    let (_dir, store) = open();
    let (person, _, concern) = seed(&store);
    let app = app!(store, true);
    let query = r#"query($id: ID!, $asOf: String) { entity(id: $id, asOf: $asOf) {
        type version
        ... on SafeguardingConcern { date_initiated }
        links(role: "subject") { role direction entity {
            id version
            ... on Person { family_name }
            history { version seq }
            links(role: "resides_at", direction: "out") { entity { ... on Address { postcode line1 } } }
        } }
    } }"#;
    let before = data(gql!(app, query, json!({"id": concern, "asOf": "1"})));
    let subject = &before["entity"]["links"][0];
    assert_eq!(subject["role"], "subject");
    assert_eq!(subject["direction"], "out");
    assert_eq!(subject["entity"]["id"], person.as_str());
    assert_eq!(subject["entity"]["family_name"], "Smith", "the person as of seq 1: {before}");
    assert_eq!(subject["entity"]["version"], 2);
    assert_eq!(subject["entity"]["history"].as_array().unwrap().len(), 2, "no version after the read point");
    assert_eq!(subject["entity"]["links"][0]["entity"]["postcode"], "LS1 4AP", "two hops down, still seq 1");
    assert_eq!(before["entity"]["date_initiated"], "2024-03-01");

    let now = data(gql!(app, query, json!({"id": concern})));
    let subject = &now["entity"]["links"][0]["entity"];
    assert_eq!(subject["family_name"], "Jones");
    assert_eq!(subject["history"].as_array().unwrap().len(), 3);
    assert_eq!(subject["links"][0]["entity"]["postcode"], "LS2 9JT");
}

#[actix_web::test]
async fn links_read_in_both_directions() {
    let (_dir, store) = open();
    let (person, address, concern) = seed(&store);
    let app = app!(store, true);
    let d = data(gql!(
        app,
        r#"query($id: ID!) { entity(id: $id) {
                all: links { role direction entity { id type } }
                incoming: links(direction: "in") { role direction entity { id type } }
                outgoing: links(direction: "out") { role direction entity { id type } }
            } }"#,
        json!({"id": person}),
    ));
    let e = &d["entity"];
    assert_eq!(e["all"].as_array().unwrap().len(), 2, "{e}");
    assert_eq!(
        e["incoming"],
        json!([{"role": "subject", "direction": "in", "entity": {"id": concern, "type": "safeguarding_concern"}}])
    );
    assert_eq!(
        e["outgoing"],
        json!([{"role": "resides_at", "direction": "out", "entity": {"id": address, "type": "address"}}])
    );
    let bad = error(gql!(
        app,
        r#"query($id: ID!) { entity(id: $id) { links(direction: "up") { role } } }"#,
        json!({"id": person})
    ));
    assert_eq!(bad["extensions"]["code"], "invalid-request");
    assert_eq!(bad["extensions"]["field"], "direction");
}

#[actix_web::test]
async fn search_and_identifier_find_the_person() {
    let (_dir, store) = open();
    let (person, _, _) = seed(&store);
    let app = app!(store, true);
    let d = data(gql!(
        app,
        r#"query($nhs: String) { search(nhsNumber: $nhs) { id ... on Person { family_name } }
                identifier(system: "nhs-number", value: "9434765919") { id }
                none: identifier(system: "nhs-number", value: "4010232137") { id } }"#,
        json!({"nhs": NHS}),
    ));
    assert_eq!(d["search"], json!([{"id": person, "family_name": "Jones"}]));
    assert_eq!(d["identifier"], json!([{"id": person}]));
    assert_eq!(d["none"], json!([]));
    let bad = error(gql!(app, r#"{ search(nhsNumber: "9434765918") { id } }"#, json!({})));
    assert_eq!(bad["extensions"]["code"], "invalid-request");
    assert_eq!(bad["extensions"]["field"], "nhs_number");
    let empty = error(gql!(app, r#"{ search { id } }"#, json!({})));
    assert_eq!(empty["extensions"]["code"], "invalid-request");
}

#[actix_web::test]
async fn a_mutation_is_one_transaction() {
    let (_dir, store) = open();
    let (_, address, _) = seed(&store);
    let app = app!(store, true);
    let input = json!({"reason": "new client", "changes": [
        {"target": {"ref": "p"}, "op": {"op": "create", "type": "person", "set": {"family_name": "Patel", "gender": "1"}}},
        {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"entity": address}}},
    ]});
    let mutation = r#"mutation($input: JSON!, $key: String) { transaction(input: $input, idempotencyKey: $key) }"#;
    let d = data(gql!(app, mutation, json!({"input": input, "key": "k1"})));
    let committed = &d["transaction"];
    assert_eq!(committed["seq"], 3, "exactly one transaction: {committed}");
    assert_eq!(committed["replayed"], false);
    let person = committed["refs"]["p"].as_str().unwrap().to_owned();
    assert_eq!(store.head().seq, 3);

    let read = data(gql!(
        app,
        r#"query($id: ID!) { entity(id: $id) { ... on Person { family_name gender }
                links { role entity { id } } } }"#,
        json!({"id": person}),
    ));
    assert_eq!(read["entity"]["family_name"], "Patel");
    assert_eq!(read["entity"]["links"], json!([{"role": "resides_at", "entity": {"id": address}}]));

    let replay = data(gql!(app, mutation, json!({"input": input, "key": "k1"})));
    assert_eq!(replay["transaction"]["replayed"], true);
    assert_eq!(store.head().seq, 3, "a replayed key writes nothing");
}

#[actix_web::test]
async fn errors_carry_the_api_error_code() {
    let (_dir, store) = open();
    let (person, _, _) = seed(&store);
    let app = app!(store, true);
    let future =
        error(gql!(app, r#"query($id: ID!) { entity(id: $id, asOf: "2999-01-01") { id } }"#, json!({"id": person})));
    assert_eq!(future["extensions"]["code"], "invalid-request", "{future}");
    assert_eq!(future["extensions"]["field"], "as_of");
    let bad_id = error(gql!(app, r#"{ entity(id: "not an id") { id } }"#, json!({})));
    assert_eq!(bad_id["extensions"]["code"], "invalid-request");
    assert_eq!(bad_id["extensions"]["field"], "id");

    let bad_code = error(gql!(
        app,
        r#"mutation($input: JSON!) { transaction(input: $input) }"#,
        json!({"input": {"changes": [{"target": {"ref": "p"}, "op": {"op": "create", "type": "person", "set": {"gender": "banana"}}}]}}),
    ));
    assert_eq!(bad_code["extensions"]["code"], "invalid-change", "{bad_code}");
    assert_eq!(bad_code["extensions"]["field"], "gender");
    assert_eq!(store.head().seq, 2, "nothing of a refused transaction is written");

    let malformed =
        error(gql!(app, r#"mutation { transaction(input: {changes: [{target: {nowhere: "p"}}]}) }"#, json!({})));
    assert_eq!(malformed["extensions"]["code"], "invalid-request", "{malformed}");

    let syntax = error(gql!(app, "{ entity(id: ", json!({})));
    assert_eq!(syntax["extensions"]["code"], "invalid-request");
}

#[actix_web::test]
async fn a_query_deeper_than_the_limit_is_refused() {
    let (_dir, store) = open();
    let (person, _, _) = seed(&store);
    let app = app!(store, true);
    let mut selection = "id".to_owned();
    for _ in 0..7 {
        selection = format!("links {{ entity {{ {selection} }} }}");
    }
    let query = format!("query($id: ID!) {{ entity(id: $id) {{ {selection} }} }}");
    let refused = error(gql!(app, &query, json!({"id": person})));
    assert_eq!(refused["extensions"]["code"], "invalid-request", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("limit of 12"), "{refused}");
}

#[actix_web::test]
async fn without_a_principal_graphql_answers_401_but_graphiql_is_served() {
    let (_dir, store) = open();
    seed(&store);
    let app = app!(store, false);
    let request = test::TestRequest::post().uri("/graphql").set_json(json!({"query": "{ __typename }"})).to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status().as_u16(), 401);
    let request = test::TestRequest::get().uri("/graphql").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = test::read_body(response).await;
    assert!(std::str::from_utf8(&body).unwrap().contains("graphiql"), "GraphiQL page");
    // A WebSocket upgrade is a request like any other: no principal, no subscription.
    let request = test::TestRequest::get()
        .uri("/graphql")
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Sec-WebSocket-Protocol", "graphql-transport-ws"))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status().as_u16(), 401);
}

#[actix_web::test]
async fn a_query_costlier_than_the_limit_is_refused() {
    let (_dir, store) = open();
    let (person, _, _) = seed(&store);
    let app = app!(store, true);
    let fields: String = (0..2100).map(|i| format!("f{i}: id ")).collect();
    let query = format!("query($id: ID!) {{ entity(id: $id) {{ {fields} }} }}");
    let refused = error(gql!(app, &query, json!({"id": person})));
    assert_eq!(refused["extensions"]["code"], "invalid-request", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("limit of 2000"), "{refused}");
}

#[actix_web::test]
async fn valid_at_holds_for_the_whole_traversal() {
    let (_dir, store) = open();
    let at_2000 = |mut change: Value| {
        change["valid_time"] = json!("2000-01-01T00:00:00Z");
        change
    };
    let committed = commit(
        &store,
        json!([
            at_2000(json!({"target": {"ref": "p"}, "op": {"op": "create", "type": "person", "set": {"family_name": "Smith"}}})),
            at_2000(json!({"target": {"ref": "old"}, "op": {"op": "create", "type": "address", "set": {"postcode": "LS2 9JT"}}})),
            at_2000(json!({"target": {"ref": "new"}, "op": {"op": "create", "type": "address", "set": {"postcode": "LS1 4AP"}}})),
            at_2000(json!({"target": {"ref": "e"}, "op": {"op": "create", "type": "referral", "set": {"referral_date": "2024-03-01"}}})),
            {"target": {"ref": "e"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
            {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "old"},
                "valid_from": "2010-01-01T00:00:00Z", "valid_to": "2015-01-01T00:00:00Z"}},
            {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "new"},
                "valid_from": "2015-01-01T00:00:00Z"}},
        ]),
    );
    let referral = committed["refs"]["e"].as_str().unwrap().to_owned();
    let app = app!(store, true);
    let query = r#"query($id: ID!, $validAt: String) { entity(id: $id, validAt: $validAt) {
        links(role: "subject") { entity { links(role: "resides_at") {
            validFrom validTo entity { ... on Address { postcode } } } } } } }"#;
    let postcodes = |d: &Value| -> Vec<String> {
        d["entity"]["links"][0]["entity"]["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["entity"]["postcode"].as_str().unwrap().to_owned())
            .collect()
    };
    let in_2012 = data(gql!(app, query, json!({"id": referral, "validAt": "2012-06-01"})));
    assert_eq!(postcodes(&in_2012), ["LS2 9JT"], "{in_2012}");
    let link = &in_2012["entity"]["links"][0]["entity"]["links"][0];
    assert_eq!(link["validFrom"], "2010-01-01T00:00:00.000000Z");
    assert_eq!(link["validTo"], "2015-01-01T00:00:00.000000Z");
    let in_2020 = data(gql!(app, query, json!({"id": referral, "validAt": "2020-06-01"})));
    assert_eq!(postcodes(&in_2020), ["LS1 4AP"], "{in_2020}");
}

#[actix_web::test]
async fn fragments_on_kinds_select_shared_attributes() {
    let (_dir, store) = open();
    let (person, _, concern) = seed(&store);
    let app = app!(store, true);
    let query = r#"query($id: ID!) { entity(id: $id) {
        __typename
        ... on Person { family_name }
        links { entity {
            __typename
            ... on Location { postcode }
            ... on Event { id }
            ... on Entity { kind }
        } }
    } }"#;
    let d = data(gql!(app, query, json!({"id": person})));
    let e = &d["entity"];
    assert_eq!(e["__typename"], "PersonType", "the type object beside the kind interface");
    assert_eq!(e["family_name"], "Jones");
    let others: Vec<&Value> = e["links"].as_array().unwrap().iter().map(|l| &l["entity"]).collect();
    assert!(
        others.contains(&&json!({"__typename": "Address", "postcode": "LS2 9JT", "kind": "location"})),
        "{others:?}"
    );
    assert!(
        others.contains(&&json!({"__typename": "SafeguardingConcern", "id": concern, "kind": "event"})),
        "{others:?}"
    );
}

#[actix_web::test]
async fn entities_page_with_the_rest_cursor() {
    let (_dir, store) = open();
    seed(&store);
    let app = app!(store, true);
    let query = r#"query($after: String) { entities(first: 2, after: $after) {
        items { id kind type } nextCursor } }"#;
    let first = data(gql!(app, query, json!({})));
    let page = &first["entities"];
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let second = data(gql!(app, query, json!({"after": cursor})));
    let page2 = &second["entities"];
    assert_eq!(page2["items"].as_array().unwrap().len(), 1, "{page2}");
    assert_eq!(page2["nextCursor"], Value::Null);
    let mut ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);

    let people = data(gql!(app, r#"{ entities(kind: "person") { items { type } } }"#, json!({})));
    assert_eq!(people["entities"]["items"], json!([{"type": "person"}]));
    let mismatch = error(gql!(app, r#"{ entities(kind: "event", type: "person") { nextCursor } }"#, json!({})));
    assert_eq!(mismatch["extensions"]["field"], "type");
    let bad_cursor = error(gql!(app, r#"{ entities(after: "%%%") { nextCursor } }"#, json!({})));
    assert_eq!(bad_cursor["extensions"]["code"], "invalid-request");
    assert_eq!(bad_cursor["extensions"]["field"], "cursor");
    let too_many = error(gql!(app, r#"{ entities(first: 5000) { nextCursor } }"#, json!({})));
    assert_eq!(too_many["extensions"]["field"], "first");
    let negative = error(gql!(app, r#"{ entities(first: -1) { nextCursor } }"#, json!({})));
    assert_eq!(negative["extensions"]["field"], "first");
}

#[actix_web::test]
async fn history_diff_and_journal_roots() {
    let (_dir, store) = open();
    let (person, _, _) = seed(&store);
    let app = app!(store, true);
    let d = data(gql!(
        app,
        r#"query($id: ID!) {
            history(id: $id) { version seq actor }
            diff(id: $id, from: 1, to: 3) { id from to delta }
            journal(after: 1) { headSeq transactions { seq actor refs entities { id } } }
        }"#,
        json!({"id": person}),
    ));
    let versions = d["history"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2], json!({"version": 3, "seq": 2, "actor": "test"}));
    let diff = &d["diff"];
    assert_eq!((diff["from"].as_u64(), diff["to"].as_u64()), (Some(1), Some(3)));
    let delta = diff["delta"].to_string();
    assert!(delta.contains("Smith") && delta.contains("Jones"), "{delta}");
    assert_eq!(d["journal"]["headSeq"], 2);
    let txs = d["journal"]["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["seq"], 2);
    assert_eq!(txs[0]["entities"].as_array().unwrap().len(), 2, "person and address changed");

    let bad = error(gql!(app, r#"query($id: ID!) { diff(id: $id, from: 1, to: 9) { id } }"#, json!({"id": person})));
    assert_eq!(bad["extensions"]["code"], "invalid-request");
    assert_eq!(bad["extensions"]["field"], "to");
    let unknown = error(gql!(app, r#"{ history(id: "01ARZ3NDEKTSV4RRFFQ69G5FAV") { seq } }"#, json!({})));
    assert_eq!(unknown["extensions"]["code"], "not-found");
}

/// `people` people, each the subject of two events that occurred at one of ten addresses.
fn seed_people(store: &Store, people: usize) {
    let mut changes = Vec::new();
    for a in 0..10 {
        changes.push(json!({"target": {"ref": format!("a{a}")}, "op": {"op": "create", "type": "address",
            "set": {"line1": format!("{a} Mill Lane"), "postcode": "LS1 4AP"}}}));
    }
    for p in 0..people {
        changes.push(json!({"target": {"ref": format!("p{p}")}, "op": {"op": "create", "type": "person",
            "set": {"family_name": format!("Person{p}")}}}));
        for (e, ty, date) in [(0, "referral", "referral_date"), (1, "contact", "contact_date")] {
            let event = format!("e{p}_{e}");
            changes.push(
                json!({"target": {"ref": event}, "op": {"op": "create", "type": ty, "set": {date: "2024-01-02"}}}),
            );
            changes.push(json!({"target": {"ref": event}, "op": {"op": "link", "role": "subject", "to": {"ref": format!("p{p}")}}}));
            changes.push(json!({"target": {"ref": event}, "op": {"op": "link", "role": "occurred_at",
                "to": {"ref": format!("a{}", (p + e) % 10)}}}));
        }
    }
    commit(store, Value::Array(changes));
}

/// Reads `people` people, their events and those events' locations; answers the loader's
/// batches and keys for that one query.
async fn two_hop_loads(people: usize) -> (u64, u64) {
    let (_dir, store) = open();
    seed_people(&store, people);
    let state = AppState::new(store.clone(), support::access(&store, store.dir())).unwrap();
    let app = test::init_service(create_app(state.clone(), ApiConfig::default())).await;
    let before = state.graphql.load_counts();
    let d = data(gql!(
        app,
        r#"query($n: Int) { entities(kind: "person", first: $n) { items {
            ... on Person { family_name }
            links(role: "subject", direction: "in") { entity { type
                links(role: "occurred_at", direction: "out") { entity { ... on Location { postcode } } } } }
        } } }"#,
        json!({"n": people}),
    ));
    let items = d["entities"]["items"].as_array().unwrap();
    assert_eq!(items.len(), people);
    for item in items {
        let events = item["links"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{item}");
        for event in events {
            assert_eq!(event["entity"]["links"][0]["entity"]["postcode"], "LS1 4AP", "{item}");
        }
    }
    let after = state.graphql.load_counts();
    (after.batches - before.batches, after.keys - before.keys)
}

#[actix_web::test]
async fn a_two_hop_traversal_of_100_people_costs_a_bounded_number_of_batched_reads() {
    let (batches_100, keys_100) = two_hop_loads(100).await;
    // People, their link lists, the events, the events' link lists, the locations: one batch
    // a level (five), each key read once (ten shared addresses are ten keys).
    assert!(batches_100 <= 5, "{batches_100} batches for 100 people");
    assert_eq!(keys_100, 100 + 100 + 200 + 200 + 10);
    eprintln!("two hops over 100 people: {batches_100} batches, {keys_100} keys");
    let (batches_10, _) = two_hop_loads(10).await;
    assert_eq!(batches_10, batches_100, "the number of batches does not grow with the number of people");
}

#[actix_web::test]
async fn batched_reads_keep_each_roots_read_point() {
    let (_dir, store) = open();
    let (_, _, concern) = seed(&store);
    let app = app!(store, true);
    // Two roots at two read points in one query: their link ends are batched together, and
    // each must still read at its own root's point.
    let d = data(gql!(
        app,
        r#"query($id: ID!) {
            then: entity(id: $id, asOf: "1") { links(role: "subject") { entity { ... on Person { family_name } } } }
            now: entity(id: $id) { links(role: "subject") { entity { ... on Person { family_name } } } }
        }"#,
        json!({"id": concern}),
    ));
    assert_eq!(d["then"]["links"][0]["entity"]["family_name"], "Smith", "{d}");
    assert_eq!(d["now"]["links"][0]["entity"]["family_name"], "Jones", "{d}");
}
