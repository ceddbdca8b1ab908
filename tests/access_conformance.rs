//! The access model as a conformance suite against the real server: every read route (REST
//! and GraphQL), every write operation, both change-feed streams, every ingest format and
//! MLLP, for every role and every kind of record. The cases are generated from tables
//! (routes, roles, targets, operations) and each expected answer comes from a rule function
//! that states the model once (`expected_read`, `found`, `expected_write`,
//! `expected_ingest`), never from a table of numbers: a row added to a table is judged by the
//! same rules as every other.
//!
//! Beyond statuses: a council cannot tell another council's record (or a national one) from
//! an id that names nothing, nor a consumer a record it may not see from a missing one (the
//! answers are byte-identical once the id is masked); no answer a council gets carries the
//! other council's values, client ids, record ids or council code, and none a consumer gets
//! carries an identifiable value or a real id; a refused write changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::Message;

// ------------------------------------------------------------------------- roles and records

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Admin,
    Analyst,
    Aaa,
    Bbb,
    Consumer,
    Auditor,
    /// No token at all.
    Anonymous,
}

const ROLES: [Role; 7] =
    [Role::Admin, Role::Analyst, Role::Aaa, Role::Bbb, Role::Consumer, Role::Auditor, Role::Anonymous];

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Aaa => "aaa",
            Role::Bbb => "bbb",
            Role::Consumer => "consumer",
            Role::Auditor => "auditor",
            Role::Anonymous => "none",
        }
    }

    fn council(self) -> Option<&'static str> {
        match self {
            Role::Aaa => Some("AAA"),
            Role::Bbb => Some("BBB"),
            _ => None,
        }
    }

    fn other_council(self) -> Option<&'static str> {
        match self {
            Role::Aaa => Some("BBB"),
            Role::Bbb => Some("AAA"),
            _ => None,
        }
    }

    fn token(self) -> Option<String> {
        match self {
            Role::Aaa | Role::Bbb => Some(common::token("council", self.council(), None)),
            Role::Consumer => Some(common::token("consumer", None, Some("research"))),
            Role::Anonymous => None,
            role => Some(common::token(role.name(), None, None)),
        }
    }

    fn client(self) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = self.token() {
            headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        }
        Client::builder().default_headers(headers).timeout(Duration::from_secs(60)).build().unwrap()
    }

    /// The operations a role may ask for at all, whatever the records: the write half of
    /// the access model's role table.
    fn writes(self, operation: &str) -> bool {
        match self {
            Role::Admin => true,
            Role::Analyst => matches!(operation, "merge" | "unmerge"),
            Role::Aaa | Role::Bbb => matches!(operation, "create" | "update" | "link" | "unlink" | "retract"),
            Role::Consumer | Role::Auditor | Role::Anonymous => false,
        }
    }
}

/// Whose record a target is: the contributor whose transaction created it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Council(&'static str),
    National,
    Nothing,
}

/// The kinds the built-in `research` agreement covers (`research_kinds_are_the_agreements`
/// keeps this in step with its file).
const RESEARCH_KINDS: [&str; 2] = ["person", "event"];

/// A record the rules are asked about, with the values that name it on each route.
#[derive(Clone, Debug)]
struct Target {
    label: String,
    id: String,
    owner: Owner,
    kind: &'static str,
    /// The transaction that created it; `None` for an id that names nothing.
    created_seq: Option<u64>,
    opted_out: bool,
    family_name: Option<String>,
    nhs: Option<String>,
    /// (system, value) of an identifier only it holds.
    identifier: Option<(String, String)>,
}

impl Target {
    fn exists_at(&self, seq: u64) -> bool {
        self.created_seq.is_some_and(|created| created <= seq)
    }

    /// The same shape of request naming nothing: what a record the caller may not see must
    /// be indistinguishable from.
    fn twin(&self, id: &str) -> Target {
        Target {
            label: format!("nothing (shaped as {})", self.label),
            id: id.to_owned(),
            owner: Owner::Nothing,
            kind: self.kind,
            created_seq: None,
            opted_out: false,
            family_name: self.family_name.as_ref().map(|_| "Nobodymarker".to_owned()),
            nhs: self.nhs.as_ref().map(|_| nhs_number(943_476_700)),
            identifier: self.identifier.as_ref().map(|(system, _)| {
                let value = if system == "cqc-location" { "1-999000999" } else { "NONE-0" };
                (system.clone(), value.to_owned())
            }),
        }
    }
}

/// An id no record holds (and, in the write suite, one per attempt).
const MISSING_ID: &str = "01JNOSUCHRECORD0000000000A";

/// The first valid NHS number (Modulus 11) whose first nine digits are `first_nine` or more.
fn nhs_number(first_nine: u64) -> String {
    (first_nine..)
        .find_map(|n| {
            (0..10).map(|d| format!("{n:09}{d}")).find(|candidate| pole_model::normalise_nhs_number(candidate).is_ok())
        })
        .unwrap()
}

#[test]
fn research_kinds_are_the_agreements() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/adult-social-care/agreements/research.toml");
    let agreement: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let kinds: Vec<&str> = agreement["kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(kinds, RESEARCH_KINDS);
}

// ------------------------------------------------------------------------- the read rules

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Api {
    Rest,
    Graphql,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ListBy {
    Kind(&'static str),
    Council(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum What {
    Entity {
        as_of: Option<u64>,
    },
    Links {
        direction: Option<&'static str>,
        as_of: Option<u64>,
    },
    History,
    Diff,
    /// The national view of a person.
    People,
    SearchFamilyName,
    SearchNhs,
    Identifier,
    IdentifierNhs,
    List(ListBy),
    Journal,
}

impl What {
    /// The value that names `t` on this route (`None`: the route does not apply to it, or
    /// names no record).
    fn needle(self, t: &Target) -> Option<String> {
        match self {
            What::Entity { .. } | What::Links { .. } | What::History | What::Diff | What::People => Some(t.id.clone()),
            What::SearchFamilyName => t.family_name.clone(),
            What::SearchNhs | What::IdentifierNhs => t.nhs.clone(),
            What::Identifier => t.identifier.as_ref().map(|(_, value)| value.clone()),
            What::List(_) | What::Journal => None,
        }
    }

    fn per_record(self) -> bool {
        !matches!(self, What::List(_) | What::Journal)
    }

    fn by_id(self) -> bool {
        matches!(self, What::Entity { .. } | What::Links { .. } | What::History | What::Diff | What::People)
    }

    /// Routes that find records by what identifies them, or show their every change: never
    /// for minimised views.
    fn identifying(self) -> bool {
        matches!(
            self,
            What::History
                | What::Diff
                | What::People
                | What::SearchFamilyName
                | What::SearchNhs
                | What::Identifier
                | What::IdentifierNhs
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Route {
    api: Api,
    what: What,
}

/// Whether `role` may see `t`, which exists: councils their own records (opted-out clients
/// included: their own care), administrators everything, analysts everyone who did not opt
/// out, consumers the agreement's kinds of everyone who did not opt out.
fn sees(role: Role, t: &Target) -> bool {
    match role {
        Role::Admin => true,
        Role::Analyst => !t.opted_out,
        Role::Aaa | Role::Bbb => role.council().is_some_and(|own| t.owner == Owner::Council(own)),
        Role::Consumer => RESEARCH_KINDS.contains(&t.kind) && !t.opted_out,
        Role::Auditor | Role::Anonymous => false,
    }
}

/// The status of a read of one record by id, as of `as_of` (now when `None`): the council's
/// scope is judged before anything about the record, then its existence at that point, then
/// whether the caller may see it; a consumer's refusal is the 404 of a missing record.
fn by_id(role: Role, t: &Target, as_of: Option<u64>) -> u16 {
    if let Some(own) = role.council() {
        if t.owner != Owner::Council(own) {
            return 403;
        }
    }
    if !t.exists_at(as_of.unwrap_or(u64::MAX)) {
        return 404;
    }
    if !sees(role, t) {
        return if role == Role::Consumer { 404 } else { 403 };
    }
    200
}

/// Whether `t` is among the answers of a listing, search or look-up for `role` (`needle`:
/// what was searched for).
fn found(role: Role, what: What, needle: Option<&str>, t: &Target) -> bool {
    t.exists_at(u64::MAX)
        && sees(role, t)
        && match what {
            What::List(ListBy::Kind(kind)) => t.kind == kind,
            What::List(ListBy::Council(code)) => t.owner == Owner::Council(code),
            what => needle.is_some() && what.needle(t).as_deref() == needle,
        }
}

/// The status of a read: the access model, stated once. `world` is every record, for the
/// routes whose answer depends on what else matches.
fn expected_read(role: Role, route: Route, target: Option<&Target>, world: &[Target]) -> u16 {
    if role == Role::Anonymous {
        return 401;
    }
    // Auditors read the access log and the chains' verification, never records.
    if role == Role::Auditor {
        return 403;
    }
    if role == Role::Consumer && route.what.identifying() {
        return 403;
    }
    let target = || target.expect("a route about one record names it");
    match route.what {
        What::Journal | What::List(ListBy::Kind(_)) | What::SearchFamilyName | What::SearchNhs => 200,
        What::List(ListBy::Council(code)) => match role.council() {
            Some(own) if own != code => 403,
            _ => 200,
        },
        What::Identifier | What::IdentifierNhs => {
            let needle = route.what.needle(target());
            let any = world.iter().any(|t| found(role, route.what, needle.as_deref(), t));
            // REST answers a look-up that finds nothing the caller may see with a 404;
            // GraphQL with an empty list.
            if any || route.api == Api::Graphql {
                200
            } else {
                404
            }
        }
        // The national view joins every source's records: for national roles only.
        What::People if role.council().is_some() => 403,
        What::People => match by_id(role, target(), None) {
            200 if target().kind != "person" => 400,
            status => status,
        },
        What::Entity { as_of } | What::Links { as_of, .. } => by_id(role, target(), as_of),
        What::History | What::Diff => by_id(role, target(), None),
    }
}

// ------------------------------------------------------------------------- the write rules

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Create,
    Update,
    /// An update naming a version the record is not at.
    UpdateAtVersion,
    LinkFrom,
    LinkTo,
    Unlink,
    Retract,
    Merge,
    Unmerge,
    Erase,
    /// An identifier of the other council's namespace (`council:BBB:client` for AAA).
    ForeignIdentifier,
}

const OPS: [Op; 11] = [
    Op::Create,
    Op::Update,
    Op::UpdateAtVersion,
    Op::LinkFrom,
    Op::LinkTo,
    Op::Unlink,
    Op::Retract,
    Op::Merge,
    Op::Unmerge,
    Op::Erase,
    Op::ForeignIdentifier,
];

impl Op {
    /// The operation the access model judges.
    fn operation(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update | Op::UpdateAtVersion | Op::ForeignIdentifier => "update",
            Op::LinkFrom | Op::LinkTo => "link",
            Op::Unlink => "unlink",
            Op::Retract => "retract",
            Op::Merge => "merge",
            Op::Unmerge => "unmerge",
            Op::Erase => "erase",
        }
    }
}

/// The status of a write of `op` on `target` (`None`: a create, which names no record). What
/// a role may ask for at all is judged first; then a council's scope (its own records, and a
/// national record as a link's far end), before whether the record exists, its version or
/// its content.
fn expected_write(role: Role, op: Op, target: Option<&Target>) -> u16 {
    if role == Role::Anonymous {
        return 401;
    }
    if !role.writes(op.operation()) {
        return 403;
    }
    let Some(t) = target else { return 201 };
    if let Some(own) = role.council() {
        let theirs = t.owner == Owner::Council(own);
        let national_far_end = op == Op::LinkTo && t.owner == Owner::National;
        if !(theirs || national_far_end) {
            return 403;
        }
    }
    if t.created_seq.is_none() {
        return 422;
    }
    match op {
        Op::UpdateAtVersion => 409,
        Op::ForeignIdentifier if role.council().is_some() => 422,
        _ => 201,
    }
}

/// The status of a submission over `POST /v1/ingest/{format}?council=CODE`.
fn expected_ingest(role: Role, council: &str) -> u16 {
    match role {
        Role::Anonymous => 401,
        Role::Admin => 200,
        Role::Aaa | Role::Bbb => {
            if role.council() == Some(council) {
                200
            } else {
                403
            }
        }
        Role::Analyst | Role::Consumer | Role::Auditor => 403,
    }
}

// ------------------------------------------------------------------------- the server

struct Running {
    /// Owns the child process: the server lives as long as this value.
    _serving: common::Serving,
    base: String,
    mllp: Option<String>,
    dir: tempfile::TempDir,
}

fn start(with_mllp: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let extra: &[&str] = if with_mllp { &["--mllp", "127.0.0.1:0"] } else { &[] };
    let mut serving = common::serve(&dir.path().join("store"), &dir.path().join("stderr.log"), extra);
    let (mut base, mut mllp) = (String::new(), String::new());
    serving.wait_for(|line| {
        if let Some(addr) = line.strip_prefix("mllp listening on ") {
            mllp = addr.trim().to_owned();
        } else if let Some(addr) = line.strip_prefix("listening on ") {
            base = addr.trim().to_owned();
        }
        !base.is_empty() && (!with_mllp || !mllp.is_empty())
    });
    Running { _serving: serving, base, mllp: with_mllp.then_some(mllp), dir }
}

impl Running {
    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

struct Answer {
    status: u16,
    text: String,
    body: Value,
}

impl Answer {
    fn read(response: reqwest::blocking::Response) -> Answer {
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    /// The status a GraphQL answer stands for: the HTTP status when the request itself was
    /// refused, the first error's code, 404 when the root field is null, else `success`.
    fn graphql_status(&self, root: &str, success: u16) -> u16 {
        if self.status != 200 {
            return self.status;
        }
        match self.body["errors"][0]["extensions"]["code"].as_str() {
            Some(code) => status_of(code),
            None if self.body["data"][root].is_null() => 404,
            None => success,
        }
    }
}

/// The HTTP status of a stable error code (REST's problem `type`, GraphQL's `extensions.code`).
fn status_of(code: &str) -> u16 {
    match code {
        "invalid-request" => 400,
        "unauthorized" => 401,
        "forbidden" => 403,
        "not-found" => 404,
        "version-conflict" => 409,
        "invalid-change" | "idempotency-key-reused" => 422,
        _ => 500,
    }
}

/// One HTTP client per role (connections are reused), against one server.
struct Http {
    base: String,
    clients: HashMap<Role, Client>,
}

impl Http {
    fn new(base: &str) -> Http {
        Http { base: base.to_owned(), clients: ROLES.iter().map(|&role| (role, role.client())).collect() }
    }

    fn get(&self, role: Role, path: &str) -> Answer {
        self.get_with(role, path, &[])
    }

    fn get_with(&self, role: Role, path: &str, query: &[(&str, &str)]) -> Answer {
        Answer::read(self.clients[&role].get(format!("{}{path}", self.base)).query(query).send().unwrap())
    }

    fn post(&self, role: Role, path: &str, body: &Value) -> Answer {
        Answer::read(self.clients[&role].post(format!("{}{path}", self.base)).json(body).send().unwrap())
    }

    fn post_bytes(&self, role: Role, path: &str, body: Vec<u8>) -> Answer {
        Answer::read(self.clients[&role].post(format!("{}{path}", self.base)).body(body).send().unwrap())
    }

    fn graphql(&self, role: Role, query: &str, variables: Value) -> Answer {
        self.post(role, "/graphql", &json!({"query": query, "variables": variables}))
    }

    /// Commits a transaction that must be stored; answers the committed view.
    fn commit(&self, role: Role, changes: Value) -> Value {
        let answer = self.post(role, "/v1/transactions", &json!({ "changes": changes }));
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.body
    }

    /// The journal's head (`/ready` reads no records, so it leaves no access record).
    fn head(&self) -> u64 {
        self.get(Role::Anonymous, "/ready").body["head_seq"].as_u64().unwrap()
    }

    fn history(&self, id: &str) -> String {
        self.get(Role::Admin, &format!("/v1/entities/{id}/history")).text
    }
}

fn reference(committed: &Value, name: &str) -> String {
    committed["refs"][name].as_str().unwrap_or_else(|| panic!("no ref {name}: {committed}")).to_owned()
}

/// Strings of `values` that occur in `text`.
fn occurring<'a>(values: &'a [String], text: &str) -> Vec<&'a str> {
    values.iter().filter(|v| text.contains(v.as_str())).map(String::as_str).collect()
}

// ------------------------------------------------------------------------- the read world

/// Two councils that know the same person (same NHS number), each with its own record of
/// them, an address and a contact; an AAA client who opted out; a national care setting
/// both councils' records link to. Seqs 1, 4 and 6 are AAA's, 2 and 5 BBB's, 3 national.
struct ReadWorld {
    http: Http,
    head: u64,
    targets: Vec<Target>,
    council_seqs: BTreeMap<&'static str, Vec<u64>>,
    /// Each council's values, client and event ids, record ids and provenance code: what
    /// the other council must never be answered.
    values: BTreeMap<&'static str, Vec<String>>,
    /// Every identifiable value and every real id: what a consumer must never be answered.
    identifying: Vec<String>,
    pseudonyms: pole_auth::Pseudonymiser,
}

fn read_world(running: &Running) -> ReadWorld {
    let http = Http::new(&running.base);
    let shared = nhs_number(943_476_500);
    let opted_nhs = nhs_number(943_476_600);
    let aaa = http.commit(
        Role::Aaa,
        json!([
            {"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": "Aaamarker", "given_name": "Aaagiven", "birth_date": "1931-02-11", "gender": "2"},
                "identifiers": [{"system": "nhs-number", "value": shared},
                                {"system": "council:AAA:client", "value": "A-CLIENT-1"}]}},
            {"target": {"ref": "a"}, "op": {"op": "create", "type": "address",
                "set": {"line1": "1 Aaastreet", "postcode": "LS1 4AP"}}},
            {"target": {"ref": "c"}, "op": {"op": "create", "type": "contact",
                "set": {"contact_date": "2024-03-15", "contact_source": "Aaasource"},
                "identifiers": [{"system": "council:AAA:event", "value": "A-EV-1"}]}},
            {"target": {"ref": "c"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
            {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}},
            {"target": {"ref": "o"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": "Optoutmarker", "opted_out": true},
                "identifiers": [{"system": "nhs-number", "value": opted_nhs},
                                {"system": "council:AAA:client", "value": "A-CLIENT-OPT"}]}},
        ]),
    );
    let bbb = http.commit(
        Role::Bbb,
        json!([
            {"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
                "set": {"family_name": "Bbbmarker", "given_name": "Bbbgiven", "ethnicity": "C"},
                "identifiers": [{"system": "nhs-number", "value": shared},
                                {"system": "council:BBB:client", "value": "B-CLIENT-9"}]}},
            {"target": {"ref": "a"}, "op": {"op": "create", "type": "address",
                "set": {"line1": "9 Bbbstreet", "postcode": "LS6 2AB"}}},
            {"target": {"ref": "c"}, "op": {"op": "create", "type": "contact",
                "set": {"contact_date": "2024-05-01", "contact_source": "Bbbsource"},
                "identifiers": [{"system": "council:BBB:event", "value": "B-EV-1"}]}},
            {"target": {"ref": "c"}, "op": {"op": "link", "role": "subject", "to": {"ref": "p"}}},
            {"target": {"ref": "p"}, "op": {"op": "link", "role": "resides_at", "to": {"ref": "a"}}},
        ]),
    );
    let national = http.commit(
        Role::Admin,
        json!([{"target": {"ref": "n"}, "op": {"op": "create", "type": "care_setting",
            "set": {"name": "Nationalcourt", "postcode": "LS2 7EW"},
            "identifiers": [{"system": "cqc-location", "value": "1-555000111"}]}}]),
    );
    let (p_a, addr_a, c_a, o_a) =
        (reference(&aaa, "p"), reference(&aaa, "a"), reference(&aaa, "c"), reference(&aaa, "o"));
    let (p_b, addr_b, c_b) = (reference(&bbb, "p"), reference(&bbb, "a"), reference(&bbb, "c"));
    let n = reference(&national, "n");
    // Both councils' records link to the national record (a far end they may name), and
    // the journal ends with an AAA transaction, so a stream read up to it has passed BBB's.
    http.commit(
        Role::Aaa,
        json!([
            {"target": {"entity": p_a}, "op": {"op": "link", "role": "resides_at", "to": {"entity": n}}},
            {"target": {"entity": c_a}, "op": {"op": "update", "set": {"outcome": "Aaaoutcome"}}},
        ]),
    );
    http.commit(
        Role::Bbb,
        json!([
            {"target": {"entity": p_b}, "op": {"op": "link", "role": "resides_at", "to": {"entity": n}}},
            {"target": {"entity": c_b}, "op": {"op": "link", "role": "occurred_at", "to": {"entity": n}}},
        ]),
    );
    http.commit(Role::Aaa, json!([{"target": {"entity": p_a}, "op": {"op": "update", "set": {"gender": "1"}}}]));
    let head = http.head();
    assert_eq!(head, 6);

    let target = |label: &str, id: &str, owner: Owner, kind: &'static str, created: u64| Target {
        label: label.to_owned(),
        id: id.to_owned(),
        owner,
        kind,
        created_seq: Some(created),
        opted_out: false,
        family_name: None,
        nhs: None,
        identifier: None,
    };
    let ident = |system: &str, value: &str| Some((system.to_owned(), value.to_owned()));
    let targets = vec![
        Target {
            family_name: Some("Aaamarker".into()),
            nhs: Some(shared.clone()),
            identifier: ident("council:AAA:client", "A-CLIENT-1"),
            ..target("AAA's person", &p_a, Owner::Council("AAA"), "person", 1)
        },
        Target {
            identifier: ident("council:AAA:event", "A-EV-1"),
            ..target("AAA's contact", &c_a, Owner::Council("AAA"), "event", 1)
        },
        Target {
            family_name: Some("Bbbmarker".into()),
            nhs: Some(shared.clone()),
            identifier: ident("council:BBB:client", "B-CLIENT-9"),
            ..target("BBB's person", &p_b, Owner::Council("BBB"), "person", 2)
        },
        Target {
            identifier: ident("council:BBB:event", "B-EV-1"),
            ..target("BBB's contact", &c_b, Owner::Council("BBB"), "event", 2)
        },
        Target {
            identifier: ident("cqc-location", "1-555000111"),
            ..target("the national care setting", &n, Owner::National, "location", 3)
        },
        Target {
            opted_out: true,
            family_name: Some("Optoutmarker".into()),
            nhs: Some(opted_nhs.clone()),
            identifier: ident("council:AAA:client", "A-CLIENT-OPT"),
            ..target("AAA's opted-out person", &o_a, Owner::Council("AAA"), "person", 1)
        },
    ];
    let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<String>>();
    let mut values = BTreeMap::new();
    values.insert(
        "AAA",
        strings(&[
            "Aaamarker",
            "Aaagiven",
            "Aaastreet",
            "Aaasource",
            "Aaaoutcome",
            "A-CLIENT-1",
            "A-EV-1",
            "Optoutmarker",
            "A-CLIENT-OPT",
            r#""council":"AAA""#,
            &p_a,
            &addr_a,
            &c_a,
            &o_a,
        ]),
    );
    values.insert(
        "BBB",
        strings(&[
            "Bbbmarker",
            "Bbbgiven",
            "Bbbstreet",
            "Bbbsource",
            "B-CLIENT-9",
            "B-EV-1",
            r#""council":"BBB""#,
            &p_b,
            &addr_b,
            &c_b,
        ]),
    );
    let identifying = strings(&[
        "Aaamarker",
        "Aaagiven",
        "1931-02-11",
        "Aaastreet",
        "LS1 4AP",
        "A-CLIENT-1",
        "A-EV-1",
        "Optoutmarker",
        "A-CLIENT-OPT",
        "Bbbmarker",
        "Bbbgiven",
        "Bbbstreet",
        "LS6 2AB",
        "B-CLIENT-9",
        "B-EV-1",
        &shared,
        &opted_nhs,
        &p_a,
        &addr_a,
        &c_a,
        &o_a,
        &p_b,
        &addr_b,
        &c_b,
        &n,
    ]);
    let secret = std::fs::read_to_string(running.dir.path().join("store/secrets/pseudonym.secret")).unwrap();
    let pseudonyms = pole_auth::Pseudonymiser::new(&hex::decode(secret.trim()).unwrap(), "research");
    ReadWorld {
        http,
        head,
        targets,
        council_seqs: BTreeMap::from([("AAA", vec![1, 4, 6]), ("BBB", vec![2, 5])]),
        values,
        identifying,
        pseudonyms,
    }
}

/// The read routes: every REST and GraphQL way of reading records. `head` is the last
/// transaction, for reads as of now by sequence.
fn read_routes(head: u64) -> Vec<Route> {
    let rest = [
        What::Entity { as_of: None },
        What::Entity { as_of: Some(1) },
        What::Entity { as_of: Some(head) },
        What::Links { direction: None, as_of: None },
        What::Links { direction: Some("in"), as_of: None },
        What::Links { direction: None, as_of: Some(1) },
        What::History,
        What::Diff,
        What::People,
        What::SearchFamilyName,
        What::SearchNhs,
        What::Identifier,
        What::IdentifierNhs,
        What::List(ListBy::Kind("person")),
        What::List(ListBy::Kind("event")),
        What::List(ListBy::Council("AAA")),
        What::List(ListBy::Council("BBB")),
        What::Journal,
    ];
    let graphql = [
        What::Entity { as_of: None },
        What::Entity { as_of: Some(1) },
        What::History,
        What::Diff,
        What::SearchFamilyName,
        What::SearchNhs,
        What::Identifier,
        What::IdentifierNhs,
        What::List(ListBy::Kind("person")),
        What::List(ListBy::Council("AAA")),
        What::List(ListBy::Council("BBB")),
        What::Journal,
    ];
    let rest = rest.into_iter().map(|what| Route { api: Api::Rest, what });
    rest.chain(graphql.into_iter().map(|what| Route { api: Api::Graphql, what })).collect()
}

/// The GraphQL selection of an entity: everything a caller may be shown of it.
const ENTITY_FIELDS: &str =
    "id kind type version status attributes identifiers { system value } links { role direction validFrom }";

/// A request naming nothing: its route, the value asked for and the identifier's system.
type TwinKey = (Route, String, Option<(String, String)>);

/// What a per-record read observed.
struct Observed {
    status: u16,
    /// The answer with the value that named the record masked as `ID`.
    masked: String,
}

impl ReadWorld {
    fn pseudonym(&self, id: &str) -> String {
        self.pseudonyms.pseudonym(&pole_model::EntityId::new(id).unwrap())
    }

    /// How `role` names a record by id, and finds it in answers.
    fn shown_id(&self, role: Role, id: &str) -> String {
        if role == Role::Consumer {
            self.pseudonym(id)
        } else {
            id.to_owned()
        }
    }

    /// What `role` must never be answered.
    fn forbidden(&self, role: Role) -> &[String] {
        match role {
            Role::Aaa | Role::Bbb => &self.values[role.other_council().unwrap()],
            Role::Consumer => &self.identifying,
            _ => &[],
        }
    }

    fn check_leaks(&self, role: Role, context: &str, text: &str, failures: &mut Vec<String>) {
        let leaked = occurring(self.forbidden(role), text);
        if !leaked.is_empty() {
            failures.push(format!("{context} as {}: the answer carries {leaked:?}: {text}", role.name()));
        }
    }

    /// Checks which records an answer holds: each of the world's records appears exactly
    /// when `found` says.
    fn check_found(
        &self,
        role: Role,
        route: Route,
        needle: Option<&str>,
        items: &BTreeSet<String>,
        context: &str,
        failures: &mut Vec<String>,
    ) {
        for t in &self.targets {
            let want = found(role, route.what, needle, t);
            if items.contains(&self.shown_id(role, &t.id)) != want {
                let verb = if want { "lacks" } else { "holds" };
                failures.push(format!("{context} as {}: the answer {verb} {} ({items:?})", role.name(), t.label));
            }
        }
    }

    /// One read of one record by `role`: the status the rule says, the records the rule says,
    /// nothing the role must not see. `None` when the route does not apply to the record.
    fn read_one(
        &self,
        role: Role,
        route: Route,
        t: &Target,
        cases: &AtomicUsize,
        failures: &mut Vec<String>,
    ) -> Option<Observed> {
        let needle = route.what.needle(t)?;
        let shown = if route.what.by_id() { self.shown_id(role, &needle) } else { needle.clone() };
        let (status, text, items) = match route.api {
            Api::Rest => self.rest_read(role, route.what, &shown, t),
            Api::Graphql => self.graphql_read(role, route.what, &shown, t),
        };
        cases.fetch_add(1, Ordering::Relaxed);
        let context = format!("{:?} {:?} of {}", route.api, route.what, t.label);
        let want = expected_read(role, route, Some(t), &self.targets);
        if status != want {
            failures.push(format!("{context} as {}: answered {status}, the rule says {want}: {text}", role.name()));
        }
        if let (200, Some(items)) = (status, items) {
            self.check_found(role, route, Some(&needle), &items, &context, failures);
        }
        let masked = text.replace(&shown, "ID");
        self.check_leaks(role, &context, &masked, failures);
        Some(Observed { status, masked })
    }

    /// A REST read: its status, text and, for searches and look-ups, the ids it answered.
    fn rest_read(&self, role: Role, what: What, shown: &str, t: &Target) -> (u16, String, Option<BTreeSet<String>>) {
        let as_of = |as_of: Option<u64>| as_of.map(|n| n.to_string());
        let (path, query): (String, Vec<(&str, String)>) = match what {
            What::Entity { as_of: at } => {
                (format!("/v1/entities/{shown}"), as_of(at).map(|n| ("as_of", n)).into_iter().collect())
            }
            What::Links { direction, as_of: at } => {
                let mut query: Vec<(&str, String)> =
                    direction.map(|d| ("direction", d.to_owned())).into_iter().collect();
                query.extend(as_of(at).map(|n| ("as_of", n)));
                (format!("/v1/entities/{shown}/links"), query)
            }
            What::History => (format!("/v1/entities/{shown}/history"), Vec::new()),
            What::Diff => (format!("/v1/entities/{shown}/diff"), vec![("from", "1".into()), ("to", "1".into())]),
            What::People => (format!("/v1/people/{shown}"), Vec::new()),
            What::SearchFamilyName => ("/v1/search".into(), vec![("family_name", shown.to_owned())]),
            What::SearchNhs => ("/v1/search".into(), vec![("nhs_number", shown.to_owned())]),
            What::Identifier => {
                let (system, _) = t.identifier.as_ref().unwrap();
                (format!("/v1/identifiers/{system}/{shown}"), Vec::new())
            }
            What::IdentifierNhs => (format!("/v1/identifiers/nhs-number/{shown}"), Vec::new()),
            What::List(_) | What::Journal => unreachable!("read whole, not per record"),
        };
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self.http.get_with(role, &path, &query);
        let items = matches!(what, What::SearchFamilyName | What::SearchNhs | What::Identifier | What::IdentifierNhs)
            .then(|| ids_of(&answer.body["items"]));
        (answer.status, answer.text, items)
    }

    fn graphql_read(&self, role: Role, what: What, shown: &str, t: &Target) -> (u16, String, Option<BTreeSet<String>>) {
        let (root, query, variables) = match what {
            What::Entity { as_of } => (
                "entity",
                format!("query($id: ID!, $asOf: String) {{ entity(id: $id, asOf: $asOf) {{ {ENTITY_FIELDS} }} }}"),
                json!({"id": shown, "asOf": as_of.map(|n| n.to_string())}),
            ),
            What::History => (
                "history",
                "query($id: ID!) { history(id: $id) { version seq actor role source change } }".to_owned(),
                json!({"id": shown}),
            ),
            What::Diff => (
                "diff",
                "query($id: ID!) { diff(id: $id, from: 1, to: 1) { id from to delta } }".to_owned(),
                json!({"id": shown}),
            ),
            What::SearchFamilyName => (
                "search",
                format!("query($v: String) {{ search(familyName: $v) {{ {ENTITY_FIELDS} }} }}"),
                json!({"v": shown}),
            ),
            What::SearchNhs => (
                "search",
                format!("query($v: String) {{ search(nhsNumber: $v) {{ {ENTITY_FIELDS} }} }}"),
                json!({"v": shown}),
            ),
            What::Identifier | What::IdentifierNhs => {
                let system = match what {
                    What::Identifier => t.identifier.as_ref().unwrap().0.clone(),
                    _ => "nhs-number".to_owned(),
                };
                (
                    "identifier",
                    format!(
                        "query($s: String!, $v: String!) {{ identifier(system: $s, value: $v) {{ {ENTITY_FIELDS} }} }}"
                    ),
                    json!({"s": system, "v": shown}),
                )
            }
            other => unreachable!("{other:?} is not a per-record GraphQL read"),
        };
        let answer = self.http.graphql(role, &query, variables);
        let status = answer.graphql_status(root, 200);
        let items = matches!(root, "search" | "identifier").then(|| ids_of(&answer.body["data"][root]));
        (status, answer.text, items)
    }

    /// A listing or the change feed, paged through to its end.
    fn read_whole(&self, role: Role, route: Route, cases: &AtomicUsize, failures: &mut Vec<String>) {
        let context = format!("{:?} {:?}", route.api, route.what);
        let (status, pages, items, seqs) = match (route.api, route.what) {
            (Api::Rest, What::List(by)) => self.rest_list(role, by),
            (Api::Graphql, What::List(by)) => self.graphql_list(role, by),
            (Api::Rest, What::Journal) => self.rest_journal(role),
            (Api::Graphql, What::Journal) => self.graphql_journal(role),
            (_, other) => unreachable!("{other:?} is read per record"),
        };
        cases.fetch_add(1, Ordering::Relaxed);
        let want = expected_read(role, route, None, &self.targets);
        if status != want {
            failures.push(format!("{context} as {}: answered {status}, the rule says {want}: {pages:?}", role.name()));
        }
        for page in &pages {
            self.check_leaks(role, &context, page, failures);
        }
        if status != 200 {
            return;
        }
        if let What::List(_) = route.what {
            self.check_found(role, route, None, &items, &context, failures);
        }
        if route.what == What::Journal {
            // A council's feed is its own submissions; national roles see every transaction.
            let want: Option<Vec<u64>> = match role {
                Role::Aaa | Role::Bbb => Some(self.council_seqs[role.council().unwrap()].clone()),
                Role::Admin | Role::Analyst => Some((1..=self.head).collect()),
                _ => None,
            };
            if let Some(want) = want {
                if seqs != want {
                    failures.push(format!("{context} as {}: transactions {seqs:?}, wanted {want:?}", role.name()));
                }
            }
        }
    }

    fn rest_list(&self, role: Role, by: ListBy) -> (u16, Vec<String>, BTreeSet<String>, Vec<u64>) {
        let filter = match by {
            ListBy::Kind(kind) => ("kind", kind),
            ListBy::Council(code) => ("council", code),
        };
        let (mut pages, mut items, mut cursor) = (Vec::new(), BTreeSet::new(), None::<String>);
        for _ in 0..50 {
            let mut query = vec![filter, ("limit", "2")];
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor.as_str()));
            }
            let answer = self.http.get_with(role, "/v1/entities", &query);
            pages.push(answer.text.clone());
            if answer.status != 200 {
                return (answer.status, pages, items, Vec::new());
            }
            items.extend(ids_of(&answer.body["items"]));
            match answer.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return (200, pages, items, Vec::new()),
            }
        }
        panic!("the listing {by:?} as {} did not end: {pages:?}", role.name())
    }

    fn graphql_list(&self, role: Role, by: ListBy) -> (u16, Vec<String>, BTreeSet<String>, Vec<u64>) {
        let (kind, council) = match by {
            ListBy::Kind(kind) => (Some(kind), None),
            ListBy::Council(code) => (None, Some(code)),
        };
        let query = format!(
            "query($kind: String, $council: String, $after: String) {{ entities(kind: $kind, council: $council, first: 2, after: $after) {{ items {{ {ENTITY_FIELDS} }} nextCursor }} }}"
        );
        let (mut pages, mut items, mut cursor) = (Vec::new(), BTreeSet::new(), Value::Null);
        for _ in 0..50 {
            let answer = self.http.graphql(role, &query, json!({"kind": kind, "council": council, "after": cursor}));
            pages.push(answer.text.clone());
            let status = answer.graphql_status("entities", 200);
            if status != 200 {
                return (status, pages, items, Vec::new());
            }
            let page = &answer.body["data"]["entities"];
            items.extend(ids_of(&page["items"]));
            if page["nextCursor"].is_null() {
                return (200, pages, items, Vec::new());
            }
            cursor = page["nextCursor"].clone();
        }
        panic!("the GraphQL listing {by:?} as {} did not end: {pages:?}", role.name())
    }

    fn rest_journal(&self, role: Role) -> (u16, Vec<String>, BTreeSet<String>, Vec<u64>) {
        let (mut pages, mut seqs, mut after) = (Vec::new(), Vec::new(), 0);
        for _ in 0..50 {
            let answer = self.http.get_with(role, "/v1/journal", &[("after", &after.to_string()), ("limit", "2")]);
            pages.push(answer.text.clone());
            if answer.status != 200 {
                return (answer.status, pages, BTreeSet::new(), seqs);
            }
            seqs.extend(seqs_of(&answer.body["transactions"]));
            let next = answer.body["next_after"].as_u64().unwrap();
            if next >= answer.body["head_seq"].as_u64().unwrap() || next == after {
                return (200, pages, BTreeSet::new(), seqs);
            }
            after = next;
        }
        panic!("the journal as {} did not end: {pages:?}", role.name())
    }

    fn graphql_journal(&self, role: Role) -> (u16, Vec<String>, BTreeSet<String>, Vec<u64>) {
        const PAGE: u64 = 2;
        let query = "query($after: Int) { journal(after: $after, first: 2) { headSeq transactions { seq actor role source reason changes } } }";
        let (mut pages, mut seqs, mut after) = (Vec::new(), Vec::new(), 0);
        for _ in 0..50 {
            let answer = self.http.graphql(role, query, json!({"after": after}));
            pages.push(answer.text.clone());
            let status = answer.graphql_status("journal", 200);
            if status != 200 {
                return (status, pages, BTreeSet::new(), seqs);
            }
            let page = &answer.body["data"]["journal"];
            seqs.extend(seqs_of(&page["transactions"]));
            // A page reads PAGE transactions of the journal, whether or not any is the caller's.
            after += PAGE;
            if after >= page["headSeq"].as_u64().unwrap() {
                return (200, pages, BTreeSet::new(), seqs);
            }
        }
        panic!("the GraphQL journal as {} did not end: {pages:?}", role.name())
    }

    /// Every read route as `role`, each record and its twin naming nothing.
    fn read_all_as(&self, role: Role, routes: &[Route], cases: &AtomicUsize) -> Vec<String> {
        let mut failures = Vec::new();
        // Twins of several records can be the same request: each is asked once.
        let mut twins: HashMap<TwinKey, Observed> = HashMap::new();
        for &route in routes {
            if !route.what.per_record() {
                self.read_whole(role, route, cases, &mut failures);
                continue;
            }
            for t in &self.targets {
                let Some(observed) = self.read_one(role, route, t, cases, &mut failures) else { continue };
                let twin = t.twin(MISSING_ID);
                let key = (route, route.what.needle(&twin).unwrap(), twin.identifier.clone());
                if !twins.contains_key(&key) {
                    let answer = self.read_one(role, route, &twin, cases, &mut failures).unwrap();
                    twins.insert(key.clone(), answer);
                }
                let nothing = &twins[&key];
                if self.must_look_missing(role, route, t) && observed.masked != nothing.masked {
                    failures.push(format!(
                        "{:?} {:?} as {}: {} can be told from nothing:\n  {} {}\n  {} {}",
                        route.api,
                        route.what,
                        role.name(),
                        t.label,
                        observed.status,
                        observed.masked,
                        nothing.status,
                        nothing.masked
                    ));
                }
            }
        }
        failures
    }

    /// Whether `role`'s answer about `t` must read exactly as the answer about nothing: a
    /// council's about any record not its own, a consumer's about a record it may not see,
    /// wherever the value asked for names that record alone.
    fn must_look_missing(&self, role: Role, route: Route, t: &Target) -> bool {
        let needle = route.what.needle(t);
        let alone = self.targets.iter().filter(|other| route.what.needle(other) == needle).count() == 1;
        alone && matches!(role, Role::Aaa | Role::Bbb | Role::Consumer) && !sees(role, t)
    }
}

fn ids_of(items: &Value) -> BTreeSet<String> {
    items
        .as_array()
        .map(|items| {
            items.iter().filter_map(|item| item.as_str().or_else(|| item["id"].as_str()).map(str::to_owned)).collect()
        })
        .unwrap_or_default()
}

fn seqs_of(transactions: &Value) -> Vec<u64> {
    transactions.as_array().map(|txs| txs.iter().filter_map(|tx| tx["seq"].as_u64()).collect()).unwrap_or_default()
}

#[test]
fn every_role_reads_exactly_what_the_rule_allows_on_every_route() {
    let running = start(false);
    let w = read_world(&running);
    let routes = read_routes(w.head);
    let cases = AtomicUsize::new(0);
    let started = Instant::now();
    // Roles read side by side: their answers are independent, and the access log's syncs
    // are shared among concurrent reads.
    let (world, routes_ref, counter) = (&w, &routes, &cases);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            ROLES.iter().map(|&role| scope.spawn(move || world.read_all_as(role, routes_ref, counter))).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    println!(
        "{} read cases ({} routes x {} roles x {} records and their twins) in {:.1?}",
        cases.load(Ordering::Relaxed),
        routes.len(),
        ROLES.len(),
        w.targets.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{} reads break the access model:\n{}", failures.len(), failures.join("\n"));
}

// ------------------------------------------------------------------------- the write world

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteRoute {
    Transactions,
    Mutation,
    EraseEndpoint,
}

/// Every write attempt: route, operation, role. Each attempt has records of its own, so one
/// attempt's success never changes another's expectation.
fn write_plan() -> Vec<(WriteRoute, Op, Role)> {
    let mut plan = Vec::new();
    for route in [WriteRoute::Transactions, WriteRoute::Mutation] {
        for op in OPS {
            for role in ROLES {
                plan.push((route, op, role));
            }
        }
    }
    plan.extend(ROLES.iter().map(|&role| (WriteRoute::EraseEndpoint, Op::Erase, role)));
    plan
}

/// A record an attempt aims at, with what the operations need of it.
struct WriteTarget {
    target: Target,
    /// The link it has (role, far end): what an unlink removes.
    own_link: (&'static str, String),
    /// A record of its kind and its own source it can be merged into (a duplicate: records
    /// of different sources are never merged, see `a_merge_never_joins_two_sources_records`).
    survivor: String,
}

/// The national records every attempt may name as a far end or source.
struct Helpers {
    /// A care setting people are linked to as where they live.
    far_for_people: String,
    /// An organisation care settings are linked to as operated by.
    far_for_settings: String,
    /// Each writer's own contact, linked to targets (a national one for national roles).
    sources: HashMap<Role, String>,
}

struct WriteWorld {
    http: Http,
    plan: Vec<(WriteRoute, Op, Role)>,
    /// One set of targets per attempt of the plan.
    sets: Vec<Vec<WriteTarget>>,
    helpers: Helpers,
    /// Each council's values and record ids: what the other council must never be answered.
    values: BTreeMap<&'static str, Vec<String>>,
}

fn write_world(running: &Running) -> WriteWorld {
    let http = Http::new(&running.base);
    let plan = write_plan();
    let n = plan.len();
    let create =
        |r: String, ty: &str, set: Value| json!({"target": {"ref": r}, "op": {"op": "create", "type": ty, "set": set}});
    let link = |from: String, role: &str, to: String| json!({"target": {"ref": from}, "op": {"op": "link", "role": role, "to": {"ref": to}}});

    let mut national = vec![
        create("operator".into(), "organisation", json!({"name": "Nationaloperator"})),
        create("operator2".into(), "organisation", json!({"name": "Nationaloperator Two"})),
        create("far".into(), "care_setting", json!({"name": "Nationalfar"})),
        create("src".into(), "contact", json!({"contact_date": "2024-06-01"})),
    ];
    for k in 0..n {
        national.push(create(format!("n{k}"), "care_setting", json!({"name": format!("Nationalsetting {k}")})));
        national.push(link(format!("n{k}"), "operated_by", "operator".into()));
        national.push(create(format!("sn{k}"), "care_setting", json!({"name": format!("Nationalsurvivor {k}")})));
    }
    let national = http.commit(Role::Admin, json!(national));
    let national_seq = national["seq"].as_u64().unwrap();

    let council_records = |code: &str, prefix: &str, marker: &str| {
        let mut changes = vec![create("src".into(), "contact", json!({"contact_date": "2024-06-02"}))];
        let person = |r: String, set: Value, client: String| {
            json!({"target": {"ref": r}, "op": {"op": "create", "type": "person", "set": set,
                "identifiers": [{"system": format!("council:{code}:client"), "value": client}]}})
        };
        for k in 0..n {
            changes.push(person(
                format!("p{k}"),
                json!({"family_name": marker, "given_name": format!("{}given{k}", &marker[..3])}),
                format!("{prefix}-W-{k}"),
            ));
            changes.push(create(format!("pa{k}"), "address", json!({"line1": format!("{k} {}street", &marker[..3])})));
            changes.push(link(format!("p{k}"), "resides_at", format!("pa{k}")));
            changes.push(person(format!("s{k}"), json!({"family_name": marker}), format!("{prefix}-S-{k}")));
            if code == "AAA" {
                changes.push(person(
                    format!("o{k}"),
                    json!({"family_name": "Optoutmarker", "opted_out": true}),
                    format!("{prefix}-O-{k}"),
                ));
                changes.push(create(format!("oa{k}"), "address", json!({"line1": format!("{k} Optstreet")})));
                changes.push(link(format!("o{k}"), "resides_at", format!("oa{k}")));
            }
        }
        changes
    };
    let aaa = http.commit(Role::Aaa, json!(council_records("AAA", "A", "Aaamarker")));
    let bbb = http.commit(Role::Bbb, json!(council_records("BBB", "B", "Bbbmarker")));
    let (aaa_seq, bbb_seq) = (aaa["seq"].as_u64().unwrap(), bbb["seq"].as_u64().unwrap());

    let target = |label: &str, committed: &Value, r: String, owner: Owner, kind: &'static str, seq: u64| Target {
        label: label.to_owned(),
        id: reference(committed, &r),
        owner,
        kind,
        created_seq: Some(seq),
        opted_out: false,
        family_name: None,
        nhs: None,
        identifier: None,
    };
    let operator = reference(&national, "operator");
    let sets: Vec<Vec<WriteTarget>> = (0..n)
        .map(|k| {
            let write_target = |target: Target, own_link: (&'static str, String), survivor: String| WriteTarget {
                target,
                own_link,
                survivor,
            };
            vec![
                write_target(
                    target("AAA's person", &aaa, format!("p{k}"), Owner::Council("AAA"), "person", aaa_seq),
                    ("resides_at", reference(&aaa, &format!("pa{k}"))),
                    reference(&aaa, &format!("s{k}")),
                ),
                write_target(
                    target("BBB's person", &bbb, format!("p{k}"), Owner::Council("BBB"), "person", bbb_seq),
                    ("resides_at", reference(&bbb, &format!("pa{k}"))),
                    reference(&bbb, &format!("s{k}")),
                ),
                write_target(
                    target(
                        "the national care setting",
                        &national,
                        format!("n{k}"),
                        Owner::National,
                        "location",
                        national_seq,
                    ),
                    ("operated_by", operator.clone()),
                    reference(&national, &format!("sn{k}")),
                ),
                write_target(
                    Target {
                        opted_out: true,
                        ..target(
                            "AAA's opted-out person",
                            &aaa,
                            format!("o{k}"),
                            Owner::Council("AAA"),
                            "person",
                            aaa_seq,
                        )
                    },
                    ("resides_at", reference(&aaa, &format!("oa{k}"))),
                    reference(&aaa, &format!("s{k}")),
                ),
            ]
        })
        .collect();

    // An unmerge needs a merged record: the attempts at it find theirs merged nationally.
    let merges: Vec<Value> = plan
        .iter()
        .zip(&sets)
        .filter(|((_, op, _), _)| *op == Op::Unmerge)
        .flat_map(|(_, set)| {
            set.iter().map(|wt| {
                json!({"target": {"entity": wt.target.id}, "op": {"op": "merge", "into": {"entity": wt.survivor}}})
            })
        })
        .collect();
    http.commit(Role::Admin, json!(merges));

    let refs = |committed: &Value| -> Vec<String> {
        committed["refs"].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    let mut values = BTreeMap::new();
    let mut aaa_values: Vec<String> = [
        "Aaamarker",
        "Aaagiven",
        "Aaastreet",
        "Optoutmarker",
        "Optstreet",
        "A-W-",
        "A-S-",
        "A-O-",
        r#""council":"AAA""#,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    aaa_values.extend(refs(&aaa));
    let mut bbb_values: Vec<String> = ["Bbbmarker", "Bbbgiven", "Bbbstreet", "B-W-", "B-S-", r#""council":"BBB""#]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    bbb_values.extend(refs(&bbb));
    values.insert("AAA", aaa_values);
    values.insert("BBB", bbb_values);

    let helpers = Helpers {
        far_for_people: reference(&national, "far"),
        far_for_settings: reference(&national, "operator2"),
        sources: ROLES
            .iter()
            .map(|&role| {
                let source = match role {
                    Role::Aaa => reference(&aaa, "src"),
                    Role::Bbb => reference(&bbb, "src"),
                    _ => reference(&national, "src"),
                };
                (role, source)
            })
            .collect(),
    };
    WriteWorld { http, plan, sets, helpers, values }
}

/// The changes of `op` by `role` on `wt` (`None` for a create); `n` makes each value new,
/// so no attempt is a repeat that changes nothing.
fn write_changes(op: Op, role: Role, wt: Option<&WriteTarget>, helpers: &Helpers, n: usize) -> Value {
    let Some(wt) = wt else {
        return json!([{"target": {"ref": "new"}, "op": {"op": "create", "type": "person",
            "set": {"family_name": format!("Newmarker{n}")}}}]);
    };
    let target = json!({"entity": wt.target.id});
    let person = wt.target.kind == "person";
    let change = |op: Value| json!([{"target": target, "op": op}]);
    match op {
        Op::Create => unreachable!("a create names no record"),
        Op::Update | Op::UpdateAtVersion => {
            let set = if person {
                json!({"given_name": format!("Changed{n}")})
            } else {
                json!({"name": format!("Changed {n}")})
            };
            let mut changes = change(json!({"op": "update", "set": set}));
            if op == Op::UpdateAtVersion {
                changes[0]["expected_version"] = json!(999);
            }
            changes
        }
        Op::LinkFrom => {
            let (link_role, far) = if person {
                ("resides_at", &helpers.far_for_people)
            } else {
                ("operated_by", &helpers.far_for_settings)
            };
            change(json!({"op": "link", "role": link_role, "to": {"entity": far}}))
        }
        Op::LinkTo => {
            let link_role = if person { "subject" } else { "occurred_at" };
            json!([{"target": {"entity": helpers.sources[&role]},
                "op": {"op": "link", "role": link_role, "to": target}}])
        }
        Op::Unlink => change(json!({"op": "unlink", "role": wt.own_link.0, "to": {"entity": wt.own_link.1}})),
        Op::Retract => change(json!({"op": "retract", "reason": "entered in error"})),
        Op::Merge => change(json!({"op": "merge", "into": {"entity": wt.survivor}})),
        Op::Unmerge => change(json!({"op": "unmerge"})),
        Op::Erase => change(json!({"op": "erase", "reason": "erasure request 17"})),
        Op::ForeignIdentifier => {
            let system = format!("council:{}:client", role.other_council().unwrap_or("BBB"));
            change(json!({"op": "update", "add_identifiers": [{"system": system, "value": format!("F-{n}")}]}))
        }
    }
}

impl WriteWorld {
    /// Sends one write; answers its status (GraphQL's by its error code) and text.
    fn send(&self, route: WriteRoute, role: Role, id: &str, changes: &Value) -> (u16, String) {
        match route {
            WriteRoute::Transactions => {
                let answer = self.http.post(role, "/v1/transactions", &json!({ "changes": changes }));
                (answer.status, answer.text)
            }
            WriteRoute::Mutation => {
                let answer = self.http.graphql(
                    role,
                    "mutation($input: JSON!) { transaction(input: $input) }",
                    json!({"input": {"changes": changes}}),
                );
                (answer.graphql_status("transaction", 201), answer.text)
            }
            WriteRoute::EraseEndpoint => {
                let answer =
                    self.http.post(role, &format!("/v1/entities/{id}/erase"), &json!({"reason": "erasure request 17"}));
                (answer.status, answer.text)
            }
        }
    }
}

/// Where the write suite is: the head the journal must still be at after a refusal.
struct Progress {
    head: u64,
    n: usize,
}

impl WriteWorld {
    /// One attempt at one record (or a create): the rule's status; after a refusal, the
    /// journal's head and the record's history as they were.
    fn attempt(
        &self,
        (route, op, role): (WriteRoute, Op, Role),
        t: Option<&Target>,
        changes: &Value,
        progress: &mut Progress,
        failures: &mut Vec<String>,
    ) -> (u16, String) {
        let want = expected_write(role, op, t);
        let existing = t.filter(|t| t.created_seq.is_some());
        let before = existing.filter(|_| want >= 400).map(|t| self.http.history(&t.id));
        let id = t.map_or("", |t| t.id.as_str());
        let (status, text) = self.send(route, role, id, changes);
        let context = format!(
            "{route:?} {op:?} by {} on {}",
            role.name(),
            t.map_or_else(|| "a new record".to_owned(), |t| t.label.clone())
        );
        if status != want {
            failures.push(format!("{context}: answered {status}, the rule says {want}: {text}"));
        }
        let head = self.http.head();
        if status >= 400 {
            if head != progress.head {
                failures.push(format!(
                    "{context}: refused ({status}) but the journal moved from {} to {head}",
                    progress.head
                ));
            }
            if let (Some(before), Some(t)) = (before, existing) {
                let after = self.http.history(&t.id);
                if after != before {
                    failures
                        .push(format!("{context}: refused ({status}) but its history changed:\n  {before}\n  {after}"));
                }
            }
        }
        progress.head = head;
        (status, text)
    }
}

#[test]
fn every_write_by_every_role_is_answered_by_the_rule_and_a_refusal_changes_nothing() {
    let running = start(false);
    let w = write_world(&running);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut progress = Progress { head: w.http.head(), n: 0 };
    let mut cases = 0;
    for (i, (&attempt, set)) in w.plan.iter().zip(&w.sets).enumerate() {
        let (route, op, role) = attempt;
        progress.n += 1;
        if op == Op::Create {
            let changes = write_changes(op, role, None, &w.helpers, progress.n);
            w.attempt(attempt, None, &changes, &mut progress, &mut failures);
            cases += 1;
            continue;
        }
        for (j, wt) in set.iter().enumerate() {
            progress.n += 1;
            let changes = write_changes(op, role, Some(wt), &w.helpers, progress.n);
            let ours = w.attempt(attempt, Some(&wt.target), &changes, &mut progress, &mut failures);
            // The same request naming nothing instead.
            let twin = wt.target.twin(&format!("01JNOSUCHRECORD{i:05}{j:06}"));
            let twin_changes: Value =
                serde_json::from_str(&changes.to_string().replace(&wt.target.id, &twin.id)).unwrap();
            let nothing = w.attempt(attempt, Some(&twin), &twin_changes, &mut progress, &mut failures);
            cases += 2;
            let refused = |t: &Target| expected_write(role, op, Some(t)) == 403;
            if role.council().is_some() && refused(&wt.target) && refused(&twin) {
                let (ours_masked, nothing_masked) =
                    (ours.1.replace(&wt.target.id, "ID"), nothing.1.replace(&twin.id, "ID"));
                if ours_masked != nothing_masked {
                    failures.push(format!(
                        "{route:?} {op:?} by {}: {} can be told from nothing:\n  {} {ours_masked}\n  {} {nothing_masked}",
                        role.name(),
                        wt.target.label,
                        ours.0,
                        nothing.0
                    ));
                }
            }
        }
    }
    let write_time = started.elapsed();

    // After every decision made about them (merges into a duplicate of their own, links,
    // refusals), each council's records still read as its own alone.
    let mut reads = 0;
    for role in [Role::Aaa, Role::Bbb] {
        let own = role.council().unwrap();
        let forbidden = &w.values[role.other_council().unwrap()];
        for ((_, op, _), set) in w.plan.iter().zip(&w.sets) {
            if !matches!(op, Op::Merge | Op::Unmerge | Op::LinkFrom | Op::LinkTo) {
                continue;
            }
            for wt in set.iter().filter(|wt| wt.target.owner == Owner::Council(own)) {
                for what in [What::Entity { as_of: None }, What::Links { direction: None, as_of: None }, What::History]
                {
                    let path = match what {
                        What::Entity { .. } => format!("/v1/entities/{}", wt.target.id),
                        What::Links { .. } => format!("/v1/entities/{}/links", wt.target.id),
                        _ => format!("/v1/entities/{}/history", wt.target.id),
                    };
                    let answer = w.http.get(role, &path);
                    reads += 1;
                    let want = expected_read(role, Route { api: Api::Rest, what }, Some(&wt.target), &[]);
                    let context = format!("after {op:?}, {path} as {} ({})", role.name(), wt.target.label);
                    if answer.status != want {
                        failures.push(format!(
                            "{context}: answered {}, the rule says {want}: {}",
                            answer.status, answer.text
                        ));
                    }
                    let leaked = occurring(forbidden, &answer.text);
                    if !leaked.is_empty() {
                        failures.push(format!("{context}: the answer carries {leaked:?}: {}", answer.text));
                    }
                }
            }
        }
    }
    println!(
        "{cases} write cases ({} attempts: 3 routes, {} operations, {} roles, 4 records and their twins) in {write_time:.1?}; {reads} council reads after them",
        w.plan.len(),
        OPS.len(),
        ROLES.len()
    );
    assert!(failures.is_empty(), "{} writes break the access model:\n{}", failures.len(), failures.join("\n"));
}

// ------------------------------------------------------------------------- streams

/// Opens the change feed's stream after seq 0 as `role` and reads it until the transaction
/// `last` has arrived (each read waits at most 10 s, the whole at most 30 s): the status and
/// each event's id and data.
fn stream_events(addr: &str, role: Role, last: u64) -> (u16, Vec<(u64, String)>) {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let authorization = role.token().map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        socket,
        "GET /v1/journal/stream?after=0 HTTP/1.1\r\nHost: {addr}\r\n{authorization}Accept: text/event-stream\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(socket);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
    }
    let mut events = Vec::new();
    if status != 200 {
        return (status, events);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut id = None;
    while events.last().is_none_or(|(seq, _)| *seq < last) {
        assert!(Instant::now() < deadline, "the stream as {} did not reach seq {last}: {events:?}", role.name());
        line.clear();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("nothing on the stream as {} for 10 s after {events:?}: {e}", role.name()));
        if n == 0 {
            break;
        }
        if let Some(seq) = line.trim().strip_prefix("id: ") {
            id = seq.parse().ok();
        } else if let Some(data) = line.trim_end().strip_prefix("data: ") {
            events.push((id.take().unwrap_or_default(), data.to_owned()));
        }
    }
    (status, events)
}

type Socket = tungstenite::WebSocket<TcpStream>;

/// The next protocol message (each read waits at most 10 s).
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

/// Subscribes to `transactions(after: 0)` over `graphql-transport-ws` as `role` and reads
/// until the transaction `last` has arrived: the status the answer stands for (the upgrade's
/// HTTP status, or the error's code) and each transaction's seq and text.
fn subscription(addr: &str, role: Role, last: u64) -> (u16, Vec<(u64, String)>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("ws://{addr}/graphql").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    if let Some(token) = role.token() {
        request.headers_mut().insert("Authorization", format!("Bearer {token}").parse().unwrap());
    }
    let mut socket = match tungstenite::client(request, stream) {
        Ok((socket, _)) => socket,
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            return (response.status().as_u16(), Vec::new())
        }
        Err(e) => panic!("the upgrade as {} failed: {e}", role.name()),
    };
    let send = |socket: &mut Socket, message: Value| socket.send(Message::text(message.to_string())).unwrap();
    send(&mut socket, json!({"type": "connection_init", "payload": {}}));
    assert_eq!(receive(&mut socket)["type"], "connection_ack");
    send(
        &mut socket,
        json!({"id": "feed", "type": "subscribe", "payload": {"query":
            "subscription { transactions(after: 0) { seq actor role source reason changes entities { id attributes identifiers { system value } } } }"}}),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut transactions = Vec::new();
    while transactions.last().is_none_or(|(seq, _)| *seq < last) {
        assert!(Instant::now() < deadline, "the subscription as {} did not reach seq {last}", role.name());
        let message = receive(&mut socket);
        let errors = match message["type"].as_str() {
            Some("error") => Some(&message["payload"]),
            Some("next") => message["payload"].get("errors"),
            _ => panic!("unexpected message as {}: {message}", role.name()),
        };
        if let Some(errors) = errors {
            let _ = socket.close(None);
            return (errors[0]["extensions"]["code"].as_str().map_or(500, status_of), transactions);
        }
        let tx = &message["payload"]["data"]["transactions"];
        transactions.push((tx["seq"].as_u64().unwrap(), message.to_string()));
    }
    let _ = socket.close(None);
    (200, transactions)
}

#[test]
fn the_change_feed_streams_carry_only_the_councils_own_submissions() {
    let running = start(false);
    let w = read_world(&running);
    let mut failures = Vec::new();
    let feed = |api| Route { api, what: What::Journal };
    for role in ROLES {
        // Councils read the streams to their last submission; roles refused are asked only
        // to open them (the others' feeds are judged by the read suite's journal cases).
        let last = match role.council() {
            Some(own) => *w.council_seqs[own].last().unwrap(),
            None if expected_read(role, feed(Api::Rest), None, &w.targets) != 200 => 0,
            None => continue,
        };
        for (api, (status, events)) in [
            (Api::Rest, stream_events(running.addr(), role, last)),
            (Api::Graphql, subscription(running.addr(), role, last)),
        ] {
            let want = expected_read(role, feed(api), None, &w.targets);
            if status != want {
                failures.push(format!("{api:?} stream as {}: answered {status}, the rule says {want}", role.name()));
            }
            let Some(own) = role.council() else { continue };
            let seqs: Vec<u64> = events.iter().map(|(seq, _)| *seq).collect();
            if seqs != w.council_seqs[own] {
                failures.push(format!(
                    "{api:?} stream as {}: transactions {seqs:?}, wanted {:?}",
                    role.name(),
                    w.council_seqs[own]
                ));
            }
            for (seq, data) in &events {
                let leaked = occurring(w.forbidden(role), data);
                if !leaked.is_empty() {
                    failures.push(format!("{api:?} stream as {}: seq {seq} carries {leaked:?}: {data}", role.name()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------------------------------------------- ingest

fn example(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(path)).unwrap()
}

/// The fields of RFC 4180 CSV text (quoted fields may hold commas, quotes and newlines).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// The files submitted in each format, as `council` would send them (its code where the
/// examples carry council 305's).
fn submissions(council: &str) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let csv = example("ingest/safeguarding-identifiable.csv").replace("\n305,", &format!("\n{council},"));
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (row, record) in csv_records(&csv).iter().enumerate() {
        for (col, value) in record.iter().enumerate() {
            sheet.write_string(row as u32, col as u16, value).unwrap();
        }
    }
    vec![
        ("csv", "safeguarding-identifiable.csv", csv.clone().into_bytes()),
        (
            "pipe",
            "safeguarding-poc.txt",
            example("ingest/safeguarding-poc.txt").replace("\n305|", &format!("\n{council}|")).into_bytes(),
        ),
        ("xlsx", "safeguarding-identifiable.xlsx", book.save_to_buffer().unwrap()),
        (
            "xml",
            "safeguarding.xml",
            example("ingest/safeguarding.xml")
                .replace("<local_authority_identifier>305<", &format!("<local_authority_identifier>{council}<"))
                .into_bytes(),
        ),
        (
            "xml",
            "pole-submission.xml",
            example("ingest/pole-submission.xml").replace("council:305:", &format!("council:{council}:")).into_bytes(),
        ),
        ("hl7", "adt-batch.hl7", example("hl7/adt-batch.hl7").into_bytes()),
    ]
}

fn adt(trigger: &str, control_id: &str, nhs: &str, name: &str, facility: &str) -> String {
    format!(
        "MSH|^~\\&|PAS|{facility}|POLE|LEEDS|20240715093000||ADT^{trigger}|{control_id}|P|2.4\r\
         EVN|{trigger}|20240715093000\r\
         PID|1||{nhs}^^^NHS^NH||{name}||19400312|F|||3 Feed Lane^^Leeds^^LS1 5HD^^H\r"
    )
}

#[test]
fn ingest_over_http_is_the_submitting_councils_own_in_every_format() {
    let running = start(false);
    let http = Http::new(&running.base);
    let mut failures = Vec::new();

    // An HL7 message AAA sends about a person BBB knows, by BBB's NHS number: AAA's own
    // record of them is created, BBB's is untouched.
    let nhs = nhs_number(943_476_800);
    let bbb = http.commit(
        Role::Bbb,
        json!([{"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
            "set": {"family_name": "Bbbmarker"}, "identifiers": [{"system": "nhs-number", "value": nhs},
                {"system": "council:BBB:client", "value": "B-CLIENT-9"}]}}]),
    );
    let bbb_record = reference(&bbb, "p");
    let bbb_history = http.history(&bbb_record);
    let report =
        http.post_bytes(Role::Aaa, "/v1/ingest/hl7", adt("A28", "CONF-1", &nhs, "Aaamarker^Ann", "RR8").into_bytes());
    assert_eq!((report.status, report.body["accepted"].as_u64()), (200, Some(1)), "{}", report.text);
    let holders = http.get(Role::Admin, &format!("/v1/identifiers/nhs-number/{nhs}"));
    let holders: Vec<String> = ids_of(&holders.body["items"]).into_iter().collect();
    assert_eq!(holders.len(), 2, "{holders:?}");
    let aaa_record = holders.iter().find(|id| **id != bbb_record).unwrap().clone();
    let created = http.get(Role::Admin, &format!("/v1/entities/{aaa_record}"));
    assert_eq!(created.body["created"]["council"], "AAA", "{}", created.text);
    let seen_by_aaa = http.get(Role::Aaa, &format!("/v1/entities/{aaa_record}"));
    assert_eq!(seen_by_aaa.status, 200, "{}", seen_by_aaa.text);
    assert!(
        !seen_by_aaa.text.contains("Bbbmarker") && !seen_by_aaa.text.contains("B-CLIENT-9"),
        "{}",
        seen_by_aaa.text
    );

    // Every format, every role, for each council. An administrator submitting for a council
    // shares its namespace of HL7 control ids, so submits last: the council's own file is
    // judged fresh, A40 included.
    let mut roles = ROLES;
    roles.sort_by_key(|role| *role == Role::Admin);
    let mut cases = 0;
    for council in ["AAA", "BBB"] {
        for (format, file, body) in submissions(council) {
            for role in roles {
                let answer = http.post_bytes(
                    role,
                    &format!("/v1/ingest/{format}?council={council}&file_name={file}"),
                    body.clone(),
                );
                cases += 1;
                let want = expected_ingest(role, council);
                let context = format!("{file} ({format}) for {council} by {}", role.name());
                if answer.status != want {
                    failures
                        .push(format!("{context}: answered {}, the rule says {want}: {}", answer.status, answer.text));
                    continue;
                }
                if want != 200 {
                    continue;
                }
                if answer.body["council"] != council || answer.body["accepted"].as_u64().unwrap_or(0) == 0 {
                    failures.push(format!("{context}: not accepted as {council}'s: {}", answer.text));
                }
                // An A40 asks for a merge, which a council never makes.
                if format == "hl7" && role.council().is_some() {
                    let a40 = answer.body["rows"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|row| row.to_string().contains("RR8-000108"));
                    let rejected = a40.is_some_and(|row| {
                        row["outcome"] == "rejected" && row.to_string().contains("decided nationally")
                    });
                    if !rejected {
                        failures.push(format!("{context}: the A40 was not rejected: {}", answer.text));
                    }
                }
            }
        }
    }
    // Nothing AAA submitted changed BBB's record; each council's feed is its own submissions.
    assert_eq!(http.history(&bbb_record), bbb_history, "BBB's record changed");
    for role in [Role::Aaa, Role::Bbb] {
        let feed = http.get_with(role, "/v1/journal", &[("limit", "1000")]);
        for tx in feed.body["transactions"].as_array().unwrap() {
            if tx["source"]["council"] != role.council().unwrap() {
                failures.push(format!("{}'s feed holds another's transaction: {tx}", role.name()));
            }
        }
    }
    println!("{cases} ingest cases (2 councils x 6 files in 5 formats x {} roles)", ROLES.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ------------------------------------------------------------------------- MLLP

/// Sends framed messages and reads one ACK per message (each read waits at most 10 s).
fn mllp_exchange(addr: &str, messages: &[String]) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for message in messages {
        let mut frame = vec![0x0b];
        frame.extend_from_slice(message.as_bytes());
        frame.extend_from_slice(b"\x1c\r");
        stream.write_all(&frame).unwrap();
    }
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while buffer.windows(2).filter(|w| w == b"\x1c\r").count() < messages.len() {
        let n = stream.read(&mut chunk).expect("an ACK within 10 s");
        assert!(n > 0, "connection closed after {:?}", String::from_utf8_lossy(&buffer));
        buffer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buffer)
        .unwrap()
        .split("\x1c\r")
        .filter(|f| !f.is_empty())
        .map(|f| f.trim_start_matches('\x0b').to_owned())
        .collect()
}

#[test]
fn a_facility_feed_over_mllp_creates_its_own_record_and_changes_no_councils() {
    let running = start(true);
    let http = Http::new(&running.base);
    let nhs = nhs_number(943_476_900);
    let aaa = http.commit(
        Role::Aaa,
        json!([{"target": {"ref": "p"}, "op": {"op": "create", "type": "person",
            "set": {"family_name": "Aaamarker"}, "identifiers": [{"system": "nhs-number", "value": nhs},
                {"system": "council:AAA:client", "value": "A-CLIENT-1"}]}}]),
    );
    let aaa_record = reference(&aaa, "p");
    let aaa_history = http.history(&aaa_record);
    let messages: Vec<String> = [("A28", "FEED-1"), ("A08", "FEED-2"), ("A31", "FEED-3")]
        .iter()
        .map(|(trigger, control)| adt(trigger, control, &nhs, "Feedmarker^Fay", "RR8"))
        .collect();
    let acks = mllp_exchange(running.mllp.as_deref().unwrap(), &messages);
    for (ack, (_, control)) in acks.iter().zip([("A28", "FEED-1"), ("A08", "FEED-2"), ("A31", "FEED-3")]) {
        assert!(ack.contains(&format!("\rMSA|AA|{control}")), "{ack:?}");
    }
    assert_eq!(http.history(&aaa_record), aaa_history, "a facility's message changed AAA's record");
    let aaa_now = http.get(Role::Admin, &format!("/v1/entities/{aaa_record}"));
    assert!(!aaa_now.text.contains("Feedmarker"), "{}", aaa_now.text);
    let holders: Vec<String> =
        ids_of(&http.get(Role::Admin, &format!("/v1/identifiers/nhs-number/{nhs}")).body["items"])
            .into_iter()
            .collect();
    assert_eq!(holders.len(), 2, "{holders:?}");
    let feed_record = holders.iter().find(|id| **id != aaa_record).unwrap();
    let created = http.get(Role::Admin, &format!("/v1/entities/{feed_record}"));
    assert_eq!(created.body["created"]["council"], "RR8", "{}", created.text);
    assert_eq!(created.body["attributes"]["family_name"], "Feedmarker", "{}", created.text);
    // AAA neither reads the facility's record nor sees its messages in its feed.
    let refused = http.get(Role::Aaa, &format!("/v1/entities/{feed_record}"));
    assert_eq!(refused.status, 403, "{}", refused.text);
    let feed = http.get(Role::Aaa, "/v1/journal");
    assert!(!feed.text.contains("Feedmarker") && !feed.text.contains(r#""council":"RR8""#), "{}", feed.text);
}
