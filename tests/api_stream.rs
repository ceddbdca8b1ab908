//! End-to-end: the change feed's server-sent events, metrics and request ids, against the
//! real binary over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Server {
    /// Owns the child process: the server lives as long as this value.
    _serving: common::Serving,
    addr: String,
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
    Server { _serving: serving, addr, _dir: dir }
}

fn create_person(server: &Server, family_name: &str) -> u64 {
    let body = serde_json::json!({"changes": [{"target": {"ref": "p"}, "op": {"op": "create", "type": "person", "set": {"family_name": family_name}}}]});
    let answer: serde_json::Value = common::admin_client()
        .post(format!("http://{}/v1/transactions", server.addr))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["seq"].as_u64().unwrap()
}

/// Opens the stream with raw HTTP and returns the socket positioned after the headers.
fn open_stream(server: &Server, extra_header: &str) -> BufReader<TcpStream> {
    open_stream_as(server, &common::token("admin", None, None), extra_header)
}

fn open_stream_as(server: &Server, token: &str, extra_header: &str) -> BufReader<TcpStream> {
    let mut socket = TcpStream::connect(&server.addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        socket,
        "GET /v1/journal/stream HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n{extra_header}Accept: text/event-stream\r\n\r\n",
        server.addr,
    )
    .unwrap();
    let mut reader = BufReader::new(socket);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains("200"), "{status}");
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "\r\n" {
            break;
        }
    }
    reader
}

/// Reads SSE event ids until `n` have arrived (chunked transfer framing lines are skipped).
fn read_ids(reader: &mut BufReader<TcpStream>, n: usize) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ids = Vec::new();
    while ids.len() < n {
        assert!(Instant::now() < deadline, "only {ids:?} arrived");
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(id) = line.trim().strip_prefix("id: ") {
            ids.push(id.parse().unwrap());
        }
    }
    ids
}

#[test]
fn the_stream_sends_every_transaction_in_order_and_resumes_after_a_disconnect() {
    let server = start();
    let first = create_person(&server, "Adebayo");
    let second = create_person(&server, "Brennan");
    {
        let mut stream = open_stream(&server, "Last-Event-ID: 0\r\n");
        assert_eq!(read_ids(&mut stream, 2), vec![first, second]);
        // Live: a commit after the stream opened arrives on it.
        let third = create_person(&server, "Chowdhury");
        assert_eq!(read_ids(&mut stream, 1), vec![third]);
    }
    // Disconnected; two more commits; resume from the last id seen.
    let fourth = create_person(&server, "Davies");
    let fifth = create_person(&server, "Evans");
    let mut stream = open_stream(&server, &format!("Last-Event-ID: {}\r\n", fifth - 2));
    assert_eq!(read_ids(&mut stream, 2), vec![fourth, fifth]);
}

#[test]
fn the_stream_ends_with_an_unauthorized_event_when_its_token_expires() {
    let server = start();
    let first = create_person(&server, "Adebayo");
    let ttl = 3;
    let (token, exp) = common::expiring_token("admin", None, None, ttl);
    // `Connection: close`: the server closes the socket once the stream has ended.
    let mut stream = open_stream_as(&server, &token, "Last-Event-ID: 0\r\nConnection: close\r\n");
    assert_eq!(read_ids(&mut stream, 1), vec![first], "delivered while the token is valid");

    // Lines until the server closes the connection, for at most the token's life and a margin
    // (each read also times out after 10 s).
    let deadline = Instant::now() + Duration::from_secs(ttl as u64 + 10);
    let mut lines = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "the stream outlived its token: {lines:?}");
        let mut line = String::new();
        if stream.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines.push(line.trim().to_owned());
    }
    assert!(chrono::Utc::now().timestamp() >= exp, "the stream ended before its token expired");
    let at = lines.iter().position(|l| l == "event: error").unwrap_or_else(|| panic!("no error event: {lines:?}"));
    let data = lines[at + 1].strip_prefix("data: ").unwrap_or_else(|| panic!("no data: {lines:?}"));
    let problem: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(problem["code"], "unauthorized", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
}

#[test]
fn a_bad_resume_point_is_a_problem_document() {
    let server = start();
    let client = common::admin_client();
    let answer = client
        .get(format!("http://{}/v1/journal/stream", server.addr))
        .header("Last-Event-ID", "yesterday")
        .send()
        .unwrap();
    assert_eq!(answer.status(), 400);
    let problem: serde_json::Value = answer.json().unwrap();
    assert_eq!(problem["field"], "Last-Event-ID");
    let answer = client.get(format!("http://{}/v1/journal/stream?after=99", server.addr)).send().unwrap();
    assert_eq!(answer.status(), 400);
}

#[test]
fn metrics_count_requests_by_route_and_every_answer_has_a_request_id() {
    let server = start();
    let client = common::admin_client();
    create_person(&server, "Fletcher");
    for id in ["AAA", "BBB"] {
        let answer = client.get(format!("http://{}/v1/entities/{id}", server.addr)).send().unwrap();
        assert_eq!(answer.status(), 404);
        assert!(answer.headers().get("x-request-id").is_some());
    }
    let echoed =
        client.get(format!("http://{}/health", server.addr)).header("x-request-id", "trace-42").send().unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");
    let mut body = String::new();
    client.get(format!("http://{}/metrics", server.addr)).send().unwrap().read_to_string(&mut body).unwrap();
    assert!(
        body.contains(r#"pole_http_requests_total{method="GET",route="/v1/entities/{id}",status="404"} 2"#),
        "{body}"
    );
    assert!(body.contains("pole_journal_head_seq 1"), "{body}");
    assert!(body.contains("pole_projection_lag_transactions 0"), "{body}");
    assert!(body.contains("pole_http_request_duration_seconds_bucket"), "{body}");
}
