//! Access control end to end: the real server, real tokens, and every role reading the
//! same small world of records. Each role sees exactly what DESIGN.md's access model says,
//! through every route, and nothing it must not see appears in any answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

/// Values only the identifiable fields hold: none may ever reach a consumer.
const FAMILY: &str = "Quillfeather";
const GIVEN: &str = "Oriana";
const BIRTH: &str = "1931-02-11";
const NHS: &str = "9434765919";
const POSTCODE: &str = "LS1 4AP";
const ERASED_NAME: &str = "Zanzibarova";
const OPTED_OUT_NAME: &str = "Declinedson";
/// Council client ids, long enough that no pseudonym holds one by chance.
const AAA_CLIENT: &str = "AAA-CLIENT-000001";
const BBB_CLIENT: &str = "BBB-CLIENT-000009";

struct World {
    _serving: common::Serving,
    base: String,
    dir: tempfile::TempDir,
    /// AAA's record of a person BBB knows too (AAA's address and contact).
    shared: String,
    /// BBB's own record of the same person (same NHS number; ethnicity and BBB's client id).
    bbb_record: String,
    /// Council AAA's contact with the shared person.
    contact: String,
    address: String,
    /// Council BBB's own client, unknown to AAA.
    bbb_only: String,
    /// Council BBB's referral about the shared person.
    bbb_referral: String,
    /// A person (AAA) who opted out, and a referral about them alone.
    opted_out: String,
    opted_out_referral: String,
    /// A person an administrator erased.
    erased: String,
}

fn client(role: &str) -> Client {
    match role {
        "aaa" => common::client_with(&common::token("council", Some("AAA"), None)),
        "bbb" => common::client_with(&common::token("council", Some("BBB"), None)),
        "consumer" => common::client_with(&common::token("consumer", None, Some("research"))),
        "none" => Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        role => common::client_with(&common::token(role, None, None)),
    }
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
}

impl World {
    fn get(&self, role: &str, path: &str) -> Answer {
        let response = client(role).get(format!("{}{path}", self.base)).send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    fn post(&self, role: &str, path: &str, body: &Value) -> Answer {
        let response = client(role).post(format!("{}{path}", self.base)).json(body).send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    fn commit(&self, role: &str, changes: Value) -> Value {
        let answer = self.post(role, "/v1/transactions", &json!({ "changes": changes }));
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.body
    }

    fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut serving = common::serve(&dir.path().join("store"), &dir.path().join("stderr.log"), &[]);
        let mut base = String::new();
        serving.wait_for(|line| match line.strip_prefix("listening on ") {
            Some(addr) => {
                base = addr.trim().to_owned();
                true
            }
            None => false,
        });
        let mut world = World {
            _serving: serving,
            base,
            dir,
            shared: String::new(),
            bbb_record: String::new(),
            contact: String::new(),
            address: String::new(),
            bbb_only: String::new(),
            bbb_referral: String::new(),
            opted_out: String::new(),
            opted_out_referral: String::new(),
            erased: String::new(),
        };
        let aaa = world.commit(
            "aaa",
            json!([
                {"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                    "set": {"family_name": FAMILY, "given_name": GIVEN, "birth_date": BIRTH, "gender": "2"},
                    "identifiers": [{"system": "nhs-number", "value": NHS},
                                    {"system": "council:AAA:client", "value": AAA_CLIENT}]}},
                {"target": {"ref": "a"}, "op": {"op": "create", "type": "address",
                    "set": {"line1": "1 Secret Lane", "postcode": POSTCODE}}},
                {"target": {"ref": "c"}, "op": {"op": "create", "type": "contact",
                    "set": {"contact_date": "2024-03-15"}}},
                {"target": {"ref": "c"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
                {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}},
                {"target": {"ref": "o"}, "op": {"op": "create", "type": "person",
                    "set": {"family_name": OPTED_OUT_NAME, "opted_out": true}}},
                {"target": {"ref": "r"}, "op": {"op": "create", "type": "referral",
                    "set": {"referral_date": "2024-04-01"}}},
                {"target": {"ref": "r"}, "op": {"op": "link", "role": "subject", "to": {"ref": "o"}}},
            ]),
        );
        let reference = |committed: &Value, r: &str| committed["refs"][r].as_str().unwrap().to_owned();
        world.shared = reference(&aaa, "p");
        world.address = reference(&aaa, "a");
        world.contact = reference(&aaa, "c");
        world.opted_out = reference(&aaa, "o");
        world.opted_out_referral = reference(&aaa, "r");
        let bbb = world.commit(
            "bbb",
            json!([
                {"target": {"ref": "bp"}, "op": {"op": "create", "type": "person", "set": {"ethnicity": "C"},
                    "identifiers": [{"system": "nhs-number", "value": NHS},
                                    {"system": "council:BBB:client", "value": BBB_CLIENT}]}},
                {"target": {"ref": "q"}, "op": {"op": "create", "type": "person", "set": {"family_name": "Bystander"}}},
                {"target": {"ref": "br"}, "op": {"op": "create", "type": "referral", "set": {"referral_date": "2024-05-01"}}},
                {"target": {"ref": "br"}, "op": {"op": "link", "role": "subject", "to": {"ref": "bp"}}},
            ]),
        );
        world.bbb_record = reference(&bbb, "bp");
        world.bbb_only = reference(&bbb, "q");
        world.bbb_referral = reference(&bbb, "br");
        let erased = world.commit(
            "admin",
            json!([{"target": {"ref": "x"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": ERASED_NAME, "birth_date": "1950-05-05"}}}]),
        );
        world.erased = reference(&erased, "x");
        let answer = world.post(
            "admin",
            &format!("/v1/entities/{}/erase", world.erased),
            &json!({"reason": "subject access request 42: erasure"}),
        );
        assert_eq!(answer.status, 201, "{}", answer.text);
        world
    }

    /// The consumer's pseudonym of the shared person, found by listing people.
    fn consumer_people(&self) -> Vec<String> {
        let answer = self.get("consumer", "/v1/entities?type=person&limit=100");
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.body["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }
}

fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.body["code"], code, "{}", answer.text);
}

#[test]
fn each_role_sees_exactly_its_share_of_the_same_records() {
    let w = World::start();
    let shared = format!("/v1/entities/{}", w.shared);

    // Missing and bad tokens: 401 with the reason, on every data route, the same whether or not the record exists.
    for path in
        [shared.as_str(), "/v1/entities/01NOTANENTITY00000000000000", "/v1/entities", "/v1/journal", "/v1/audit/access"]
    {
        let answer = w.get("none", path);
        assert_problem(&answer, 401, "unauthorized");
        assert!(answer.body["detail"].as_str().unwrap().contains("bearer token"), "{}", answer.text);
    }
    let forged = common::client_with("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
        .get(format!("{}{shared}", w.base))
        .send()
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    // Operational routes stay open.
    for path in ["/health", "/ready", "/openapi.json", "/metrics"] {
        assert_eq!(w.get("none", path).status, 200, "{path}");
    }

    // Administrator and analyst: every council's records, each source record its own.
    let bbb_record = format!("/v1/entities/{}", w.bbb_record);
    for role in ["admin", "analyst"] {
        let answer = w.get(role, &shared);
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.body["attributes"]["family_name"], FAMILY);
        assert!(answer.body["attributes"].get("ethnicity").is_none(), "{}", answer.text);
        assert_eq!(answer.body["identifiers"].as_array().unwrap().len(), 2, "{}", answer.text);
        let theirs = w.get(role, &bbb_record);
        assert_eq!(theirs.body["attributes"]["ethnicity"], "C", "{}", theirs.text);
    }

    // A council sees its own record of the person, never the other council's.
    let aaa = w.get("aaa", &shared);
    assert_eq!(aaa.status, 200, "{}", aaa.text);
    assert_eq!(aaa.body["attributes"]["family_name"], FAMILY);
    assert!(aaa.body["attributes"].get("ethnicity").is_none(), "BBB's value leaked to AAA: {}", aaa.text);
    assert!(!aaa.text.contains(BBB_CLIENT), "{}", aaa.text);
    assert_problem(&w.get("aaa", &bbb_record), 403, "forbidden");
    assert_problem(&w.get("bbb", &shared), 403, "forbidden");
    let bbb = w.get("bbb", &bbb_record);
    assert_eq!(bbb.status, 200, "{}", bbb.text);
    assert_eq!(bbb.body["attributes"], json!({"ethnicity": "C"}), "{}", bbb.text);
    assert!(!bbb.text.contains(FAMILY) && !bbb.text.contains(AAA_CLIENT), "AAA's values leaked to BBB: {}", bbb.text);
    // ... and nothing of another council's own clients, in a way that does not reveal they exist.
    let other = w.get("aaa", &format!("/v1/entities/{}", w.bbb_only));
    assert_problem(&other, 403, "forbidden");
    let missing = w.get("aaa", "/v1/entities/01NOTANENTITY00000000000000");
    assert_problem(&missing, 403, "forbidden");
    assert_eq!(
        other.body["detail"].as_str().unwrap().replace(&w.bbb_only, "ID"),
        missing.body["detail"].as_str().unwrap().replace("01NOTANENTITY00000000000000", "ID")
    );
    // Listing, history, links and the change feed keep to the council's own.
    let list = w.get("aaa", "/v1/entities?kind=person");
    let ids: Vec<&str> = list.body["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ids.contains(&w.shared.as_str()) && !ids.contains(&w.bbb_only.as_str()), "{}", list.text);
    assert_problem(&w.get("aaa", "/v1/entities?council=BBB"), 403, "forbidden");
    let history = w.get("aaa", &format!("{shared}/history"));
    // AAA's create and address link; BBB's update is not AAA's record.
    assert_eq!(history.body["versions"].as_array().unwrap().len(), 2, "{}", history.text);
    assert!(!history.text.contains(BBB_CLIENT), "{}", history.text);
    let feed = w.get("aaa", "/v1/journal");
    assert!(
        feed.body["transactions"].as_array().unwrap().iter().all(|t| t["source"]["council"] == "AAA"),
        "{}",
        feed.text
    );
    let found = w.get("bbb", &format!("/v1/search?nhs_number={NHS}"));
    assert_eq!(found.status, 200);
    assert_eq!(found.body["items"], json!([w.bbb_record]), "a council finds its own record of the person only");
    let not_found = w.get("bbb", "/v1/search?family_name=Declinedson");
    assert_eq!(not_found.body["items"], json!([]), "{}", not_found.text);

    // A council writes only for itself, and never merges or erases.
    let foreign = w.post(
        "aaa",
        "/v1/transactions",
        &json!({"source": {"council": "BBB"}, "changes": [
        {"target": {"ref": "z"}, "op": {"op": "create", "type": "person", "set": {}}}]}),
    );
    assert_problem(&foreign, 403, "forbidden");
    assert_problem(&w.post("aaa", &format!("{shared}/erase"), &json!({"reason": "not theirs"})), 403, "forbidden");

    // Opt-out: analysts and consumers do not see the person nor what is reachable only
    // through them; the council that cares for them does.
    let opted = format!("/v1/entities/{}", w.opted_out);
    let referral = format!("/v1/entities/{}", w.opted_out_referral);
    assert_problem(&w.get("analyst", &opted), 403, "forbidden");
    assert_problem(&w.get("analyst", &referral), 403, "forbidden");
    assert_eq!(w.get("aaa", &opted).status, 200);
    assert_eq!(w.get("admin", &referral).status, 200);
    let analyst_search = w.get("analyst", &format!("/v1/search?family_name={OPTED_OUT_NAME}"));
    assert_eq!(analyst_search.body["items"], json!([]), "{}", analyst_search.text);

    // Consumers: pseudonyms, minimised attributes, no identifiers, only covered kinds.
    let people = w.consumer_people();
    assert_eq!(
        people.len(),
        3,
        "each council's record of the person and BBB's client; not the opted-out nor the erased: {people:?}"
    );
    let _ = &w.bbb_referral;
    assert!(people.iter().all(|p| p.starts_with("psn_")), "{people:?}");
    let mut seen_shared = false;
    let mut seen_ethnicity = false;
    for pseudonym in &people {
        let answer = w.get("consumer", &format!("/v1/entities/{pseudonym}"));
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.body["identifiers"], json!([]));
        seen_ethnicity |= answer.body["attributes"]["ethnicity"] == "C";
        if answer.body["attributes"]["birth_date"] == "90+" {
            seen_shared = true;
            let links = w.get("consumer", &format!("/v1/entities/{pseudonym}/links"));
            assert_eq!(links.status, 200, "{}", links.text);
            let roles: Vec<&str> =
                links.body["links"].as_array().unwrap().iter().map(|l| l["role"].as_str().unwrap()).collect();
            assert_eq!(roles, ["subject"], "the address (a location) is outside the agreement: {}", links.text);
            let contact = links.body["links"][0]["other"].as_str().unwrap();
            let event = w.get("consumer", &format!("/v1/entities/{contact}"));
            assert_eq!(event.status, 200, "{}", event.text);
            assert_eq!(event.body["attributes"]["contact_date"], "2024-03", "dates to the month: {}", event.text);
        }
        for secret in
            [FAMILY, GIVEN, BIRTH, NHS, POSTCODE, AAA_CLIENT, BBB_CLIENT, w.shared.as_str(), w.contact.as_str()]
        {
            assert!(!answer.text.contains(secret), "{secret} reached a consumer: {}", answer.text);
        }
    }
    assert!(seen_shared, "the shared person, born 1931, shows as 90+");
    assert!(seen_ethnicity, "BBB's record shows its sensitive value under the agreement");
    assert_problem(&w.get("consumer", &shared), 403, "forbidden");
    assert_problem(&w.get("consumer", &format!("/v1/entities/{}", w.address)), 403, "forbidden");
    for path in [
        format!("/v1/search?nhs_number={NHS}"),
        format!("/v1/identifiers/nhs-number/{NHS}"),
        format!("/v1/entities/{}/history", people[0]),
    ] {
        assert_problem(&w.get("consumer", &path), 403, "forbidden");
    }
    let feed = w.get("consumer", "/v1/journal");
    assert_eq!(feed.status, 200, "{}", feed.text);
    for secret in [FAMILY, GIVEN, BIRTH, NHS, POSTCODE, OPTED_OUT_NAME, ERASED_NAME, "Secret Lane", w.shared.as_str()] {
        assert!(!feed.text.contains(secret), "{secret} reached a consumer's feed: {}", feed.text);
    }
    assert!(feed.text.contains("90+"), "{}", feed.text);
    // The consumer's cursor reveals nothing and cannot be replayed by another caller.
    let page = w.get("consumer", "/v1/entities?type=person&limit=1");
    let cursor = page.body["next_cursor"].as_str().unwrap();
    assert!(!cursor.contains(&w.shared));
    assert_problem(&w.get("analyst", &format!("/v1/entities?type=person&cursor={cursor}")), 400, "invalid-request");
    assert_problem(&w.post("consumer", "/v1/transactions", &json!({"changes": []})), 403, "forbidden");

    // Auditors: the access log and the chains, no record content.
    assert_problem(&w.get("auditor", &shared), 403, "forbidden");
    assert_problem(&w.get("auditor", "/v1/journal"), 403, "forbidden");
    let seen = w.get("auditor", &format!("/v1/audit/access?entity={}", w.shared));
    assert_eq!(seen.status, 200, "{}", seen.text);
    let actors: std::collections::BTreeSet<&str> =
        seen.body["records"].as_array().unwrap().iter().map(|r| r["actor"].as_str().unwrap()).collect();
    for actor in ["test-admin", "test-analyst", "test-council", "test-consumer"] {
        assert!(actors.contains(actor), "{actor} read the shared person but is not listed: {actors:?}");
    }
    assert!(!seen.text.contains(FAMILY), "the access log holds no record content");
    let denials = w.get("auditor", "/v1/audit/access?actor=test-auditor");
    assert!(denials.body["records"].as_array().unwrap().iter().any(|r| r["outcome"] == "denied"), "{}", denials.text);
    let verified = w.get("auditor", "/v1/audit/verify");
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body["ok"], true, "{}", verified.text);
    assert_problem(&w.get("analyst", "/v1/audit/access"), 403, "forbidden");
}

#[test]
fn break_glass_opens_an_analysts_scope_for_a_while_and_is_audited() {
    let w = World::start();
    let opted = format!("/v1/entities/{}", w.opted_out);
    let analyst = client("analyst");
    assert_problem(&w.get("analyst", &opted), 403, "forbidden");
    let short = w.post("analyst", "/v1/break-glass", &json!({"reason": "urgent"}));
    assert_problem(&short, 400, "invalid-request");
    assert_problem(
        &w.post("aaa", "/v1/break-glass", &json!({"reason": "safeguarding enquiry 7781"})),
        403,
        "forbidden",
    );
    let grant = analyst
        .post(format!("{}/v1/break-glass", w.base))
        .json(&json!({"reason": "safeguarding enquiry 7781: police request"}))
        .send()
        .unwrap();
    assert_eq!(grant.status().as_u16(), 201);
    let grant: Value = grant.json().unwrap();
    assert!(grant["expires_at"].as_str().unwrap() > grant["granted_at"].as_str().unwrap());
    let answer = w.get("analyst", &opted);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["attributes"]["family_name"], OPTED_OUT_NAME);
    let events = w.get("auditor", "/v1/audit/break-glass");
    let records: Vec<&Value> =
        events.body["records"].as_array().unwrap().iter().filter(|r| r["outcome"] == "allowed").collect();
    assert_eq!(records.len(), 1, "{}", events.text);
    assert!(events.text.contains("break-glass is for analysts"), "the refused attempt is listed too: {}", events.text);
    assert_eq!(records[0]["actor"], "test-analyst");
    assert_eq!(records[0]["reason"], "safeguarding enquiry 7781: police request");
    let reads = w.get("auditor", &format!("/v1/audit/access?entity={}", w.opted_out));
    assert!(
        reads.body["records"].as_array().unwrap().iter().any(|r| r["break_glass"] == true && r["outcome"] == "allowed"),
        "{}",
        reads.text
    );
}

#[test]
fn erasure_leaves_no_plaintext_anywhere_and_the_chains_still_verify() {
    let w = World::start();
    let erased = w.get("admin", &format!("/v1/entities/{}", w.erased));
    assert_eq!(erased.status, 200, "{}", erased.text);
    assert!(!erased.text.contains(ERASED_NAME), "{}", erased.text);
    let history = w.get("admin", &format!("/v1/entities/{}/history", w.erased));
    assert!(!history.text.contains(ERASED_NAME), "{}", history.text);
    let feed = w.get("admin", "/v1/journal?limit=1000");
    assert!(!feed.text.contains(ERASED_NAME), "{}", feed.text);
    let receipt = feed.body["transactions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(receipt["changes"][0]["change"], "erase", "{receipt}");
    assert_eq!(w.get("admin", &format!("/v1/search?family_name={ERASED_NAME}")).body["items"], json!([]));
    // No file of the data directory holds the erased values (nor any identifiable value:
    // they are sealed before they reach the disk).
    drop(w._serving);
    let mut stack = vec![w.dir.path().join("store")];
    let mut files = 0;
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            for needle in [ERASED_NAME, "1950-05-05", FAMILY, NHS] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in plain text in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 5, "walked {files} files");
    let verify = common::pole(&w.dir.path().join("store"), &["--json", "verify"]);
    let report = common::json_ok(&verify);
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["access_log"]["records"].as_u64().unwrap() > 5, "{report}");
}

#[test]
fn tampering_with_the_access_log_fails_verify_naming_the_record() {
    let w = World::start();
    assert_eq!(w.get("admin", &format!("/v1/entities/{}", w.shared)).status, 200);
    drop(w._serving);
    let data = w.dir.path().join("store");
    let log = data.join("audit/access-000001.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().position(|l| l.contains("GET /v1/entities/{id}")).unwrap();
    let tampered: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == line { l.replacen("test-admin", "test-nobody", 1) } else { l.to_owned() })
        .collect();
    std::fs::write(&log, tampered.join("\n") + "\n").unwrap();
    let output = common::pole(&data, &["--json", "verify"]);
    assert!(!output.status.success());
    let report = common::json(&output);
    assert_eq!(report["access_log"]["ok"], false);
    assert_eq!(report["access_log"]["first_bad_seq"], line as u64 + 1, "{report}");
    assert!(report["access_log"]["problem"].as_str().unwrap().contains(&format!("line {}", line + 1)), "{report}");
    assert_eq!(report["journal"]["ok"], true);
}

#[test]
fn tokens_from_the_command_line_open_the_api() {
    let w = World::start();
    let data = w.dir.path().join("store");
    // The server was started with the test secret; `token` must use the same one.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pole-ods"))
        .args(["--data"])
        .arg(&data)
        .args(["token", "--role", "consumer", "--agreement", "research", "--ttl", "10m"])
        .env("POLE_TOKEN_SECRET", common::TEST_SECRET)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let answer = common::client_with(&token).get(format!("{}/v1/entities?type=person", w.base)).send().unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_pole-ods"))
        .arg("--data")
        .arg(&data)
        .args(["token", "--role", "consumer", "--agreement", "marketing"])
        .env("POLE_TOKEN_SECRET", common::TEST_SECRET)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no such agreement"));
}

/// The consumer's pseudonym of an id, from the server's pseudonym secret.
fn pseudonym(w: &World, id: &str) -> String {
    let secret = std::fs::read_to_string(w.dir.path().join("store/secrets/pseudonym.secret")).unwrap();
    let secret = hex::decode(secret.trim()).unwrap();
    pole_auth::Pseudonymiser::new(&secret, "research").pseudonym(&pole_model::EntityId::new(id).unwrap())
}

#[test]
fn every_role_on_every_read_route_and_entity_gets_exactly_its_answer() {
    let w = World::start();
    // Entities: the shared person, AAA's contact, BBB's own client, the opted-out person,
    // the erased person.
    let entities = [&w.shared, &w.contact, &w.bbb_only, &w.opted_out, &w.erased];
    // Expected status per entity, for each role and route.
    let entity_reads: [(&str, [u16; 5]); 5] = [
        ("admin", [200, 200, 200, 200, 200]),
        ("analyst", [200, 200, 200, 403, 200]),
        ("aaa", [200, 200, 403, 200, 403]),
        ("consumer", [200, 200, 200, 404, 404]),
        ("auditor", [403, 403, 403, 403, 403]),
    ];
    let identifying_reads: [(&str, [u16; 5]); 5] = [
        ("admin", [200, 200, 200, 200, 200]),
        ("analyst", [200, 200, 200, 403, 200]),
        ("aaa", [200, 200, 403, 200, 403]),
        ("consumer", [403, 403, 403, 403, 403]),
        ("auditor", [403, 403, 403, 403, 403]),
    ];
    let mut failures = Vec::new();
    for (routes, table) in [
        (&["", "/links", "/links?direction=in", "/links?as_of=1"][..], &entity_reads),
        (&["/history", "/diff?from=1&to=1"][..], &identifying_reads),
    ] {
        for (role, expected) in table.iter() {
            for (entity, want) in entities.iter().zip(expected) {
                let id = if *role == "consumer" { pseudonym(&w, entity) } else { (*entity).clone() };
                for route in routes {
                    let path = format!("/v1/entities/{id}{route}");
                    let answer = w.get(role, &path);
                    // BBB's client and the erased person were created after seq 1: as of 1 they do
                    // not exist, a 404 for callers whose scope does not refuse them first.
                    let later = **entity == w.bbb_only || **entity == w.erased;
                    let scoped_first = matches!(*role, "aaa" | "auditor");
                    let want = if route.contains("as_of=1") && later && !scoped_first { 404 } else { *want };
                    if answer.status != want {
                        failures.push(format!("{role} {path}: {} (wanted {want}) {}", answer.status, answer.text));
                    }
                }
            }
        }
    }
    // Collection routes, per role.
    let collections: [(&str, &str, [u16; 5]); 8] = [
        // path, what, [admin, analyst, aaa, consumer, auditor]
        ("/v1/entities?kind=person", "list", [200, 200, 200, 200, 403]),
        ("/v1/entities?council=BBB", "list another council", [200, 200, 403, 200, 403]),
        ("/v1/search?family_name=Quillfeather", "search", [200, 200, 200, 403, 403]),
        ("/v1/identifiers/nhs-number/9434765919", "identifier", [200, 200, 200, 403, 403]),
        ("/v1/journal", "feed", [200, 200, 200, 200, 403]),
        ("/v1/audit/access", "access log", [200, 403, 403, 403, 200]),
        ("/v1/audit/break-glass", "break-glass log", [200, 403, 403, 403, 200]),
        ("/v1/audit/verify", "verify", [200, 403, 403, 403, 200]),
    ];
    for (path, what, expected) in collections {
        for (role, want) in ["admin", "analyst", "aaa", "consumer", "auditor"].iter().zip(expected) {
            let answer = w.get(role, path);
            if answer.status != want {
                failures.push(format!("{role} {what} {path}: {} (wanted {want}) {}", answer.status, answer.text));
            }
        }
    }
    // Writes, per role: a new person, an erasure, a break-glass grant.
    for (role, create, erase, glass) in [
        ("admin", 201, 201, 403),
        ("analyst", 403, 403, 201),
        ("aaa", 201, 403, 403),
        ("consumer", 403, 403, 403),
        ("auditor", 403, 403, 403),
    ] {
        let created = w.post(
            role,
            "/v1/transactions",
            &json!({"changes": [
            {"target": {"ref": "n"}, "op": {"op": "create", "type": "person", "set": {"gender": "1"}}}]}),
        );
        let erased =
            w.post(role, &format!("/v1/entities/{}/erase", w.contact), &json!({"reason": "matrix test erasure"}));
        let grant = w.post(role, "/v1/break-glass", &json!({"reason": "matrix test: a declared reason"}));
        for (what, answer, want) in
            [("create", created, create), ("erase", erased, erase), ("break-glass", grant, glass)]
        {
            if answer.status != want {
                failures.push(format!("{role} {what}: {} (wanted {want}) {}", answer.status, answer.text));
            }
        }
    }
    assert!(failures.is_empty(), "{} unexpected answers:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn graphql_traversal_and_as_of_stay_inside_the_callers_scope() {
    let w = World::start();
    let query = |role: &str, query: String| {
        let answer = w.post(role, "/graphql", &json!({ "query": query }));
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer
    };
    let traversal = |id: &str, as_of: &str| {
        format!(
            r#"{{ entity(id: "{id}"{as_of}) {{ id links {{ role entity {{ id links {{ entity {{ id }} }} }} }} }} }}"#
        )
    };
    for as_of in ["", ", asOf: \"2\""] {
        // AAA reaches its contact through the shared person, never BBB's referral nor BBB's client.
        let aaa = query("aaa", traversal(&w.shared, as_of));
        assert!(aaa.body["errors"].is_null(), "{}", aaa.text);
        assert!(aaa.text.contains(&w.contact), "{}", aaa.text);
        for hidden in [&w.bbb_referral, &w.bbb_only] {
            assert!(!aaa.text.contains(hidden.as_str()), "AAA reached {hidden} through {as_of:?}: {}", aaa.text);
        }
        assert!(!aaa.text.contains(BBB_CLIENT));
        // BBB reaches its referral through its own record, not AAA's contact or address.
        let bbb = query("bbb", traversal(&w.bbb_record, as_of));
        assert!(bbb.text.contains(&w.bbb_referral), "{}", bbb.text);
        for hidden in [&w.contact, &w.address] {
            assert!(!bbb.text.contains(hidden.as_str()), "BBB reached {hidden}: {}", bbb.text);
        }
    }
    // Asking for an out-of-scope entity by id is refused with the stable code, whatever the read point.
    for as_of in ["", ", asOf: \"1\""] {
        let denied = query("aaa", format!(r#"{{ entity(id: "{}"{as_of}) {{ id }} }}"#, w.bbb_referral));
        assert_eq!(denied.body["errors"][0]["extensions"]["code"], "forbidden", "{}", denied.text);
    }
    // An analyst's traversal does not reach the opted-out person or their referral.
    let analyst = query("analyst", traversal(&w.opted_out_referral, ""));
    assert_eq!(analyst.body["errors"][0]["extensions"]["code"], "forbidden", "{}", analyst.text);
    // A consumer's traversal shows pseudonyms only, and never a location.
    let consumer = query("consumer", traversal(&pseudonym(&w, &w.shared), ""));
    assert!(consumer.body["errors"].is_null(), "{}", consumer.text);
    for hidden in [&w.shared, &w.contact, &w.address, &w.bbb_referral] {
        assert!(!consumer.text.contains(hidden.as_str()), "{}", consumer.text);
    }
    assert!(consumer.text.contains("psn_"));
    // Auditors see no records through GraphQL either.
    let auditor = query("auditor", traversal(&w.shared, ""));
    assert_eq!(auditor.body["errors"][0]["extensions"]["code"], "forbidden", "{}", auditor.text);
}

#[test]
fn metrics_can_be_put_behind_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut serving =
        common::serve(&dir.path().join("store"), &dir.path().join("stderr.log"), &["--metrics-public", "false"]);
    let mut base = String::new();
    serving.wait_for(|line| match line.strip_prefix("listening on ") {
        Some(addr) => {
            base = addr.trim().to_owned();
            true
        }
        None => false,
    });
    let status = |role: &str| client(role).get(format!("{base}/metrics")).send().unwrap().status().as_u16();
    assert_eq!(status("none"), 401);
    assert_eq!(status("analyst"), 403);
    assert_eq!(status("auditor"), 200);
    assert_eq!(status("admin"), 200);
    assert_eq!(client("none").get(format!("{base}/health")).send().unwrap().status().as_u16(), 200);
}

#[test]
fn the_change_feed_stream_is_minimised_for_a_consumer() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let w = World::start();
    let addr = w.base.trim_start_matches("http://").to_owned();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let token = common::token("consumer", None, Some("research"));
    write!(
        socket,
        "GET /v1/journal/stream?after=0 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(socket);
    let mut events = Vec::new();
    let mut line = String::new();
    // The world has four transactions; the consumer sees the ones touching covered entities.
    while events.len() < 2 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(data) = line.strip_prefix("data: ") {
            events.push(data.to_owned());
        }
    }
    assert!(!events.is_empty());
    for event in &events {
        for secret in [FAMILY, GIVEN, BIRTH, NHS, POSTCODE, OPTED_OUT_NAME, "Secret Lane", w.shared.as_str()] {
            assert!(!event.contains(secret), "{secret} reached a consumer's stream: {event}");
        }
    }
    assert!(events.iter().any(|e| e.contains("psn_")), "{events:?}");
}

#[test]
fn an_expired_or_unknown_agreement_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agreements = dir.path().join("agreements");
    std::fs::create_dir_all(&agreements).unwrap();
    std::fs::write(
        agreements.join("lapsed.toml"),
        "name = \"lapsed\"\npurpose = \"research\"\nexpires = \"2020-12-31\"\nkinds = [\"person\"]\n",
    )
    .unwrap();
    let agreements_arg = agreements.display().to_string();
    let mut serving = common::serve(
        &dir.path().join("store"),
        &dir.path().join("stderr.log"),
        &["--agreements", agreements_arg.as_str()],
    );
    let mut base = String::new();
    serving.wait_for(|line| match line.strip_prefix("listening on ") {
        Some(addr) => {
            base = addr.trim().to_owned();
            true
        }
        None => false,
    });
    let get = |agreement: &str| {
        let response = common::client_with(&common::token("consumer", None, Some(agreement)))
            .get(format!("{base}/v1/entities?type=person"))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    };
    let (status, text) = get("lapsed");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("expired on 2020-12-31"), "{text}");
    let (status, text) = get("marketing");
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("not known"), "{text}");
    assert_eq!(get("research").0, 200, "the built-in agreement is still there beside the directory's");
}

#[test]
fn a_council_writes_only_its_own_records_and_cannot_tell_another_councils_from_none() {
    let w = World::start();
    let missing = "01JNOSUCHENTITY00000000000";
    let history_before = w.get("admin", &format!("/v1/entities/{}/history", w.shared)).text;
    // Every kind of write BBB could aim at AAA's record, over REST and GraphQL.
    let attempts = |target: &str| -> Vec<(&'static str, Value)> {
        vec![
            ("update", json!([{"target": {"entity": target}, "op": {"op": "update", "set": {"gender": "1"}}}])),
            (
                "update at a version",
                json!([{"target": {"entity": target}, "expected_version": 9,
                    "op": {"op": "update", "set": {"gender": "1"}}}]),
            ),
            (
                "remove an identifier",
                json!([{"target": {"entity": target}, "op": {"op": "update",
                    "remove_identifiers": [{"system": "council:AAA:client", "value": AAA_CLIENT}]}}]),
            ),
            (
                "link from it",
                json!([{"target": {"entity": target}, "op": {"op": "link", "role": "carer_of",
                    "to": {"entity": w.bbb_only}}}]),
            ),
            (
                "link to it",
                json!([{"target": {"entity": w.bbb_only}, "op": {"op": "link", "role": "carer_of",
                    "to": {"entity": target}}}]),
            ),
            (
                "unlink",
                json!([{"target": {"entity": target}, "op": {"op": "unlink", "role": "resides_at",
                    "to": {"entity": w.address}}}]),
            ),
            ("retract", json!([{"target": {"entity": target}, "op": {"op": "retract", "reason": "not ours"}}])),
        ]
    };
    let mut failures = Vec::new();
    for ((what, theirs), (_, none)) in attempts(&w.shared).into_iter().zip(attempts(missing)) {
        let theirs = w.post("bbb", "/v1/transactions", &json!({ "changes": theirs }));
        let none = w.post("bbb", "/v1/transactions", &json!({ "changes": none }));
        if theirs.status != 403 || none.status != 403 {
            failures.push(format!(
                "{what}: {} and {} (wanted 403): {} {}",
                theirs.status, none.status, theirs.text, none.text
            ));
        }
        if theirs.text.replace(&w.shared, "ID") != none.text.replace(missing, "ID") {
            failures.push(format!("{what}: the answers tell the two apart:\n  {}\n  {}", theirs.text, none.text));
        }
        let mutation = r#"mutation($input: JSON!) { transaction(input: $input) }"#;
        let changes = attempts(&w.shared).into_iter().find(|(w2, _)| w2 == &what).unwrap().1;
        let gql = w.post("bbb", "/graphql", &json!({"query": mutation, "variables": {"input": {"changes": changes}}}));
        if gql.body["errors"][0]["extensions"]["code"] != "forbidden" {
            failures.push(format!("{what} over GraphQL: {}", gql.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A council records no identifier of another council's namespace.
    let claimed = w.post(
        "bbb",
        "/v1/transactions",
        &json!({"changes": [{"target": {"ref": "n"}, "op": {"op": "create", "type": "person",
            "identifiers": [{"system": "council:AAA:client", "value": "A-7"}]}}]}),
    );
    assert_problem(&claimed, 422, "invalid-change");
    assert_eq!(claimed.body["field"], "identifiers.council:AAA:client", "{}", claimed.text);
    // Nothing of AAA's record changed, and AAA still writes it.
    assert_eq!(w.get("admin", &format!("/v1/entities/{}/history", w.shared)).text, history_before);
    w.commit("aaa", json!([{"target": {"entity": w.shared}, "op": {"op": "update", "set": {"gender": "1"}}}]));
}

#[test]
fn idempotency_keys_are_each_councils_own() {
    let w = World::start();
    let send = |role: &str, name: &str| {
        client(role)
            .post(format!("{}/v1/transactions", w.base))
            .header("Idempotency-Key", "batch-2024-07")
            .json(&json!({"changes": [{"target": {"ref": "n"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": name}}}]}))
            .send()
            .unwrap()
    };
    // BBB uses the key first; AAA's own transaction under it is stored, not refused, and
    // nothing tells AAA that BBB used it.
    assert_eq!(send("bbb", "Bystander-Two").status().as_u16(), 201);
    let ours = send("aaa", "Newcomer");
    assert_eq!(ours.status().as_u16(), 201);
    let ours: Value = ours.json().unwrap();
    assert_eq!(ours["replayed"], false, "{ours}");
    let again: Value = send("aaa", "Newcomer").json().unwrap();
    assert_eq!((again["replayed"].clone(), again["seq"].clone()), (json!(true), ours["seq"].clone()));
    let other = send("aaa", "Someone Else");
    assert_eq!(other.status().as_u16(), 422, "the key reused within AAA's own namespace");
}

#[test]
fn a_council_token_does_not_merge_through_hl7() {
    let w = World::start();
    let nhs = |n: usize| ["9434765005", "9434765013"][n - 1];
    let message = |event: &str, control: &str, pid3: &str, extra: &str| {
        format!(
            "MSH|^~\\&|PAS|RXX|POLE|NHSE|20240801080000||ADT^{event}|{control}|P|2.5\rEVN|{event}|20240801080000\r\
             PID|1||{pid3}||Smith^John||19400312|M\r{extra}"
        )
    };
    let file = [
        message("A28", "M-1", &format!("{}^^^NHS^NH", nhs(1)), ""),
        message("A28", "M-2", &format!("{}^^^NHS^NH", nhs(2)), ""),
        message("A40", "M-3", &format!("{}^^^NHS^NH", nhs(1)), &format!("MRG|{}^^^NHS^NH\r", nhs(2))),
    ]
    .join("");
    let response = client("aaa")
        .post(format!("{}/v1/ingest/hl7", w.base))
        .header("Content-Type", "application/octet-stream")
        .body(file)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().unwrap();
    assert_eq!((report["accepted"].clone(), report["rejected"].clone()), (json!(2), json!(1)), "{report}");
    assert!(report.to_string().contains("decided nationally"), "{report}");
    let people = w.get("admin", &format!("/v1/identifiers/nhs-number/{}", nhs(2)));
    let prior = people.body["items"][0].as_str().unwrap();
    assert_eq!(w.get("admin", &format!("/v1/entities/{prior}")).body["status"]["state"], "active");
}

#[test]
fn the_national_view_joins_every_councils_record_of_a_person_for_national_roles_only() {
    let w = World::start();
    let path = format!("/v1/people/{}", w.shared);
    let national = w.get("analyst", &path);
    assert_eq!(national.status, 200, "{}", national.text);
    let records: Vec<(&str, &str, &str)> = national.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["contributor"].as_str().unwrap(), r["linked_by"].as_str().unwrap()))
        .collect();
    assert_eq!(records, [(w.shared.as_str(), "AAA", "asked"), (w.bbb_record.as_str(), "BBB", "nhs-number")]);
    let attributes = &national.body["attributes"];
    assert_eq!(attributes["family_name"]["value"], FAMILY);
    assert_eq!(attributes["family_name"]["from"]["record"], w.shared.as_str());
    assert_eq!(attributes["family_name"]["from"]["provenance"]["council"], "AAA");
    assert_eq!(attributes["ethnicity"]["value"], "C", "BBB's value, with its source: {}", national.text);
    assert_eq!(attributes["ethnicity"]["from"]["record"], w.bbb_record.as_str());
    assert_eq!(attributes["ethnicity"]["rule"], "all");
    assert_eq!(attributes["birth_date"]["rule"], "most_trusted");
    let held: Vec<&str> =
        national.body["identifiers"].as_array().unwrap().iter().map(|i| i["value"].as_str().unwrap()).collect();
    for value in [NHS, AAA_CLIENT, BBB_CLIENT] {
        assert!(held.contains(&value), "{value}: {}", national.text);
    }
    // The same person through BBB's record; each source's own record is unchanged.
    let through_bbb = w.get("admin", &format!("/v1/people/{}", w.bbb_record));
    assert_eq!(through_bbb.body["attributes"], national.body["attributes"], "{}", through_bbb.text);
    assert!(w.get("admin", &format!("/v1/entities/{}", w.shared)).body["attributes"].get("ethnicity").is_none());
    // Councils read their own record, never the join; nor do consumers and auditors.
    for role in ["aaa", "bbb", "consumer", "auditor"] {
        assert_problem(&w.get(role, &path), 403, "forbidden");
    }
    // A person who objected is no more in the national view than in any other analyst read.
    assert_problem(&w.get("analyst", &format!("/v1/people/{}", w.opted_out)), 403, "forbidden");
    assert_problem(&w.get("analyst", &format!("/v1/people/{}", w.contact)), 400, "invalid-request");
}
