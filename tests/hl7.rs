//! End-to-end tests of HL7 v2: the real binary ingesting `examples/hl7/adt-batch.hl7`
//! (report, store, idempotent re-ingest), a home address moved by an A08, and `serve
//! --mllp` over a real TCP socket (ACK codes, MSA-2, a frame split across writes, a resend
//! applied once, the connection limit and the idle timeout).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{json, pole};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

/// Margaret Smith's NHS number in the example file (999 test range, passes Modulus 11).
const NHS: &str = "9990000018";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hl7/adt-batch.hl7")
}

fn ingest(data: &Path, extra: &[&str]) -> (Output, Value) {
    let path = example();
    let mut args = vec!["--json", "ingest", path.to_str().unwrap(), "--format", "hl7"];
    args.extend_from_slice(extra);
    let output = pole(data, &args);
    let report = json(&output);
    (output, report)
}

fn stats(data: &Path) -> Value {
    let output = pole(data, &["--json", "stats"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    json(&output)
}

/// A running `pole-ods serve --mllp` on a data directory; killed on drop.
struct Server {
    /// Owns the child process: the server lives as long as this value.
    _serving: common::Serving,
    http: String,
    mllp: String,
}

impl Server {
    fn start(data: &Path, log: PathBuf) -> Self {
        Server::start_with(data, log, &[])
    }

    fn start_with(data: &Path, log: PathBuf, extra: &[&str]) -> Self {
        let mut args = vec!["--mllp", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut serving = common::serve(data, &log, &args);
        let (mut http, mut mllp) = (String::new(), String::new());
        serving.wait_for(|line| {
            if let Some(addr) = line.strip_prefix("mllp listening on ") {
                mllp = addr.trim().to_owned();
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                http = addr.trim().to_owned();
            }
            !http.is_empty() && !mllp.is_empty()
        });
        assert!(mllp.starts_with("127.0.0.1:") && !mllp.ends_with(":0"), "{mllp}");
        Server { _serving: serving, http, mllp }
    }

    fn get(&self, path: &str) -> Value {
        let response = common::admin_client().get(format!("{}{path}", self.http)).send().expect("HTTP request");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().expect("JSON body")
    }

    fn head(&self) -> u64 {
        self.get("/ready")["head_seq"].as_u64().unwrap()
    }
}

#[test]
fn a_batch_file_ingests_one_transaction_a_message_and_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");

    // A dry run reports every message and writes nothing.
    let (out, dry) = ingest(&data, &["--dry-run"]);
    assert!(out.status.success(), "{dry}");
    assert_eq!(dry["status"], "dry_run");
    assert_eq!(stats(&data)["transactions"], 0);

    let (out, report) = ingest(&data, &[]);
    assert!(out.status.success(), "one rejected message does not stop the others: {report}");
    assert_eq!(report["format"], "hl7");
    assert_eq!(report["council"], "(MSH-4)");
    assert_eq!(report["status"], "committed");
    assert_eq!((report["accepted"].as_u64(), report["rejected"].as_u64()), (Some(7), Some(1)), "{report}");
    assert_eq!(report["rows_read"], 8);
    // Only messages with findings are listed: the fifth, whose only identifier is a
    // mistyped NHS number.
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["row"], 5);
    assert_eq!(rows[0]["outcome"], "rejected");
    assert_eq!(rows[0]["line"], 19, "the MSH's line in the file");
    assert_eq!(rows[0]["issues"][0]["column"], "PID-3");
    assert!(rows[0]["issues"][0]["reason"].as_str().unwrap().contains("no usable identifier"), "{report}");
    let first = stats(&data);
    assert_eq!(first["transactions"], 7, "one transaction a message: {first}");
    assert_eq!(first["changes"].as_u64(), Some(report["changes"].as_u64().unwrap()));
    // Margaret, her duplicate (merged), two addresses, three hospital events, the hospital.
    assert_eq!(first["entities"], 8, "{first}");

    // The same file again: every message already applied, nothing written.
    let (out, again) = ingest(&data, &[]);
    assert!(out.status.success());
    assert_eq!(again["status"], "unchanged", "{again}");
    assert_eq!((again["accepted"].as_u64(), again["rejected"].as_u64()), (Some(7), Some(1)));
    let applied: Vec<&Value> =
        again["rows"].as_array().unwrap().iter().filter(|r| r["outcome"] == "accepted").collect();
    assert_eq!(applied.len(), 7, "each applied message says so: {again}");
    for row in applied {
        let note = row["issues"][0]["reason"].as_str().unwrap_or_default();
        assert!(note.starts_with("already applied"), "{row}");
    }
    assert_eq!(stats(&data), first);

    // The person, found by NHS number over HTTP, then read with `entity`.
    let person = {
        let server = Server::start(&data, dir.path().join("serve.log"));
        let found = server.get(&format!("/v1/identifiers/nhs-number/{NHS}"));
        let person = found["items"][0].as_str().unwrap().to_owned();
        let people = server.get("/v1/entities?type=person");
        let people: Vec<&str> = people["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(people.len(), 2, "{people:?}");
        let duplicate = people.iter().find(|id| **id != person).unwrap();
        let duplicate = server.get(&format!("/v1/entities/{duplicate}"));
        assert_eq!(duplicate["status"]["state"], "merged", "the A40 merged the duplicate: {duplicate}");
        // The journal names the command line as the writer, in the role it submits in: a
        // facility's system, without a council.
        let journal = server.get("/v1/journal");
        let written = journal["transactions"].as_array().unwrap();
        assert_eq!(written.len(), 7, "{journal}");
        for tx in written {
            assert_eq!(tx["actor"], "pole-ods ingest", "{tx}");
            assert_eq!(tx["role"], "system", "{tx}");
        }
        person
    };
    let out = pole(&data, &["--json", "entity", &person]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entity = json(&out);
    let state = &entity["entity"];
    assert_eq!(state["attributes"]["family_name"]["value"], "Smith");
    assert_eq!(state["attributes"]["birth_date"]["value"], "1940-03-12");
    assert_eq!(state["attributes"]["family_name"]["provenance"]["council"], "RR8", "MSH-4 is the source");
    // NHS number and K123456, and K999, which the A40 moved from the merged duplicate.
    assert_eq!(state["identifiers"].as_array().unwrap().len(), 3, "{state}");
    let links = entity["links"].as_array().unwrap();
    let role = |r: &str| links.iter().filter(|l| l["role"] == r).count();
    assert_eq!(role("subject"), 3, "admission, transfer and discharge: {links:?}");
    assert_eq!(role("resides_at"), 1, "the A08's care home replaced the A28's home: {links:?}");

    // With --council, the council is the source, and a council does not merge: the A40 is
    // refused, naming why, and the other messages are stored.
    let other = dir.path().join("other");
    let (_, council) = ingest(&other, &["--council", "305"]);
    assert_eq!(council["council"], "305");
    assert_eq!(council["rejected"], 2, "the A40 and the message without a usable identifier: {council}");
    let refused = &council["rows"].as_array().unwrap().iter().find(|r| r["issues"][0]["column"] == "MSH-9").unwrap();
    let reason = refused["issues"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("merge") && reason.contains("decided nationally"), "{refused}");
    assert_eq!(stats(&other)["transactions"], 6);
}

/// Sends bytes and reads `count` framed ACKs back, as HL7 text.
fn read_acks(stream: &mut TcpStream, count: usize) -> Vec<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while buffer.windows(2).filter(|w| w == b"\x1c\r").count() < count {
        let n = stream.read(&mut chunk).expect("read ACK");
        assert!(n > 0, "connection closed after {:?}", String::from_utf8_lossy(&buffer));
        buffer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(buffer).unwrap();
    let acks: Vec<String> =
        text.split("\x1c\r").filter(|f| !f.is_empty()).map(|f| f.trim_start_matches('\x0b').to_owned()).collect();
    assert_eq!(acks.len(), count, "{text:?}");
    acks
}

/// MSA-1, MSA-2 and MSA-3 of an ACK.
fn msa(ack: &str) -> (String, String, String) {
    let line = ack.split('\r').find(|s| s.starts_with("MSA|")).unwrap_or_else(|| panic!("no MSA: {ack:?}"));
    let fields: Vec<&str> = line.split('|').collect();
    let at = |i: usize| fields.get(i).copied().unwrap_or_default().to_owned();
    (at(1), at(2), at(3))
}

fn frame(message: &str) -> Vec<u8> {
    let mut out = vec![0x0b];
    out.extend_from_slice(message.as_bytes());
    out.extend_from_slice(b"\x1c\r");
    out
}

fn adt(trigger: &str, control_id: &str, pid3: &str, extra: &str) -> String {
    format!(
        "MSH|^~\\&|PAS|RR8|POLE|LEEDS|20240715093000||ADT^{trigger}|{control_id}|P|2.4\r\
         EVN|{trigger}|20240715093000\r\
         PID|1||{pid3}||Smith^Margaret^^^Mrs^^L||19400312|F|||12 Acacia Avenue^^Leeds^^LS1 4AB^^H\r{extra}"
    )
}

#[test]
fn mllp_acknowledges_each_message_after_it_is_durable_and_a_resend_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("store"), dir.path().join("serve.log"));
    assert_eq!(server.head(), 0);
    let mut stream = TcpStream::connect(&server.mllp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();

    let register = adt("A28", "MLLP-1", &format!("{NHS}^^^NHS^NH~K123456^^^RR8^MR"), "");
    let admit = adt(
        "A01",
        "MLLP-2",
        &format!("{NHS}^^^NHS^NH"),
        "PV1|1|I|AMU^Bay 3^Bed 12^RR8|21||||||MED|||||||||V0001^^^RR8^VN|||||||||||||||||||||||||20240715090000\r",
    );
    // Parses, but no identifier survives (the NHS number fails Modulus 11): AE.
    let unmappable = adt("A08", "MLLP-3", "9990000019^^^NHS^NH", "");

    // The first frame split across writes, the next two in one write with garbage between.
    let first = frame(&register);
    stream.write_all(&first[..25]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(&first[25..]).unwrap();
    let mut rest = frame(&admit);
    rest.extend_from_slice(b"stray bytes outside any frame");
    rest.extend(frame(&unmappable));
    rest.extend(frame("this is not HL7 at all"));
    stream.write_all(&rest).unwrap();

    let acks = read_acks(&mut stream, 4);
    assert_eq!(msa(&acks[0]).0, "AA", "{:?}", acks[0]);
    assert_eq!(msa(&acks[0]).1, "MLLP-1");
    assert!(acks[0].starts_with("MSH|^~\\&|POLE|LEEDS|PAS|RR8|"), "sender and receiver swapped: {:?}", acks[0]);
    assert_eq!(msa(&acks[1]).0, "AA", "{:?}", acks[1]);
    assert_eq!(msa(&acks[1]).1, "MLLP-2");
    let (code, control_id, text) = msa(&acks[2]);
    assert_eq!((code.as_str(), control_id.as_str()), ("AE", "MLLP-3"), "{:?}", acks[2]);
    assert!(text.contains("no usable identifier"), "{text}");
    assert!(acks[2].contains("\rERR|"), "{:?}", acks[2]);
    assert_eq!(msa(&acks[3]).0, "AR", "{:?}", acks[3]);

    // AA means durable: the head already holds both transactions.
    let head = server.head();
    assert_eq!(head, 2);

    // A resend of MLLP-1 on a new connection: AA, and nothing written.
    let mut again = TcpStream::connect(&server.mllp).unwrap();
    again.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    again.write_all(&frame(&register)).unwrap();
    let acks = read_acks(&mut again, 1);
    assert_eq!(msa(&acks[0]), ("AA".to_owned(), "MLLP-1".to_owned(), String::new()), "{:?}", acks[0]);
    assert_eq!(server.head(), head, "a resent control id is not applied twice");
    let journal = server.get("/v1/journal");
    assert_eq!(journal["transactions"].as_array().unwrap().len(), 2, "{journal}");
    for tx in journal["transactions"].as_array().unwrap() {
        assert_eq!(tx["actor"], "mllp", "{tx}");
        assert_eq!(tx["role"], "system", "{tx}");
    }

    // One person, found by the NHS number the two messages share.
    let found = server.get(&format!("/v1/identifiers/nhs-number/{NHS}"));
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
}

/// Waits (up to a generous minute) for the peer to close the connection: a read answers
/// end of file, or a reset.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted),
    }
}

/// Polls the server's log (stderr) for `text` for up to a minute.
fn log_shows(log: &Path, text: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(log).unwrap_or_default().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Sends one message and reads its ACK's MSA-1, or `None` when the server closed first.
fn try_message(server: &Server, control_id: &str) -> Option<String> {
    let mut stream = TcpStream::connect(&server.mllp).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(&frame(&adt("A28", control_id, &format!("{NHS}^^^NHS^NH"), ""))).ok()?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buffer.windows(2).any(|w| w == b"\x1c\r") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    Some(msa(&String::from_utf8_lossy(&buffer)).0)
}

#[test]
fn mllp_closes_connections_beyond_the_limit_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = Server::start_with(&dir.path().join("store"), log.clone(), &["--mllp-max-connections", "2"]);
    // Two connections, each proven served by an ACK, hold both places.
    let mut held = Vec::new();
    for n in 0..2 {
        let mut stream = TcpStream::connect(&server.mllp).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        stream.write_all(&frame(&adt("A28", &format!("HOLD-{n}"), &format!("{NHS}^^^NHS^NH"), ""))).unwrap();
        assert_eq!(msa(&read_acks(&mut stream, 1)[0]).0, "AA");
        held.push(stream);
    }
    // A third is accepted by the kernel, then closed by the server without a word.
    let mut third = TcpStream::connect(&server.mllp).unwrap();
    assert!(closed_by_server(&mut third), "the connection over the limit was not closed");
    assert!(log_shows(&log, "too many connections"), "no warning logged:\n{}", std::fs::read_to_string(&log).unwrap());
    assert!(log_shows(&log, "WARN"), "the refusal is a warning");

    // Closing one makes room again (the server notices the close in its own time).
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut code = None;
    while code.is_none() && std::time::Instant::now() < deadline {
        code = try_message(&server, "AFTER");
        if code.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(code.as_deref(), Some("AA"), "no room after a connection closed");
}

#[test]
fn mllp_closes_a_silent_connection_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let server = Server::start_with(&dir.path().join("store"), log, &["--mllp-idle-timeout-secs", "1"]);
    // A message is answered; the connection is closed once it has been silent a second.
    let mut stream = TcpStream::connect(&server.mllp).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(&frame(&adt("A28", "IDLE-1", &format!("{NHS}^^^NHS^NH"), ""))).unwrap();
    assert_eq!(msa(&read_acks(&mut stream, 1)[0]).0, "AA");
    assert!(closed_by_server(&mut stream), "an idle connection was kept open");
    // One that never says anything is closed too.
    let mut silent = TcpStream::connect(&server.mllp).unwrap();
    assert!(closed_by_server(&mut silent), "a silent connection was kept open");
}

#[test]
fn an_a08_moves_the_home_address_and_the_same_address_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let message = |trigger: &str, control_id: &str, at: &str, address: &str| {
        format!(
            "MSH|^~\\&|PAS|RR8|POLE|LEEDS|{at}||ADT^{trigger}|{control_id}|P|2.4\r\
             EVN|{trigger}|{at}\r\
             PID|1||{NHS}^^^NHS^NH||Smith^Margaret^^^Mrs^^L||19400312|F|||{address}\r"
        )
    };
    let ingest_text = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let output = pole(&data, &["--json", "ingest", path.to_str().unwrap(), "--format", "hl7"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        json(&output)
    };
    let home = "12 Acacia Avenue^^Leeds^^LS1 4AB^^H";
    let care_home = "Rose Court Care Home^4 Park Row^Leeds^^LS1 5HD^^H";
    let registered = ingest_text("a04.hl7", &message("A04", "ADDR-1", "20240201101500", home));
    assert_eq!(registered["status"], "committed", "{registered}");
    let moved = ingest_text("a08.hl7", &message("A08", "ADDR-2", "20240802080000", care_home));
    assert_eq!(moved["status"], "committed", "{moved}");

    let entity = |id: &str, extra: &[&str]| {
        let mut args = vec!["--json", "entity", id];
        args.extend_from_slice(extra);
        let output = pole(&data, &args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        json(&output)
    };
    let postcode = |address: &Value| {
        let id = address.as_str().unwrap();
        entity(id, &[])["entity"]["attributes"]["postcode"]["value"].as_str().unwrap().to_owned()
    };
    let homes = |links: &Value, key: &str| -> Vec<Value> {
        links.as_array().unwrap().iter().filter(|l| l["role"] == "resides_at").map(|l| l[key].clone()).collect()
    };
    let person = {
        let output = pole(&data, &["--json", "stats"]);
        assert_eq!(json(&output)["transactions"], 2);
        let server = Server::start(&data, dir.path().join("serve.log"));
        server.get(&format!("/v1/identifiers/nhs-number/{NHS}"))["items"][0].as_str().unwrap().to_owned()
    };

    // Now: one home address, the care home.
    let now = entity(&person, &[]);
    let current = homes(&now["links"], "other");
    assert_eq!(current.len(), 1, "the address moved, not accumulated: {now}");
    assert_eq!(postcode(&current[0]), "LS1 5HD");
    assert_eq!(homes(&now["entity"]["links"], "to").len(), 1, "{now}");
    // As the store stood before the A08 (sequence 1), and as the world was valid in May.
    let before = entity(&person, &["--as-of", "1"]);
    let then = homes(&before["links"], "other");
    assert_eq!(then.len(), 1, "{before}");
    assert_eq!(postcode(&then[0]), "LS1 4AB");
    let may = entity(&person, &["--valid-at", "2024-05-01T00:00:00Z"]);
    let then = homes(&may["entity"]["links"], "to");
    assert_eq!(then.len(), 1, "{may}");
    assert_eq!(postcode(&then[0]), "LS1 4AB", "the old link ended at the A08's valid time");

    // The same details again, under a new control id, and the same file again: no change.
    let same = ingest_text("a31.hl7", &message("A31", "ADDR-3", "20240803080000", care_home));
    assert_eq!((same["status"].as_str(), same["changes"].as_u64()), (Some("unchanged"), Some(0)), "{same}");
    let again = ingest_text("a08.hl7", &message("A08", "ADDR-2", "20240802080000", care_home));
    assert_eq!(again["status"], "unchanged", "{again}");
    assert_eq!(json(&pole(&data, &["--json", "stats"]))["transactions"], 2);
}

#[test]
fn a_file_streamed_from_disk_reports_as_the_same_file_held_in_memory() {
    // The command line streams (`ingest_file`); HTTP hands over the body (`ingest`).
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    let (out, streamed) = ingest(&data, &["--dry-run"]);
    assert!(out.status.success(), "{streamed}");
    let bytes = std::fs::read(example()).unwrap();
    let profile = pole_ingest::Profile::builtin("safeguarding").unwrap();
    let options = pole_ingest::Options {
        dry_run: true,
        ..pole_ingest::Options::new("adt-batch.hl7", pole_ingest::Format::Hl7, "", &profile)
    };
    let store = pole_store::Store::open(dir.path().join("memory"), Default::default()).unwrap();
    let held = pole_ingest::ingest(&store, &bytes, &options, &|_| {}).unwrap();
    let held = serde_json::to_value(&held).unwrap();
    for key in
        ["rows_read", "accepted", "rejected", "warnings", "changes", "rows", "file_problems", "encoding", "status"]
    {
        assert_eq!(streamed[key], held[key], "{key}");
    }
}
