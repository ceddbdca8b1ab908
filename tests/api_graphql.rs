//! End-to-end: GraphQL against the real binary over real sockets. Every root field (queries,
//! the mutation, the subscription), as-of traversal after updates, kind fragments, the depth
//! and complexity limits, and the change-feed subscription over a WebSocket speaking
//! `graphql-transport-ws` (connection_init/ack, subscribe, next, complete).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::Message;

const NHS: &str = "9434765919";

struct Server {
    /// Owns the child process: the server lives as long as this value.
    _serving: common::Serving,
    addr: String,
    client: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut serving = common::serve(&dir.path().join("store"), &dir.path().join("stderr.log"), &[]);
    let mut addr = String::new();
    serving.wait_for(|line| match line.strip_prefix("listening on http://") {
        Some(found) => {
            addr = found.trim().to_owned();
            true
        }
        None => false,
    });
    Server { _serving: serving, addr, client: common::admin_client(), _dir: dir }
}

impl Server {
    /// Posts a GraphQL request; answers the HTTP status and the body.
    fn gql(&self, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("http://{}/graphql", self.addr))
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap())
    }

    /// The data of an answer that must have no errors.
    fn data(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql(query, variables);
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The first error of an answer that must have one.
    fn error(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql(query, variables);
        assert_eq!(status, 200, "{body}");
        body["errors"].as_array().and_then(|e| e.first()).cloned().unwrap_or_else(|| panic!("expected errors: {body}"))
    }

    /// Commits one transaction through the GraphQL mutation; answers the committed transaction.
    fn commit(&self, input: Value) -> Value {
        self.data("mutation($input: JSON!) { transaction(input: $input) }", json!({"input": input}))["transaction"]
            .clone()
    }
}

/// A person with an address and two events about them (seq 1), then the person renamed, the
/// address's postcode corrected and the referral's outcome recorded (seq 2). Answers the
/// ids (person, address, referral, contact).
fn seed(server: &Server) -> (String, String, String, String) {
    let first = server.commit(json!({"reason": "new client", "changes": [
        {"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
            "set": {"family_name": "Smith", "given_name": "Ann", "birth_date": "1950-02-03"},
            "identifiers": [{"system": "nhs-number", "value": NHS}]}},
        {"target": {"ref": "a"}, "op": {"op": "create", "type": "address", "set": {"line1": "1 High Street", "postcode": "LS1 4AP"}}},
        {"target": {"ref": "r"}, "op": {"op": "create", "type": "referral", "set": {"referral_date": "2024-03-01"}}},
        {"target": {"ref": "c"}, "op": {"op": "create", "type": "contact", "set": {"contact_date": "2024-02-01"}}},
        {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}},
        {"target": {"ref": "r"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
        {"target": {"ref": "c"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
        {"target": {"ref": "r"}, "op": {"op": "link", "role": "occurred_at", "to": {"ref": "a"}}},
    ]}));
    assert_eq!(first["seq"], 1, "{first}");
    let id = |r: &str| first["refs"][r].as_str().unwrap().to_owned();
    let (person, address, referral, contact) = (id("p"), id("a"), id("r"), id("c"));
    let second = server.commit(json!({"changes": [
        {"target": {"entity": person}, "op": {"op": "update", "set": {"family_name": "Jones"}}},
        {"target": {"entity": address}, "op": {"op": "update", "set": {"postcode": "LS2 9JT"}}},
        {"target": {"entity": referral}, "op": {"op": "update", "set": {"outcome": "assessment offered"}}},
    ]}));
    assert_eq!(second["seq"], 2, "{second}");
    (person, address, referral, contact)
}

#[test]
fn every_query_root_answers_over_http() {
    let server = start();
    let (person, _, referral, contact) = seed(&server);
    let d = server.data(
        r#"query($id: ID!, $nhs: String) {
            entity(id: $id) { id kind type version ... on Person { family_name given_name } }
            entities(kind: "event", first: 1) { items { id ... on Event { type } } nextCursor }
            search(nhsNumber: $nhs, familyName: "jones") { id }
            identifier(system: "nhs-number", value: $nhs) { id }
            history(id: $id) { version seq actor change }
            diff(id: $id, from: 1, to: 3) { from to delta }
            journal(after: 0, first: 10) { headSeq transactions { seq actor reason } }
        }"#,
        json!({"id": person, "nhs": NHS}),
    );
    assert_eq!(d["entity"]["id"], person.as_str());
    assert_eq!(d["entity"]["kind"], "person");
    assert_eq!(d["entity"]["family_name"], "Jones");
    assert_eq!(d["entity"]["given_name"], "Ann");
    assert_eq!(d["entity"]["version"], 3, "created, linked to the address, renamed");
    let page = &d["entities"];
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["nextCursor"].as_str().expect("two events make two pages of one");
    let next = server.data(
        r#"query($after: String) { entities(kind: "event", first: 1, after: $after) { items { id } nextCursor } }"#,
        json!({"after": cursor}),
    );
    let mut events = vec![page["items"][0]["id"].clone(), next["entities"]["items"][0]["id"].clone()];
    events.sort_by_key(|v| v.as_str().map(str::to_owned));
    let mut expected = vec![json!(referral), json!(contact)];
    expected.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(events, expected);
    assert_eq!(next["entities"]["nextCursor"], Value::Null);

    assert_eq!(d["search"], json!([{"id": person}]), "NHS number and a normalised family name");
    assert_eq!(d["identifier"], json!([{"id": person}]));
    let history = d["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["seq"], 2);
    assert_eq!(history[0]["actor"], "test-admin");
    let delta = d["diff"]["delta"].to_string();
    assert!(delta.contains("Smith") && delta.contains("Jones"), "{delta}");
    assert_eq!(d["journal"]["headSeq"], 2);
    assert_eq!(d["journal"]["transactions"][0], json!({"seq": 1, "actor": "test-admin", "reason": "new client"}));

    // The REST listing and GraphQL share one cursor: a REST cursor pages GraphQL.
    let rest: Value = server
        .client
        .get(format!("http://{}/v1/entities?kind=event&limit=1", server.addr))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let from_rest = server.data(
        r#"query($after: String) { entities(kind: "event", first: 1, after: $after) { items { id } } }"#,
        json!({"after": rest["next_cursor"]}),
    );
    assert_eq!(from_rest["entities"]["items"][0]["id"], next["entities"]["items"][0]["id"]);

    // The batched reads those queries made are counted in /metrics.
    let metrics = server.client.get(format!("http://{}/metrics", server.addr)).send().unwrap().text().unwrap();
    let batches = metrics
        .lines()
        .find_map(|line| line.strip_prefix("pole_graphql_batches_total "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no batch counter in {metrics}"));
    assert!(batches > 0, "{metrics}");
}

#[test]
fn as_of_traversal_reads_a_person_and_their_events_before_and_after_an_update() {
    let server = start();
    let (person, _, referral, contact) = seed(&server);
    let query = r#"query($id: ID!, $asOf: String) { entity(id: $id, asOf: $asOf) {
        version
        ... on Person { family_name }
        history { seq }
        events: links(role: "subject", direction: "in") { entity {
            id version
            ... on Referral { outcome }
            ... on Event { places: links(role: "occurred_at") { entity { ... on Location { postcode } } } }
        } }
    } }"#;
    let before = server.data(query, json!({"id": person, "asOf": "1"}));
    let e = &before["entity"];
    assert_eq!(e["family_name"], "Smith", "{before}");
    assert_eq!(e["history"].as_array().unwrap().len(), 2, "no version recorded after seq 1");
    let events = e["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{before}");
    let find = |events: &[Value], id: &str| events.iter().find(|l| l["entity"]["id"] == id).cloned().unwrap();
    let old_referral = find(events, &referral);
    assert_eq!(old_referral["entity"]["outcome"], Value::Null, "the outcome was recorded later");
    assert_eq!(old_referral["entity"]["places"][0]["entity"]["postcode"], "LS1 4AP", "two hops down, still seq 1");
    assert!(find(events, &contact)["entity"].get("places").is_some());

    // A time as of works too: now is after both transactions.
    let now = server.data(query, json!({"id": person}));
    let e = &now["entity"];
    assert_eq!(e["family_name"], "Jones");
    assert_eq!(e["history"].as_array().unwrap().len(), 3);
    let events = e["events"].as_array().unwrap();
    let new_referral = find(events, &referral);
    assert_eq!(new_referral["entity"]["outcome"], "assessment offered");
    assert_eq!(new_referral["entity"]["places"][0]["entity"]["postcode"], "LS2 9JT");

    // After a third update, reading as of seq 2 still shows the second state.
    server.commit(
        json!({"changes": [{"target": {"entity": person}, "op": {"op": "update", "set": {"family_name": "Brown"}}}]}),
    );
    let at_two = server.data(query, json!({"id": person, "asOf": "2"}));
    assert_eq!(at_two["entity"]["family_name"], "Jones");
    let bad = server.error(query, json!({"id": person, "asOf": "99"}));
    assert_eq!(bad["extensions"]["code"], "invalid-request");
    assert_eq!(bad["extensions"]["field"], "as_of");
}

#[test]
fn depth_and_complexity_limits_answer_coded_errors() {
    let server = start();
    let (person, _, _, _) = seed(&server);
    let mut selection = "id".to_owned();
    for _ in 0..7 {
        selection = format!("links {{ entity {{ {selection} }} }}");
    }
    let deep = server.error(&format!("query($id: ID!) {{ entity(id: $id) {{ {selection} }} }}"), json!({"id": person}));
    assert_eq!(deep["extensions"]["code"], "invalid-request", "{deep}");
    assert!(deep["message"].as_str().unwrap().contains("nested deeper"), "{deep}");
    let fields: String = (0..2100).map(|i| format!("f{i}: id ")).collect();
    let costly = server.error(&format!("query($id: ID!) {{ entity(id: $id) {{ {fields} }} }}"), json!({"id": person}));
    assert_eq!(costly["extensions"]["code"], "invalid-request", "{costly}");
    assert!(costly["message"].as_str().unwrap().contains("more than the limit"), "{costly}");
    let refused = server.error(
        "mutation($input: JSON!) { transaction(input: $input) }",
        json!({"input": {"changes": [{"target": {"entity": person}, "op": {"op": "update", "set": {"gender": "banana"}}}]}}),
    );
    assert_eq!(refused["extensions"]["code"], "invalid-change");
    assert_eq!(refused["extensions"]["field"], "gender");
}

// ------------------------------------------------------------------------- WebSocket

type Socket = tungstenite::WebSocket<TcpStream>;

fn bearer() -> String {
    format!("Bearer {}", common::token("admin", None, None))
}

/// Opens `/graphql` as a WebSocket asking for `graphql-transport-ws`, and acknowledges the
/// connection (connection_init, connection_ack).
fn connect(server: &Server) -> Socket {
    connect_as(server, &bearer())
}

fn connect_as(server: &Server, bearer: &str) -> Socket {
    let stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("ws://{}/graphql", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    request.headers_mut().insert("Authorization", bearer.parse().unwrap());
    let (mut socket, response) = tungstenite::client(request, stream).unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    send(&mut socket, json!({"type": "connection_init", "payload": {}}));
    assert_eq!(receive(&mut socket)["type"], "connection_ack");
    socket
}

fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).unwrap();
}

/// The next protocol message (pings are answered by the client library and skipped).
fn receive(socket: &mut Socket) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no message within 10 s");
        match socket.read().unwrap() {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("the server closed the socket: {frame:?}"),
            _ => {}
        }
    }
}

#[test]
fn the_subscription_replays_then_follows_new_commits_over_graphql_transport_ws() {
    let server = start();
    let (person, _, _, _) = seed(&server);
    let mut socket = connect(&server);
    send(
        &mut socket,
        json!({"id": "feed", "type": "subscribe", "payload": {
            "query": "subscription($after: Int) { transactions(after: $after) { seq actor entities { id ... on Person { family_name } } } }",
            "variables": {"after": 1}}}),
    );
    // Replay: the transaction after seq 1 that was committed before subscribing.
    let replayed = receive(&mut socket);
    assert_eq!(replayed["type"], "next", "{replayed}");
    assert_eq!(replayed["id"], "feed");
    assert_eq!(replayed["payload"]["data"]["transactions"]["seq"], 2, "{replayed}");

    // Live: a commit made after subscribing arrives, its entities read right after it.
    let committed = server.commit(json!({"changes": [
        {"target": {"entity": person}, "op": {"op": "update", "set": {"family_name": "Brown"}}}]}));
    let live = receive(&mut socket);
    assert_eq!(live["type"], "next", "{live}");
    let tx = &live["payload"]["data"]["transactions"];
    assert_eq!(tx["seq"], committed["seq"]);
    assert_eq!(tx["actor"], "test-admin");
    assert_eq!(tx["entities"], json!([{"id": person, "family_name": "Brown"}]));

    // The client ends the subscription; the connection stays usable. A query over the socket
    // is answered with one next and then the server's complete.
    send(&mut socket, json!({"id": "feed", "type": "complete"}));
    send(
        &mut socket,
        json!({"id": "q", "type": "subscribe", "payload": {"query": "{ journal(after: 2) { headSeq } }"}}),
    );
    // async-graphql confirms a client's complete with its own; the protocol allows either.
    let mut answer = receive(&mut socket);
    if answer == json!({"type": "complete", "id": "feed"}) {
        answer = receive(&mut socket);
    }
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["id"], "q");
    assert_eq!(answer["payload"]["data"]["journal"]["headSeq"], 3);
    assert_eq!(receive(&mut socket), json!({"type": "complete", "id": "q"}));

    // A start point past the head is a coded error on the subscription.
    send(
        &mut socket,
        json!({"id": "bad", "type": "subscribe", "payload": {"query": "subscription { transactions(after: 99) { seq } }"}}),
    );
    let refused = receive(&mut socket);
    let errors = if refused["type"] == "error" { &refused["payload"] } else { &refused["payload"]["errors"] };
    assert_eq!(errors[0]["extensions"]["code"], "invalid-request", "{refused}");
    assert_eq!(errors[0]["extensions"]["field"], "after", "{refused}");
    let _ = socket.close(None);
}

/// The errors of an operation's answer: a `next` carrying errors, or an `error` message.
fn errors_of(message: &Value) -> Option<&Value> {
    match message["type"].as_str() {
        Some("error") => Some(&message["payload"]),
        Some("next") => message["payload"].get("errors"),
        _ => None,
    }
}

#[test]
fn a_subscription_ends_unauthorized_when_its_token_expires_and_the_socket_serves_no_more() {
    let server = start();
    let ttl = 3;
    let (token, exp) = common::expiring_token("admin", None, None, ttl);
    let mut socket = connect_as(&server, &format!("Bearer {token}"));
    send(
        &mut socket,
        json!({"id": "feed", "type": "subscribe", "payload": {"query": "subscription { transactions(after: 0) { seq } }"}}),
    );
    let committed = server.commit(json!({"changes": [
        {"target": {"ref": "p"}, "op": {"op": "create", "type": "person", "set": {"family_name": "Adebayo"}}}]}));
    let live = receive(&mut socket);
    assert_eq!(live["payload"]["data"]["transactions"]["seq"], committed["seq"], "delivered while valid: {live}");

    // Messages until the subscription's error, for at most the token's life and a margin
    // (each `receive` also gives up after 10 s).
    let deadline = Instant::now() + Duration::from_secs(ttl as u64 + 10);
    let ended = loop {
        assert!(Instant::now() < deadline, "the subscription outlived its token");
        let message = receive(&mut socket);
        assert_eq!(message["id"], "feed", "{message}");
        if let Some(errors) = errors_of(&message) {
            break errors.clone();
        }
        assert_eq!(message["type"], "next", "{message}");
    };
    assert!(chrono::Utc::now().timestamp() >= exp, "the subscription ended before its token expired");
    assert_eq!(ended[0]["extensions"]["code"], "unauthorized", "{ended}");
    assert_eq!(receive(&mut socket), json!({"type": "complete", "id": "feed"}));

    // The connection outlived the token, its operations do not.
    send(&mut socket, json!({"id": "q", "type": "subscribe", "payload": {"query": "{ journal { headSeq } }"}}));
    let refused = receive(&mut socket);
    let errors = errors_of(&refused).unwrap_or_else(|| panic!("answered after the token expired: {refused}"));
    assert_eq!(errors[0]["extensions"]["code"], "unauthorized", "{refused}");
    let _ = socket.close(None);
}

#[test]
fn a_plain_get_is_graphiql_and_an_upgrade_without_a_protocol_is_refused() {
    let server = start();
    let page = server.client.get(format!("http://{}/graphql", server.addr)).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("graphiql"));
    let stream = TcpStream::connect(&server.addr).unwrap();
    let mut request = format!("ws://{}/graphql", server.addr).into_client_request().unwrap();
    request.headers_mut().insert("Authorization", bearer().parse().unwrap());
    let refused = tungstenite::client(request, stream);
    match refused {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            assert_eq!(response.status().as_u16(), 400)
        }
        other => panic!("expected a refusal, got {:?}", other.map(|(_, r)| r.status())),
    }
}
