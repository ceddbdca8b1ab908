//! `POST /v1/ingest/{format}` on the real server: the same pipeline and report as
//! `pole-ods ingest`, attributed to the caller's council and refused to everyone else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

fn start(dir: &std::path::Path) -> (common::Serving, String) {
    let mut serving = common::serve(&dir.join("store"), &dir.join("stderr.log"), &[]);
    let mut base = String::new();
    serving.wait_for(|line| match line.strip_prefix("listening on ") {
        Some(addr) => {
            base = addr.trim().to_owned();
            true
        }
        None => false,
    });
    (serving, base)
}

fn example(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ingest").join(name)).unwrap()
}

#[test]
fn a_council_submits_for_itself_over_http_and_no_one_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let (_serving, base) = start(dir.path());
    let council = common::client_with(&common::token("council", Some("305"), None));
    let post = |client: &reqwest::blocking::Client, query: &str, body: Vec<u8>| {
        let response = client.post(format!("{base}/v1/ingest/csv{query}")).body(body).send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), text)
    };
    let file = example("council-305-export.csv");

    // A dry run reports without writing.
    let (status, report, text) = post(&council, "?dry_run=true&profile=council-305", file.clone());
    assert_eq!(status, 200, "{text}");
    assert_eq!(report["status"], "dry_run", "{text}");
    assert_eq!(report["council"], "305");
    let stats = |base: &str| {
        let feed: Value = common::admin_client().get(format!("{base}/v1/journal")).send().unwrap().json().unwrap();
        feed["transactions"].as_array().unwrap().len()
    };
    assert_eq!(stats(&base), 0);

    // The submission commits as the council's own, in its name.
    let (status, report, text) = post(&council, "?profile=council-305&file_name=export.csv", file.clone());
    assert_eq!(status, 200, "{text}");
    assert!(report["accepted"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(report["file"], "export.csv");
    let feed: Value = common::admin_client().get(format!("{base}/v1/journal")).send().unwrap().json().unwrap();
    let tx = &feed["transactions"][0];
    assert_eq!(tx["actor"], "test-council", "{tx}");
    assert_eq!(tx["role"], "council");
    assert_eq!(tx["source"]["council"], "305");
    // Resubmitting changes nothing.
    let (_, again, _) = post(&council, "?profile=council-305", file.clone());
    assert_eq!(again["status"], "unchanged", "{again}");

    // The CSV form of the report.
    let csv = council
        .post(format!("{base}/v1/ingest/csv?dry_run=true&profile=council-305"))
        .header("Accept", "text/csv")
        .body(file.clone())
        .send()
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");

    // Not for another council, not for roles that do not submit, not without a council.
    let (status, problem, text) = post(&council, "?council=999&profile=council-305", file.clone());
    assert_eq!((status, problem["code"].as_str()), (403, Some("forbidden")), "{text}");
    for role in ["analyst", "consumer", "auditor"] {
        let agreement = (role == "consumer").then_some("research");
        let client = common::client_with(&common::token(role, None, agreement));
        let (status, _, text) = post(&client, "?council=305", file.clone());
        assert_eq!(status, 403, "{role}: {text}");
    }
    let (status, problem, text) = post(&common::admin_client(), "", file.clone());
    assert_eq!((status, problem["field"].as_str()), (400, Some("council")), "{text}");
    let (status, _, text) =
        post(&common::admin_client(), "?council=305&profile=council-305&dry_run=true", file.clone());
    assert_eq!(status, 200, "{text}");
    // Profiles over HTTP are names, never paths.
    let (status, problem, text) = post(&council, "?profile=/etc/passwd", file.clone());
    assert_eq!((status, problem["field"].as_str()), (400, Some("profile")), "{text}");
    let (status, problem, text) = post(&council, "", Vec::new());
    assert_eq!((status, problem["field"].as_str()), (400, Some("body")), "{text}");
    let unknown = council.post(format!("{base}/v1/ingest/docx")).body(file).send().unwrap();
    assert_eq!(unknown.status().as_u16(), 400);
    let none =
        reqwest::blocking::Client::new().post(format!("{base}/v1/ingest/csv?council=305")).body("x").send().unwrap();
    assert_eq!(none.status().as_u16(), 401);

    // XML goes the same way.
    let xml =
        council.post(format!("{base}/v1/ingest/xml?dry_run=true")).body(example("pole-submission.xml")).send().unwrap();
    let status = xml.status().as_u16();
    let report: Value = xml.json().unwrap();
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["status"], "dry_run", "{report}");
}

#[test]
fn an_hl7_file_over_http_is_journaled_as_the_token_s_subject_in_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let (_serving, base) = start(dir.path());
    let file =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hl7/adt-batch.hl7")).unwrap();
    let council = common::client_with(&common::token("council", Some("305"), None));
    let response = council.post(format!("{base}/v1/ingest/hl7?file_name=adt.hl7")).body(file).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report: Value = response.json().unwrap();
    assert_eq!(report["status"], "committed", "{report}");
    // Every message but the A40, whose merge a council's token may not make.
    assert_eq!(report["accepted"], 6, "{report}");

    let feed: Value = common::admin_client().get(format!("{base}/v1/journal")).send().unwrap().json().unwrap();
    let written = feed["transactions"].as_array().unwrap();
    assert_eq!(written.len(), 6, "{feed}");
    for tx in written {
        assert_eq!(tx["actor"], "test-council", "{tx}");
        assert_eq!(tx["role"], "council", "{tx}");
        assert_eq!(tx["source"]["council"], "305", "{tx}");
        assert_eq!(tx["source"]["file"], "adt.hl7", "{tx}");
    }
}
