//! End-to-end tests of the REST API: the real binary serving a real data directory on a
//! free port, driven over HTTP. Every refusal is checked for its status, its
//! `application/problem+json` content type, its stable `type` and, where there is one, the
//! `field` it names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use serde_json::{json, Value};

/// A valid NHS number (Modulus 11) and another that no entity holds.
const NHS: &str = "9434765919";
const NHS_SPACED: &str = "943 476 5919";
const NHS_UNUSED: &str = "4010232137";
/// Ten digits with a wrong check digit.
const NHS_BAD: &str = "9434765918";

/// A running `pole-ods serve` on its own data directory; killed on drop.
struct Server {
    /// Owns the child process: the server lives as long as this value.
    _serving: common::Serving,
    base: String,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server; requests carry an administrator's token.
    fn start() -> Self {
        Self::launch(true)
    }

    /// `authorised`: whether requests carry an administrator's token.
    fn launch(authorised: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut serving = common::serve(&dir.path().join("store"), &dir.path().join("stderr.log"), &[]);
        let mut base = String::new();
        serving.wait_for(|line| match line.strip_prefix("listening on ") {
            Some(addr) => {
                base = addr.trim().trim_end_matches('/').to_owned();
                true
            }
            None => false,
        });
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let client = if authorised {
            common::admin_client()
        } else {
            Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
        };
        Server { _serving: serving, base, client, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, request: RequestBuilder) -> Answer {
        let response = request.send().expect("HTTP request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().expect("response body").to_vec();
        Answer { status, headers, body }
    }

    fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path)))
    }

    /// A GET with query parameters, encoded by the client.
    fn get_q(&self, path: &str, query: &[(&str, &str)]) -> Answer {
        self.send(self.client.get(self.url(path)).query(query))
    }

    fn post(&self, body: &Value) -> Answer {
        self.send(self.client.post(self.url("/v1/transactions")).json(body))
    }

    fn post_keyed(&self, key: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url("/v1/transactions")).header("Idempotency-Key", key).json(body))
    }

    fn post_raw(&self, content_type: &str, body: impl Into<reqwest::blocking::Body>) -> Answer {
        self.send(self.client.post(self.url("/v1/transactions")).header(CONTENT_TYPE, content_type).body(body))
    }

    /// Commits a transaction that must be accepted and returns its answer.
    fn commit(&self, body: &Value) -> Value {
        let answer = self.post(body);
        assert_eq!(answer.status, 201, "commit refused: {}", answer.text());
        let committed = answer.json();
        assert_eq!(committed["replayed"], false, "{committed}");
        committed
    }

    /// The journal head as `/ready` reports it.
    fn head(&self) -> u64 {
        self.get("/ready").ok()["head_seq"].as_u64().unwrap()
    }

    /// Every entity id of a type, walking all pages.
    fn all_of_type(&self, entity_type: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("type", entity_type.to_owned()), ("limit", "1000".to_owned())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page = self.send(self.client.get(self.url("/v1/entities")).query(&query)).ok();
            out.extend(ids(&page["items"]));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return out,
            }
        }
    }
}

/// One HTTP answer, read in full.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        format!("{} {}", self.status, String::from_utf8_lossy(&self.body))
    }

    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts a 200 JSON answer and returns its document.
    fn ok(&self) -> Value {
        self.expect_json(200)
    }

    fn expect_json(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        let content_type = self.header(CONTENT_TYPE).unwrap_or_default();
        assert!(content_type.starts_with("application/json"), "content type {content_type:?}: {}", self.text());
        self.json()
    }

    /// Asserts a problem document with this status, code and (if `Some`) field; returns it.
    fn problem(&self, status: u16, code: &str, field: Option<&str>) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        let content_type = self.header(CONTENT_TYPE).unwrap_or_default();
        assert!(content_type.starts_with("application/problem+json"), "content type {content_type:?}: {}", self.text());
        let problem = self.json();
        assert_eq!(problem["type"], format!("/problems/{code}"), "{problem}");
        assert_eq!(problem["code"], code, "{problem}");
        assert_eq!(problem["status"], status, "{problem}");
        assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()), "{problem}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{problem}");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{problem}");
        }
        problem
    }

    /// A 400 `invalid-request` naming `field`.
    fn invalid(&self, field: &str) -> Value {
        self.problem(400, "invalid-request", Some(field))
    }
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn create(local: &str, entity_type: &str, set: Value) -> Value {
    json!({"target": {"ref": local}, "op": {"op": "create", "type": entity_type, "set": set}})
}

fn create_with_nhs(local: &str, set: Value, nhs: &str) -> Value {
    json!({"target": {"ref": local}, "op": {
        "op": "create", "type": "person", "set": set,
        "identifiers": [{"system": "nhs-number", "value": nhs}]
    }})
}

fn update(id: &str, set: Value) -> Value {
    json!({"target": {"entity": id}, "op": {"op": "update", "set": set}})
}

fn link(from: Value, role: &str, to: Value) -> Value {
    json!({"target": from, "op": {"op": "link", "role": role, "to": to}})
}

fn r(local: &str) -> Value {
    json!({"ref": local})
}

fn e(id: &str) -> Value {
    json!({"entity": id})
}

fn tx(changes: Vec<Value>) -> Value {
    json!({ "changes": changes })
}

fn reference(committed: &Value, local: &str) -> String {
    committed["refs"][local].as_str().unwrap_or_else(|| panic!("no ref {local}: {committed}")).to_owned()
}

/// Creates one person and returns its id.
fn one_person(server: &Server, set: Value) -> String {
    reference(&server.commit(&tx(vec![create("p", "person", set)])), "p")
}

// ---------------------------------------------------------------- health, ready, routes

#[test]
fn health_and_ready_report_and_ready_follows_the_head() {
    let server = Server::start();
    assert_eq!(server.get("/health").ok()["status"], "ok");
    let ready = server.get("/ready").ok();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["head_seq"], 0, "{ready}");
    let empty_hash = ready["head_hash"].clone();

    let committed = server.commit(&tx(vec![create("p", "person", json!({"family_name": "Smith"}))]));
    assert_eq!(committed["seq"], 1);
    let ready = server.get("/ready").ok();
    assert_eq!(ready["head_seq"], 1, "{ready}");
    assert_eq!(ready["head_hash"], committed["hash"], "{ready}");
    assert_ne!(ready["head_hash"], empty_hash);

    server.commit(&tx(vec![create("q", "person", json!({"family_name": "Jones"}))]));
    assert_eq!(server.head(), 2);
}

#[test]
fn unknown_routes_are_not_found_problems() {
    let server = Server::start();
    for path in ["/nope", "/v1", "/v1/nope", "/v1/entities/X/nope", "/v2/entities"] {
        let problem = server.get(path).problem(404, "not-found", None);
        assert!(problem["detail"].as_str().unwrap().contains(path), "{problem}");
    }
}

#[test]
fn without_the_development_principal_v1_is_unauthorized_and_health_is_not() {
    let server = Server::launch(false);
    assert_eq!(server.get("/health").ok()["status"], "ok");
    assert_eq!(server.get("/ready").ok()["head_seq"], 0);
    for path in [
        "/v1/entities?type=person",
        "/v1/entities?limit=0",
        "/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV/history",
        "/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV/diff?from=1&to=2",
        "/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV/links",
        "/v1/search?family_name=smith",
        "/v1/identifiers/nhs-number/9434765919",
        "/v1/journal",
    ] {
        server.get(path).problem(401, "unauthorized", None);
    }
    server.post(&tx(vec![create("p", "person", json!({"family_name": "Smith"}))])).problem(401, "unauthorized", None);
    // Authentication comes before reading the body.
    server.post_raw("application/json", "{not json").problem(401, "unauthorized", None);
    assert_eq!(server.head(), 0, "nothing was written");
}

// ---------------------------------------------------------------- transactions

#[test]
fn a_transaction_commits_with_refs_and_links() {
    let server = Server::start();
    let committed = server.commit(&json!({
        "reason": "first contact",
        "source": {"council": "305"},
        "changes": [
            create_with_nhs("p", json!({"family_name": "Smith", "given_name": "Ann", "gender": "2"}), NHS),
            create("e", "referral", json!({"referral_date": "2024-03-01"})),
            link(r("e"), "subject", r("p")),
        ]
    }));
    assert_eq!(committed["seq"], 1, "{committed}");
    assert_eq!(committed["changes"], 3, "{committed}");
    assert!(committed["recorded_at"].as_str().is_some(), "{committed}");
    assert_eq!(committed["hash"].as_str().unwrap().len(), 64, "{committed}");
    let person = reference(&committed, "p");
    let referral = reference(&committed, "e");
    assert_ne!(person, referral);

    let entity = server.get(&format!("/v1/entities/{person}")).ok();
    assert_eq!(entity["id"], person.as_str());
    assert_eq!(entity["kind"], "person");
    assert_eq!(entity["type"], "person");
    assert_eq!(entity["version"], 1);
    assert_eq!(entity["attributes"]["family_name"], "Smith");
    assert_eq!(entity["attributes"]["gender"], "2");
    assert_eq!(entity["identifiers"], json!([{"system": "nhs-number", "value": NHS}]));
    assert_eq!(entity["provenance"]["family_name"]["seq"], 1, "{entity}");
    assert_eq!(entity["read_at"]["as_of_seq"], 1);

    let links = server.get(&format!("/v1/entities/{referral}/links?direction=out")).ok();
    assert_eq!(links["links"].as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links["links"][0]["other"], person.as_str());

    // An update by entity id in a later transaction.
    let second = server.commit(&tx(vec![update(&person, json!({"given_name": "Anne"}))]));
    assert_eq!(second["seq"], 2);
    assert_eq!(server.get(&format!("/v1/entities/{person}")).ok()["attributes"]["given_name"], "Anne");
}

#[test]
fn a_create_may_name_its_own_id_once() {
    let server = Server::start();
    let id = "01JCLIENTCHOSEN0000000000A";
    let named =
        json!({"target": {"entity": id}, "op": {"op": "create", "type": "person", "set": {"family_name": "Smith"}}});
    let committed = server.commit(&tx(vec![
        named.clone(),
        create("e", "referral", json!({"referral_date": "2024-03-01"})),
        link(r("e"), "subject", e(id)),
    ]));
    assert_eq!(committed["changes"], 3, "{committed}");
    assert_eq!(committed["refs"].as_object().map(|refs| refs.len()), Some(1), "only the ref is in refs: {committed}");
    assert_eq!(server.get(&format!("/v1/entities/{id}")).ok()["attributes"]["family_name"], "Smith");
    let head = server.head();
    let problem = server.post(&tx(vec![named])).problem(422, "invalid-change", None);
    assert_eq!(problem["rejection"]["entity"], id, "{problem}");
    assert!(problem["rejection"]["reason"].as_str().unwrap().contains("exists already"), "{problem}");
    assert_eq!(server.head(), head, "nothing is written");
}

#[test]
fn an_idempotency_key_replays_and_refuses_another_body() {
    let server = Server::start();
    let body = tx(vec![create_with_nhs("p", json!({"family_name": "Smith"}), NHS)]);
    let first = server.post_keyed("row-1", &body).expect_json(201);
    assert_eq!(first["replayed"], false);
    let seq = first["seq"].as_u64().unwrap();

    let again = server.post_keyed("row-1", &body).ok();
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["seq"], seq, "{again}");
    assert_eq!(again["refs"], first["refs"], "{again}");
    assert_eq!(again["hash"], first["hash"], "{again}");
    assert_eq!(server.head(), seq, "a replay writes nothing");
    assert_eq!(server.all_of_type("person").len(), 1);

    let other = tx(vec![create_with_nhs("p", json!({"family_name": "Jones"}), NHS)]);
    let problem = server.post_keyed("row-1", &other).problem(422, "idempotency-key-reused", None);
    assert_eq!(problem["rejection"]["kind"], "idempotency_key_reused", "{problem}");
    assert_eq!(problem["rejection"]["key"], "row-1", "{problem}");
    assert_eq!(problem["rejection"]["seq"], seq, "{problem}");
    assert_eq!(server.head(), seq);

    // Another key, or none, is another transaction.
    assert_eq!(server.post_keyed("row-2", &body).expect_json(201)["seq"], seq + 1);
    assert_eq!(server.post(&body).expect_json(201)["seq"], seq + 2);

    // A header that is not visible ASCII is refused before anything is written.
    let request = server
        .client
        .post(server.url("/v1/transactions"))
        .header("Idempotency-Key", HeaderValue::from_bytes(b"caf\xe9").unwrap())
        .json(&body);
    server.send(request).invalid("Idempotency-Key");
    assert_eq!(server.head(), seq + 2);
}

#[test]
fn an_overlong_idempotency_key_is_refused_as_a_problem() {
    let server = Server::start();
    let body = tx(vec![create("p", "person", json!({"family_name": "Smith"}))]);
    let key = "k".repeat(300);
    let answer = server.post_keyed(&key, &body);
    let problem = answer.problem(422, "invalid-change", None);
    assert_eq!(problem["rejection"]["kind"], "transaction", "{problem}");
    assert_eq!(server.head(), 0);
}

#[test]
fn an_empty_transaction_is_an_invalid_change_not_a_server_error() {
    let server = Server::start();
    let problem = server.post(&tx(vec![])).problem(422, "invalid-change", None);
    assert_eq!(problem["rejection"]["kind"], "transaction", "{problem}");
    assert_eq!(server.head(), 0);
}

#[test]
fn an_expected_version_mismatch_is_a_conflict_naming_the_entity() {
    let server = Server::start();
    let person = one_person(&server, json!({"family_name": "Smith"}));
    let mut change = update(&person, json!({"family_name": "Jones"}));
    change["expected_version"] = json!(1);
    assert_eq!(server.commit(&tx(vec![change.clone()]))["seq"], 2);
    let head = server.head();

    let mut stale = update(&person, json!({"family_name": "Brown"}));
    stale["expected_version"] = json!(1);
    let body = tx(vec![create("q", "person", json!({"family_name": "Other"})), stale]);
    let problem = server.post(&body).problem(409, "version-conflict", None);
    let rejection = &problem["rejection"];
    assert_eq!(rejection["kind"], "conflict", "{problem}");
    assert_eq!(rejection["change_idx"], 1, "{problem}");
    assert_eq!(rejection["entity"], person.as_str(), "{problem}");
    assert_eq!(rejection["expected"], 1, "{problem}");
    assert_eq!(rejection["actual"], 2, "{problem}");
    assert_eq!(server.head(), head, "nothing of the refused transaction is written");
    assert_eq!(server.all_of_type("person"), vec![person.clone()]);
    assert_eq!(server.get(&format!("/v1/entities/{person}")).ok()["attributes"]["family_name"], "Jones");
}

#[test]
fn invalid_changes_are_refused_with_their_index_and_field_and_nothing_is_written() {
    let server = Server::start();
    let existing = one_person(&server, json!({"family_name": "Smith"}));
    let valid = create("ok", "person", json!({"family_name": "Valid"}));
    let cases: Vec<(&str, Vec<Value>, usize, &str)> = vec![
        ("unknown type", vec![valid.clone(), create("x", "spaceship", json!({}))], 1, "type"),
        ("unknown attribute", vec![valid.clone(), create("x", "person", json!({"shoe_size": 9}))], 1, "shoe_size"),
        ("wrong value type", vec![valid.clone(), create("x", "person", json!({"birth_date": 1950}))], 1, "birth_date"),
        ("boolean as text", vec![valid.clone(), create("x", "person", json!({"opted_out": "yes"}))], 1, "opted_out"),
        (
            "not a date",
            vec![valid.clone(), create("x", "person", json!({"birth_date": "03/02/1950"}))],
            1,
            "birth_date",
        ),
        ("code outside a strict list", vec![valid.clone(), create("x", "person", json!({"gender": "X"}))], 1, "gender"),
        (
            "invalid NHS number",
            vec![valid.clone(), create_with_nhs("x", json!({}), NHS_BAD)],
            1,
            "identifiers.nhs-number",
        ),
        ("missing required attribute", vec![valid.clone(), create("x", "organisation", json!({}))], 1, "name"),
        (
            "disallowed link role",
            vec![valid.clone(), create("x", "person", json!({})), link(r("ok"), "subject", r("x"))],
            2,
            "role",
        ),
        ("unknown attribute on update", vec![valid.clone(), update(&existing, json!({"colour": "red"}))], 1, "colour"),
        ("wrong type on update", vec![valid.clone(), update(&existing, json!({"family_name": 7}))], 1, "family_name"),
    ];
    let head = server.head();
    for (what, changes, change_idx, field) in cases {
        let problem = server.post(&tx(changes)).problem(422, "invalid-change", Some(field));
        let rejection = &problem["rejection"];
        assert_eq!(rejection["kind"], "invalid", "{what}: {problem}");
        assert_eq!(rejection["change_idx"], change_idx, "{what}: {problem}");
        assert_eq!(rejection["field"], field, "{what}: {problem}");
        assert!(rejection["reason"].as_str().is_some_and(|r| !r.is_empty()), "{what}: {problem}");
        assert_eq!(server.head(), head, "{what}: nothing is written");
    }
    // Refusals that name no field still carry the change's index.
    let unknown_entity = tx(vec![valid.clone(), update("01ARZ3NDEKTSV4RRFFQ69G5FAV", json!({"family_name": "X"}))]);
    let problem = server.post(&unknown_entity).problem(422, "invalid-change", None);
    assert_eq!(problem["rejection"]["change_idx"], 1, "{problem}");
    let unknown_ref = tx(vec![valid.clone(), link(r("ok"), "carer_of", r("nobody"))]);
    let problem = server.post(&unknown_ref).problem(422, "invalid-change", None);
    assert_eq!(problem["rejection"]["change_idx"], 1, "{problem}");

    assert_eq!(server.head(), head);
    assert_eq!(server.all_of_type("person"), vec![existing.clone()], "no refused create left an entity");
    assert_eq!(server.get("/v1/search?family_name=valid").ok()["items"], json!([]));
    let journal = server.get("/v1/journal").ok();
    assert_eq!(journal["transactions"].as_array().unwrap().len(), 1, "{journal}");
}

#[test]
fn bad_bodies_are_invalid_requests_and_oversized_ones_too_large() {
    let server = Server::start();
    server.post_raw("application/json", "{\"changes\": [").invalid("body");
    server.post_raw("application/json", "").invalid("body");
    server.post(&json!({"changes": [], "bogus": 1})).invalid("body");
    server.post(&json!({"changes": "none"})).invalid("body");
    server.post(&json!([])).invalid("body");
    server.post(&json!({})).invalid("body");
    // Inside a change: unknown fields, unknown operations, wrong types.
    server
        .post(&tx(vec![json!({"target": {"ref": "p"}, "op": {"op": "create", "type": "person"}, "extra": true})]))
        .invalid("body");
    server.post(&tx(vec![json!({"target": {"ref": "p"}, "op": {"op": "explode"}})])).invalid("body");
    server
        .post(&tx(vec![json!({"target": {"nowhere": "p"}, "op": {"op": "create", "type": "person"}})]))
        .invalid("body");
    let mut change = create("p", "person", json!({}));
    change["expected_version"] = json!("one");
    server.post(&tx(vec![change])).invalid("body");
    let mut change = create("p", "person", json!({}));
    change["valid_time"] = json!("last tuesday");
    server.post(&tx(vec![change])).invalid("body");

    let valid = serde_json::to_string(&tx(vec![create("p", "person", json!({"family_name": "Smith"}))])).unwrap();
    let problem = server.post_raw("text/plain", valid.clone()).problem(400, "invalid-request", None);
    assert!(problem["field"].as_str().unwrap().eq_ignore_ascii_case("content-type"), "{problem}");
    let problem = server.post_raw("application/x-www-form-urlencoded", valid).problem(400, "invalid-request", None);
    assert!(problem["field"].as_str().unwrap().eq_ignore_ascii_case("content-type"), "{problem}");

    // Over 16 MiB: refused, whatever it holds.
    let padding = "a".repeat((16 << 20) + 1024);
    let huge = format!("{{\"reason\": \"{padding}\", \"changes\": []}}");
    server.post_raw("application/json", huge).problem(413, "payload-too-large", None);

    assert_eq!(server.head(), 0, "nothing was written");
    // The server still answers after all of that.
    assert_eq!(server.get("/health").ok()["status"], "ok");
}

// ---------------------------------------------------------------- entity reads

#[test]
fn an_entity_reads_now_as_of_a_sequence_or_time_and_valid_at() {
    let server = Server::start();
    // seq 1: the person, valid since 2020.
    let mut born = create_with_nhs("p", json!({"family_name": "Smith", "gender": "1"}), NHS);
    born["valid_time"] = json!("2020-01-01T00:00:00Z");
    let first = server.commit(&tx(vec![born]));
    let person = reference(&first, "p");
    let first_at = first["recorded_at"].as_str().unwrap().to_owned();
    // seq 2: a change of name, valid now.
    let second = server.commit(&tx(vec![update(&person, json!({"family_name": "Jones"}))]));
    let second_at = second["recorded_at"].as_str().unwrap().to_owned();
    // seq 3: a late-recorded change, true since mid-2022.
    let mut late = update(&person, json!({"gender": "2"}));
    late["valid_time"] = json!("2022-06-01T00:00:00Z");
    assert_eq!(server.commit(&tx(vec![late]))["seq"], 3);

    let path = format!("/v1/entities/{person}");
    let now = server.get(&path).ok();
    assert_eq!(now["attributes"]["family_name"], "Jones", "{now}");
    assert_eq!(now["attributes"]["gender"], "2", "{now}");
    assert_eq!(now["version"], 3);
    assert_eq!(now["read_at"]["as_of_seq"], 3);
    assert!(now["read_at"].get("valid_at").is_none(), "{now}");

    for as_of in ["1", first_at.as_str()] {
        let then = server.get_q(&path, &[("as_of", as_of)]).ok();
        assert_eq!(then["attributes"]["family_name"], "Smith", "as_of {as_of}: {then}");
        assert_eq!(then["attributes"]["gender"], "1", "as_of {as_of}: {then}");
        assert_eq!(then["version"], 1, "as_of {as_of}: {then}");
        assert_eq!(then["read_at"]["as_of_seq"], 1, "as_of {as_of}: {then}");
    }
    for as_of in ["2", second_at.as_str()] {
        let then = server.get_q(&path, &[("as_of", as_of)]).ok();
        assert_eq!(then["attributes"]["family_name"], "Jones", "as_of {as_of}: {then}");
        assert_eq!(then["attributes"]["gender"], "1", "as_of {as_of}: {then}");
        assert_eq!(then["read_at"]["as_of_seq"], 2, "as_of {as_of}: {then}");
    }

    // Valid time: what held in the world on a date, as known now.
    let in_2021 = server.get_q(&path, &[("valid_at", "2021-01-01")]).ok();
    assert_eq!(in_2021["attributes"]["family_name"], "Smith", "{in_2021}");
    assert_eq!(in_2021["attributes"]["gender"], "1", "{in_2021}");
    assert!(in_2021["read_at"]["valid_at"].as_str().unwrap().starts_with("2021-01-01T00:00:00"), "{in_2021}");
    assert_eq!(in_2021["read_at"]["as_of_seq"], 3, "{in_2021}");
    let in_2023 = server.get_q(&path, &[("valid_at", "2023-01-01T00:00:00Z")]).ok();
    assert_eq!(in_2023["attributes"]["family_name"], "Smith", "{in_2023}");
    assert_eq!(in_2023["attributes"]["gender"], "2", "the late change holds from 2022: {in_2023}");
    // ... and as known before the late change was recorded.
    let known_then = server.get_q(&path, &[("as_of", "2"), ("valid_at", "2023-01-01")]).ok();
    assert_eq!(known_then["attributes"]["gender"], "1", "{known_then}");
    assert_eq!(known_then["read_at"]["as_of_seq"], 2, "{known_then}");
    // Before the person existed in the world.
    server.get_q(&path, &[("valid_at", "2019-06-01")]).problem(404, "not-found", None);

    // Read points outside the recorded history, or unreadable.
    server.get_q(&path, &[("as_of", "2999-01-01T00:00:00Z")]).invalid("as_of");
    server.get_q(&path, &[("as_of", "2001-01-01")]).invalid("as_of");
    server.get_q(&path, &[("as_of", "4")]).invalid("as_of");
    server.get_q(&path, &[("as_of", "0")]).invalid("as_of");
    server.get_q(&path, &[("as_of", "yesterday")]).invalid("as_of");
    server.get_q(&path, &[("valid_at", "someday")]).invalid("valid_at");
    server.get_q(&path, &[("asof", "1")]).invalid("query");

    // Unknown and malformed ids.
    server.get("/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV").problem(404, "not-found", None);
    server.get("/v1/entities/a%2Fb").invalid("id");
    server.get(&format!("/v1/entities/{}", "A".repeat(70))).invalid("id");
    server.get("/v1/entities/a.b").invalid("id");
}

#[test]
fn as_of_a_time_on_an_empty_store_is_refused() {
    let server = Server::start();
    server.get_q("/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV", &[("as_of", "2020-01-01")]).invalid("as_of");
    server.get_q("/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV", &[("as_of", "1")]).invalid("as_of");
}

#[test]
fn history_lists_every_version_and_diff_compares_two() {
    let server = Server::start();
    let person = one_person(&server, json!({"family_name": "Smith", "gender": "1"}));
    server.commit(&tx(vec![update(&person, json!({"family_name": "Jones"}))]));
    server.commit(&json!({"reason": "corrected", "changes": [update(&person, json!({"gender": "2"}))]}));

    let history = server.get(&format!("/v1/entities/{person}/history")).ok();
    assert_eq!(history["id"], person.as_str());
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{history}");
    for (n, version) in versions.iter().enumerate() {
        assert_eq!(version["version"], n + 1, "{version}");
        assert_eq!(version["seq"], n + 1, "{version}");
        assert_eq!(version["change_idx"], 0, "{version}");
        assert_eq!(version["actor"], "test-admin", "{version}");
        assert_eq!(version["role"], "admin", "{version}");
        assert!(version["recorded_at"].as_str().is_some(), "{version}");
        assert!(version["valid_time"].as_str().is_some(), "{version}");
        assert_eq!(version["change"]["entity"], person.as_str(), "{version}");
    }
    assert_eq!(versions[0]["change"]["change"], "create");
    assert_eq!(versions[0]["change"]["type"], "person");
    assert_eq!(versions[1]["change"]["change"], "update");
    assert_eq!(
        versions[1]["change"]["delta"],
        json!([{"op": "set", "attribute": "family_name", "before": "Smith", "after": "Jones"}]),
        "identifiable values are shown opened: {history}"
    );
    assert_eq!(
        versions[2]["change"]["delta"],
        json!([{"op": "set", "attribute": "gender", "before": "1", "after": "2"}])
    );

    let diff = server.get(&format!("/v1/entities/{person}/diff?from=1&to=3")).ok();
    assert_eq!(diff["id"], person.as_str());
    assert_eq!(diff["from"], 1);
    assert_eq!(diff["to"], 3);
    assert_eq!(
        diff["delta"],
        json!([
            {"op": "set", "attribute": "family_name", "before": "Smith", "after": "Jones"},
            {"op": "set", "attribute": "gender", "before": "1", "after": "2"},
        ]),
        "{diff}"
    );
    let back = server.get(&format!("/v1/entities/{person}/diff?from=3&to=2")).ok();
    assert_eq!(back["delta"], json!([{"op": "set", "attribute": "gender", "before": "2", "after": "1"}]), "{back}");
    assert_eq!(server.get(&format!("/v1/entities/{person}/diff?from=2&to=2")).ok()["delta"], json!([]));

    server.get(&format!("/v1/entities/{person}/diff?from=1&to=4")).invalid("to");
    server.get(&format!("/v1/entities/{person}/diff?from=0&to=2")).invalid("from");
    server.get(&format!("/v1/entities/{person}/diff?from=9&to=1")).invalid("from");
    server.get(&format!("/v1/entities/{person}/diff?to=2")).problem(400, "invalid-request", None);
    server.get(&format!("/v1/entities/{person}/diff?from=1")).problem(400, "invalid-request", None);
    server.get(&format!("/v1/entities/{person}/diff?from=one&to=2")).problem(400, "invalid-request", None);
    server.get(&format!("/v1/entities/{person}/diff?from=1&to=2&by=me")).problem(400, "invalid-request", None);

    server.get("/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV/history").problem(404, "not-found", None);
    server.get("/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV/diff?from=1&to=1").problem(404, "not-found", None);
    server.get("/v1/entities/a%2Fb/history").invalid("id");
    server.get("/v1/entities/a%2Fb/diff?from=1&to=1").invalid("id");
}

// ---------------------------------------------------------------- links

#[test]
fn links_read_in_both_directions_and_as_of_before_an_unlink() {
    let server = Server::start();
    let mut lived = link(r("p"), "resides_at", r("old"));
    lived["op"]["valid_from"] = json!("2010-01-01T00:00:00Z");
    lived["op"]["valid_to"] = json!("2015-01-01T00:00:00Z");
    // The person is known to have existed since 2000, so valid-time reads before now find them.
    let mut person = create("p", "person", json!({"family_name": "Smith"}));
    person["valid_time"] = json!("2000-01-01T00:00:00Z");
    let committed = server.commit(&tx(vec![
        person,
        create("a", "address", json!({"line1": "1 High Street", "postcode": "LS1 4AP"})),
        create("old", "address", json!({"line1": "2 Low Road", "postcode": "LS2 9JT"})),
        create("e", "referral", json!({"referral_date": "2024-03-01"})),
        link(r("e"), "subject", r("p")),
        link(r("p"), "resides_at", r("a")),
        lived,
    ]));
    let (person, address, old, referral) = (
        reference(&committed, "p"),
        reference(&committed, "a"),
        reference(&committed, "old"),
        reference(&committed, "e"),
    );
    // seq 2: the person moves out.
    server.commit(&tx(vec![
        json!({"target": e(&person), "op": {"op": "unlink", "role": "resides_at", "to": e(&address)}}),
    ]));

    let links = |id: &str, query: &[(&str, &str)]| server.get_q(&format!("/v1/entities/{id}/links"), query).ok();
    let others = |view: &Value| -> Vec<(String, String, String)> {
        let mut out: Vec<_> = view["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["role"].as_str().unwrap().to_owned(),
                    l["direction"].as_str().unwrap().to_owned(),
                    l["other"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let t = |role: &str, dir: &str, other: &str| (role.to_owned(), dir.to_owned(), other.to_owned());

    let out_now = links(&person, &[("direction", "out")]);
    assert_eq!(out_now["id"], person.as_str());
    assert_eq!(out_now["read_at"]["as_of_seq"], 2);
    assert_eq!(others(&out_now), vec![t("resides_at", "out", &old)], "only the historical address: {out_now}");

    let out_then = links(&person, &[("direction", "out"), ("as_of", "1")]);
    assert_eq!(out_then["read_at"]["as_of_seq"], 1);
    let mut expected = vec![t("resides_at", "out", &address), t("resides_at", "out", &old)];
    expected.sort();
    assert_eq!(others(&out_then), expected, "{out_then}");
    let current = out_then["links"].as_array().unwrap().iter().find(|l| l["other"] == address.as_str()).unwrap();
    assert_eq!(current["added_seq"], 1, "{out_then}");

    let incoming = links(&person, &[("direction", "in")]);
    assert_eq!(others(&incoming), vec![t("subject", "in", &referral)], "{incoming}");
    let both = links(&person, &[]);
    let mut expected = vec![t("subject", "in", &referral), t("resides_at", "out", &old)];
    expected.sort();
    assert_eq!(others(&both), expected, "{both}");
    assert_eq!(others(&links(&person, &[("direction", "both")])), others(&both));

    // Seen from the other end.
    assert_eq!(others(&links(&address, &[("direction", "in")])), vec![]);
    assert_eq!(others(&links(&address, &[("direction", "in"), ("as_of", "1")])), vec![t("resides_at", "in", &person)]);
    assert_eq!(others(&links(&referral, &[("direction", "out")])), vec![t("subject", "out", &person)]);
    assert_eq!(others(&links(&referral, &[("direction", "in")])), vec![]);

    // Role filter.
    assert_eq!(others(&links(&referral, &[("role", "subject")])), vec![t("subject", "out", &person)]);
    assert_eq!(others(&links(&referral, &[("role", "occurred_at")])), vec![]);
    assert_eq!(others(&links(&person, &[("role", "subject"), ("direction", "out")])), vec![]);

    // Valid time: the old address held from 2010 to 2015.
    let in_2012 = links(&person, &[("direction", "out"), ("valid_at", "2012-06-01")]);
    assert_eq!(others(&in_2012), vec![t("resides_at", "out", &old)], "{in_2012}");
    let in_2016 = links(&person, &[("direction", "out"), ("valid_at", "2016-06-01"), ("role", "resides_at")]);
    assert_eq!(others(&in_2016), vec![], "{in_2016}");

    let path = format!("/v1/entities/{person}/links");
    server.get_q(&path, &[("direction", "sideways")]).invalid("direction");
    server.get_q(&path, &[("direction", "OUT")]).invalid("direction");
    server.get_q(&path, &[("as_of", "3")]).invalid("as_of");
    server.get_q(&path, &[("as_of", "2999-01-01")]).invalid("as_of");
    server.get_q(&path, &[("valid_at", "whenever")]).invalid("valid_at");
    server.get_q(&path, &[("depth", "2")]).invalid("query");
    server.get("/v1/entities/01ARZ3NDEKTSV4RRFFQ69G5FAV/links").problem(404, "not-found", None);
    server.get("/v1/entities/a%2Fb/links").invalid("id");
}

// ---------------------------------------------------------------- listing

#[test]
fn listing_pages_with_a_cursor_until_exhausted() {
    let server = Server::start();
    let mut changes: Vec<Value> =
        (0..5).map(|i| create(&format!("p{i}"), "person", json!({"family_name": format!("Person {i}")}))).collect();
    changes.push(create("e0", "referral", json!({"referral_date": "2024-01-01"})));
    changes.push(create("e1", "contact", json!({"contact_date": "2024-01-02"})));
    changes.push(create("a0", "address", json!({"postcode": "LS1 4AP"})));
    let committed = server.commit(&tx(changes));
    let people: BTreeSet<String> = (0..5).map(|i| reference(&committed, &format!("p{i}"))).collect();
    let events: BTreeSet<String> = ["e0", "e1"].iter().map(|l| reference(&committed, l)).collect();

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut query = vec![("type", "person"), ("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let page = server.get_q("/v1/entities", &query).ok();
        let items = ids(&page["items"]);
        sizes.push(items.len());
        seen.extend(items);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                cursor = None;
                break;
            }
        }
    }
    assert!(cursor.is_none(), "the listing never ended: {sizes:?}");
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen.len(), 5, "every person exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), people);

    let all = server.get("/v1/entities?type=person").ok();
    assert_eq!(ids(&all["items"]).into_iter().collect::<BTreeSet<_>>(), people);
    assert!(all.get("next_cursor").is_none() || all["next_cursor"].is_null(), "{all}");

    let by_kind = server.get("/v1/entities?kind=event").ok();
    assert_eq!(ids(&by_kind["items"]).into_iter().collect::<BTreeSet<_>>(), events, "{by_kind}");
    let by_type = server.get("/v1/entities?kind=event&type=referral").ok();
    assert_eq!(ids(&by_type["items"]), vec![reference(&committed, "e0")]);
    assert_eq!(ids(&server.get("/v1/entities?kind=location").ok()["items"]), vec![reference(&committed, "a0")]);
    assert_eq!(server.get("/v1/entities?type=hospital").ok()["items"], json!([]));
    let everything = server.get("/v1/entities").ok();
    assert_eq!(ids(&everything["items"]).len(), 8, "{everything}");

    server.get("/v1/entities?type=person&kind=event").invalid("type");
    server.get("/v1/entities?type=spaceship").invalid("type");
    server.get("/v1/entities?kind=vehicle").invalid("kind");
    server.get("/v1/entities?type=person&cursor=%21%21%21").invalid("cursor");
    server.get("/v1/entities?type=person&limit=0").invalid("limit");
    server.get("/v1/entities?type=person&limit=100000").invalid("limit");
    server.get("/v1/entities?type=person&limit=-1").problem(400, "invalid-request", None);
    server.get("/v1/entities?type=person&limit=many").problem(400, "invalid-request", None);
    server.get("/v1/entities?type=person&sort=name").invalid("query");
}

// ---------------------------------------------------------------- search and identifiers

#[test]
fn search_matches_normalised_values_and_intersects_parameters() {
    let server = Server::start();
    let committed = server.commit(&tx(vec![
        create_with_nhs(
            "mary",
            json!({"family_name": "O'Brien", "given_name": "Mary", "birth_date": "1950-02-03"}),
            NHS,
        ),
        create("john", "person", json!({"family_name": "OBrien", "given_name": "John"})),
        create("sam", "person", json!({"family_name": "Smith", "given_name": "Mary"})),
        create("home", "address", json!({"line1": "1 High Street", "postcode": "LS1 4AP"})),
    ]));
    let mary = reference(&committed, "mary");
    let john = reference(&committed, "john");
    let sam = reference(&committed, "sam");
    let home = reference(&committed, "home");
    let search = |query: &[(&str, &str)]| ids(&server.get_q("/v1/search", query).ok()["items"]);

    assert_eq!(search(&[("nhs_number", NHS)]), vec![mary.clone()]);
    assert_eq!(search(&[("nhs_number", NHS_SPACED)]), vec![mary.clone()]);
    assert_eq!(search(&[("nhs_number", NHS_UNUSED)]), Vec::<String>::new());

    let obriens = sorted(vec![mary.clone(), john.clone()]);
    for name in ["O'Brien", "obrien", "OBRIEN", "o brien", "O-Brien"] {
        assert_eq!(search(&[("family_name", name)]), obriens, "family_name {name:?}");
    }
    assert_eq!(search(&[("family_name", "smith")]), vec![sam.clone()]);
    assert_eq!(search(&[("given_name", "MARY")]), sorted(vec![mary.clone(), sam.clone()]));
    assert_eq!(search(&[("birth_date", "1950-02-03")]), vec![mary.clone()]);

    for postcode in ["LS1 4AP", "ls14ap", "LS14AP", " ls1  4ap "] {
        assert_eq!(search(&[("postcode", postcode)]), vec![home.clone()], "postcode {postcode:?}");
    }

    // Every parameter given must match.
    assert_eq!(search(&[("family_name", "obrien"), ("given_name", "mary")]), vec![mary.clone()]);
    assert_eq!(search(&[("family_name", "obrien"), ("given_name", "john")]), vec![john.clone()]);
    assert_eq!(search(&[("given_name", "mary"), ("nhs_number", NHS)]), vec![mary.clone()]);
    assert_eq!(search(&[("family_name", "smith"), ("nhs_number", NHS)]), Vec::<String>::new());
    assert_eq!(search(&[("family_name", "obrien"), ("postcode", "LS1 4AP")]), Vec::<String>::new());

    server.get("/v1/search").invalid("query");
    server.get_q("/v1/search", &[("nhs_number", NHS_BAD)]).invalid("nhs_number");
    server.get_q("/v1/search", &[("nhs_number", "12345")]).invalid("nhs_number");
    server.get_q("/v1/search", &[("nhs_number", "not a number")]).invalid("nhs_number");
    server.get_q("/v1/search", &[("family_name", "'-")]).invalid("family_name");
    server.get_q("/v1/search", &[("shoe_size", "9")]).invalid("query");
}

#[test]
fn identifiers_are_found_normalised_or_not_found_or_refused() {
    let server = Server::start();
    let committed = server.commit(&tx(vec![json!({"target": {"ref": "p"}, "op": {
        "op": "create", "type": "person", "set": {"family_name": "Smith"},
        "identifiers": [
            {"system": "nhs-number", "value": NHS},
            {"system": "council:305:client", "value": "C-1001"}
        ]
    }})]));
    let person = reference(&committed, "p");

    let found = server.get(&format!("/v1/identifiers/nhs-number/{NHS}")).ok();
    assert_eq!(found["items"], json!([person.clone()]), "{found}");
    let spaced = server.get("/v1/identifiers/nhs-number/943%20476%205919").ok();
    assert_eq!(spaced["items"], json!([person.clone()]), "{spaced}");
    let local = server.get("/v1/identifiers/council:305:client/C-1001").ok();
    assert_eq!(local["items"], json!([person.clone()]), "{local}");

    server.get(&format!("/v1/identifiers/nhs-number/{NHS_UNUSED}")).problem(404, "not-found", None);
    server.get("/v1/identifiers/council:305:client/C-9999").problem(404, "not-found", None);
    server.get("/v1/identifiers/council:999:client/C-1001").problem(404, "not-found", None);

    server.get(&format!("/v1/identifiers/nhs-number/{NHS_BAD}")).invalid("identifier");
    server.get("/v1/identifiers/nhs-number/123").invalid("identifier");
    server.get("/v1/identifiers/no-such-system/1").invalid("identifier");
    server.get("/v1/identifiers/cqc-location/12345").invalid("identifier");
}

// ---------------------------------------------------------------- journal

#[test]
fn the_journal_pages_in_order_with_the_head() {
    let server = Server::start();
    for i in 0..5 {
        server.commit(&tx(vec![create("p", "person", json!({"family_name": format!("Person {i}")}))]));
    }
    let seqs = |page: &Value| -> Vec<u64> {
        page["transactions"].as_array().unwrap().iter().map(|t| t["seq"].as_u64().unwrap()).collect()
    };

    let all = server.get("/v1/journal").ok();
    assert_eq!(seqs(&all), vec![1, 2, 3, 4, 5]);
    assert_eq!(all["head_seq"], 5);
    let first = &all["transactions"][0];
    assert_eq!(first["actor"], "test-admin", "{first}");
    assert_eq!(first["role"], "admin", "{first}");
    assert_eq!(first["changes"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["changes"][0]["change"], "create", "{first}");
    // Identifiable values are sealed at rest and opened for a caller allowed to see them.
    assert_eq!(first["changes"][0]["delta"][0]["after"], "Person 0", "{first}");

    let mut after = 0;
    let mut walked = Vec::new();
    let mut pages = 0;
    loop {
        let page = server.get_q("/v1/journal", &[("after", after.to_string().as_str()), ("limit", "2")]).ok();
        assert_eq!(page["head_seq"], 5, "{page}");
        let got = seqs(&page);
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 2, "{page}");
        after = *got.last().unwrap();
        walked.extend(got);
        pages += 1;
        assert!(pages <= 5, "the feed never ended");
    }
    assert_eq!(walked, vec![1, 2, 3, 4, 5]);
    assert_eq!(seqs(&server.get("/v1/journal?after=2&limit=2").ok()), vec![3, 4]);
    assert_eq!(seqs(&server.get("/v1/journal?after=4").ok()), vec![5]);
    let beyond = server.get("/v1/journal?after=99").ok();
    assert_eq!(seqs(&beyond), Vec::<u64>::new());
    assert_eq!(beyond["head_seq"], 5);

    server.get("/v1/journal?limit=0").invalid("limit");
    server.get("/v1/journal?limit=100000").invalid("limit");
    server.get("/v1/journal?after=-1").problem(400, "invalid-request", None);
    server.get("/v1/journal?after=first").problem(400, "invalid-request", None);
    server.get("/v1/journal?before=3").invalid("query");
}

// ---------------------------------------------------------------- compression

#[test]
fn large_answers_are_gzipped_when_asked() {
    let server = Server::start();
    let changes: Vec<Value> =
        (0..300).map(|i| create(&format!("p{i}"), "person", json!({"family_name": format!("Person {i}")}))).collect();
    server.commit(&tx(changes));

    let plain = server.get("/v1/entities?type=person&limit=1000");
    assert!(plain.header(CONTENT_ENCODING).is_none(), "not asked, not compressed");
    assert_eq!(ids(&plain.ok()["items"]).len(), 300);

    let request = server.client.get(server.url("/v1/entities?type=person&limit=1000")).header(ACCEPT_ENCODING, "gzip");
    let gzipped = server.send(request);
    assert_eq!(gzipped.status, 200, "{}", gzipped.text());
    assert_eq!(gzipped.header(CONTENT_ENCODING), Some("gzip"));
    assert!(gzipped.header(CONTENT_TYPE).unwrap().starts_with("application/json"));
    assert_eq!(&gzipped.body[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(gzipped.body.len() < plain.body.len(), "{} >= {}", gzipped.body.len(), plain.body.len());

    // Problems are compressed too when asked, and still problems.
    let request = server.client.get(server.url("/v1/entities?limit=0")).header(ACCEPT_ENCODING, "gzip");
    let problem = server.send(request);
    assert_eq!(problem.status, 400);
    assert!(problem.header(CONTENT_TYPE).unwrap().starts_with("application/problem+json"));
}

#[test]
fn a_known_path_with_another_method_is_405_and_a_401_names_its_scheme() {
    let server = Server::start();
    let client = reqwest::blocking::Client::new();
    for (method, path) in [(reqwest::Method::DELETE, "/v1/entities"), (reqwest::Method::POST, "/health")] {
        let answer = server.send(client.request(method, server.url(path)));
        answer.problem(405, "method-not-allowed", None);
    }
    let closed = Server::launch(false);
    let answer = closed.get("/v1/entities");
    answer.problem(401, "unauthorized", None);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn listing_by_council_pages_through_what_that_council_contributed() {
    let server = Server::start();
    for (council, name) in [("305", "Ames"), ("305", "Bell"), ("305", "Cole"), ("318", "Dunn")] {
        let body =
            json!({"source": {"council": council}, "changes": [create("p", "person", json!({"family_name": name}))]});
        server.commit(&body);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("council", "305"), ("type", "person"), ("limit", "2")];
        if let Some(c) = &cursor {
            query.push(("cursor", c.as_str()));
        }
        let page = server.get_q("/v1/entities", &query).ok();
        seen.extend(ids(&page["items"]));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(ids(&server.get_q("/v1/entities", &[("council", "318")]).ok()["items"]).len(), 1);
    server.get_q("/v1/entities", &[("council", "30/5")]).invalid("council");
}
