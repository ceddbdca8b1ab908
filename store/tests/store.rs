#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests of the store through its public API: the commit path, reads and
//! indexes, time travel, replay, durability, verification and erasure.

mod fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::sync::{Arc, Barrier};

use fixtures::*;
use pole_model::{ChangeOp, Delta, FieldOp, Kind, SearchKey, Status};
use pole_store::{
    verify, AsOf, ChangeRequest, Direction, OpRequest, ReadAt, Rejection, Store, StoreError, FORMAT_VERSION,
};
use serde_json::{json, Value};

// ------------------------------------------------------------------ commit path

#[test]
fn commits_get_a_gap_free_sequence_and_strictly_increasing_recorded_times() {
    let t = TempStore::memory();
    let s = t.store();
    assert_eq!(s.head().seq, 0);
    let mut answers = Vec::new();
    for i in 0..6 {
        answers.push(must_commit(s, tx(vec![person("p", &format!("Family{i}"), "Given")])));
    }
    let seqs: Vec<u64> = answers.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    for pair in answers.windows(2) {
        assert!(pair[0].recorded_at < pair[1].recorded_at, "recorded time must strictly increase");
    }
    assert_eq!(s.head().seq, 6);
    assert_eq!(s.head().hash, answers[5].hash);
    for c in &answers {
        let meta = s.transaction_meta(c.seq).unwrap().expect("facts of every committed transaction");
        assert_eq!(meta.seq, c.seq);
        assert_eq!(meta.recorded_at, c.recorded_at);
        assert_eq!(meta.hash, c.hash);
        assert_eq!(meta.actor, "tester");
        assert_eq!(meta.changes, 1);
        assert!(!c.replayed);
    }
    // The change feed returns them in order, after any point.
    let feed = s.transactions(0, 100).unwrap();
    assert_eq!(feed.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    let feed = s.transactions(4, 100).unwrap();
    assert_eq!(feed.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![5, 6]);
    let feed = s.transactions(1, 2).unwrap();
    assert_eq!(feed.iter().map(|t| t.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert!(s.transactions(6, 10).unwrap().is_empty());
    let stats = s.stats().unwrap();
    assert_eq!((stats.transactions, stats.changes, stats.entities, stats.head_seq), (6, 6, 6, 6));
}

#[test]
fn concurrent_commits_are_sequenced_without_gaps_and_replay_to_the_same_state() {
    let t = TempStore::memory();
    let store = t.store().clone();
    let threads = 6;
    let per_thread = 15;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|n| {
            let store = store.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut seqs = Vec::new();
                for i in 0..per_thread {
                    let c = must_commit(
                        &store,
                        tx(vec![
                            person("p", &format!("T{n}x{i}"), "Given")
                                .with_identifier("council:305:client", format!("{n}-{i}")),
                            address("a", &format!("{i} Thread Road"), "LS1 4AP"),
                            ChangeRequest::link(rf("p"), "resides_at", rf("a")),
                        ]),
                    );
                    seqs.push(c.seq);
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        let seqs = handle.join().unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one caller's commits are answered in order");
        all.extend(seqs);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(threads * per_thread) as u64).collect();
    assert_eq!(all, expected, "every transaction has its own sequence, with no gap");
    let mut last = None;
    for seq in 1..=(threads * per_thread) as u64 {
        let meta = store.transaction_meta(seq).unwrap().unwrap();
        if let Some(prev) = last {
            assert!(meta.recorded_at > prev, "recorded time strictly increases with the sequence");
        }
        last = Some(meta.recorded_at);
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.entities, (threads * per_thread * 2) as u64);
    let report = verify(t.path(), |_| {}).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.transactions, (threads * per_thread) as u64);
    let digest = store.digest().unwrap();
    assert_eq!(store.replay_digest(|_| {}).unwrap(), digest);
    assert_eq!(store.rebuild(|_| {}).unwrap(), digest);
}

/// Many transactions in flight at once: the writer prepares each group while the one
/// before it is still being applied to the projections, so every check that reads state
/// (expected versions, late changes refolding history, links, idempotency keys) must see
/// the earlier groups through their overlays. And an answer never names a sequence that
/// readers cannot see yet.
#[test]
fn transactions_in_flight_are_judged_against_every_group_before_them() {
    let t = TempStore::on_disk();
    let s = t.store();
    let p = must_create(s, person("p", "Flight", "Given"));
    let a = must_create(s, address("a", "1 First Street", "LS1 4AP"));
    let b = must_create(s, address("b", "2 Second Street", "LS1 4AP"));
    let n = 600;
    let keyed = |i: usize| {
        let mut request = tx(vec![contact("c", "2024-03-01")]);
        request.idempotency_key = Some(format!("flight-{}", i / 2));
        request
    };
    let mut in_flight = Vec::new();
    for i in 0..n {
        // Two changes to the person a transaction, each expecting the version before it.
        let version = 1 + 2 * i as u64;
        let mut changes = vec![
            ChangeRequest::update(ent(&p)).with("given_name", format!("G{i}")).expecting(version),
            if i % 2 == 0 {
                ChangeRequest::link(ent(&p), "resides_at", ent(&a))
            } else {
                unlink(ent(&p), "resides_at", ent(&a))
            }
            .expecting(version + 1),
        ];
        if i % 10 == 0 {
            // Dated before the address's creation: judged against, and refolding, its history.
            let valid = ts("2020-01-01T00:00:00Z").plus_days(i as i64);
            changes.push(ChangeRequest::update(ent(&b)).with("line1", format!("{i} Late Street")).valid_at(valid));
        }
        in_flight.push((i, s.submit(tx(changes)).unwrap()));
        if i % 50 == 0 {
            // The same keyed request twice in a row: the second is answered from the first.
            in_flight.push((usize::MAX, s.submit(keyed(i)).unwrap()));
            in_flight.push((usize::MAX - 1, s.submit(keyed(i)).unwrap()));
        }
    }
    let mut last_seq = 3;
    let mut first_of_key = None;
    for (i, pending) in in_flight {
        let committed = match pending.wait().unwrap() {
            Ok(committed) => committed,
            Err(rejection) => panic!("transaction {i} was refused: {rejection}"),
        };
        assert!(s.head().seq >= committed.seq, "answered seq {} before readers could see it", committed.seq);
        match i {
            usize::MAX => {
                assert!(!committed.replayed);
                first_of_key = Some(committed.clone());
            }
            i if i == usize::MAX - 1 => {
                let first = first_of_key.take().unwrap();
                assert!(committed.replayed, "a repeated key in flight is a replay");
                assert_eq!((committed.seq, &committed.refs), (first.seq, &first.refs));
                continue;
            }
            i => {
                let state = s.entity(&p, ReadAt::as_of_seq(committed.seq)).unwrap().unwrap();
                assert_eq!(state.version, 3 + 2 * i as u64);
                assert_eq!(attr_str(&state, "given_name"), Some(format!("G{i}").as_str()));
            }
        }
        assert_eq!(committed.seq, last_seq + 1, "gap-free, in submission order");
        last_seq = committed.seq;
    }
    let person = must_entity(s, &p);
    assert_eq!(person.version, 1 + 2 * n as u64);
    assert!(person.link("resides_at", &a).is_none(), "the last transaction unlinked");
    let address = must_entity(s, &b);
    assert_eq!(attr_str(&address, "line1"), Some("2 Second Street"), "late changes never override the latest");
    assert_eq!(address.version, 1 + n as u64 / 10);
    let at = ts("2020-01-01T00:00:00Z").plus_days(595);
    let then = s.entity(&b, ReadAt { as_of: None, valid_at: Some(at) }).unwrap().unwrap();
    assert_eq!(attr_str(&then, "line1"), Some("590 Late Street"));
    let digest = s.digest().unwrap();
    assert_eq!(s.replay_digest(|_| {}).unwrap(), digest);
    assert_eq!(s.rebuild(|_| {}).unwrap(), digest);
}

#[test]
fn a_create_reads_back_with_opened_values_and_a_store_assigned_id() {
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(
        s,
        tx(vec![person("p", "  Ash ", "Ann")
            .with("gender", "2")
            .with("birth_date", "1950-04-05")
            .with("opted_out", false)
            .with_identifier("nhs-number", "943 476 5919")
            .with_identifier("council:305:client", "6789")]),
    );
    assert_eq!(c.changes, 1);
    let id = c.refs["p"].clone();
    let state = must_entity(s, &id);
    assert_eq!(state.id, id);
    assert_eq!(state.kind, Kind::Person);
    assert_eq!(state.entity_type, "person");
    assert_eq!(state.version, 1);
    assert_eq!(state.status, Status::Active);
    assert_eq!(attr_str(&state, "family_name"), Some("Ash"), "text is trimmed");
    assert_eq!(attr_str(&state, "given_name"), Some("Ann"));
    assert_eq!(attr_str(&state, "gender"), Some("2"));
    assert_eq!(attr_str(&state, "birth_date"), Some("1950-04-05"));
    assert_eq!(attr(&state, "opted_out"), Some(&json!(false)));
    let idents: BTreeSet<(String, String)> =
        state.identifiers.iter().map(|i| (i.identifier.system.clone(), i.identifier.value.clone())).collect();
    let expected: BTreeSet<(String, String)> = [("council:305:client", "6789"), ("nhs-number", "9434765919")]
        .iter()
        .map(|(a, b)| ((*a).into(), (*b).into()))
        .collect();
    assert_eq!(idents, expected, "the NHS number is stored normalised");
    let prov = &state.attributes["family_name"].provenance;
    assert_eq!(prov.seq, 1);
    assert_eq!(prov.council.as_deref(), Some("305"));
    assert!(s.entity(&pole_model::EntityId::new("NOSUCHENTITY").unwrap(), ReadAt::NOW).unwrap().is_none());
}

#[test]
fn one_transaction_can_create_and_link_entities_by_ref() {
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(
        s,
        tx(vec![
            person("p", "Ash", "Ann"),
            address("a", "1 High Street", "LS1 4AP"),
            contact("c", "2024-03-01"),
            ChangeRequest::link(rf("p"), "resides_at", rf("a")),
            ChangeRequest::link(rf("c"), "subject", rf("p")),
        ]),
    );
    assert_eq!(c.changes, 5);
    assert_eq!(c.refs.len(), 3);
    let (p, a, cid) = (c.refs["p"].clone(), c.refs["a"].clone(), c.refs["c"].clone());
    assert_eq!(must_entity(s, &p).version, 2);
    assert_eq!(must_entity(s, &p).links.len(), 1);
    let into_p = s.links(&p, Some(Direction::In), None, ReadAt::NOW).unwrap();
    assert_eq!(into_p.len(), 1);
    assert_eq!(into_p[0].other, cid);
    let into_a = s.links(&a, Some(Direction::In), None, ReadAt::NOW).unwrap();
    assert_eq!(into_a.len(), 1);
    assert_eq!(into_a[0].other, p);
}

#[test]
fn updates_record_field_level_deltas_with_before_and_after_values() {
    let t = TempStore::memory();
    let s = t.store();
    let id = must_create(s, person("p", "Ash", "Ann").with("gender", "2").with_identifier("council:305:client", "c-1"));
    must_commit(
        s,
        tx(vec![ChangeRequest::update(ent(&id))
            .with("family_name", "Birch")
            .with("given_name", "Ann")
            .with("ethnicity", "WHITE")
            .with_identifier("nhs-number", "9434765919")]),
    );
    let mut both = unset(ent(&id), &["gender"]);
    if let OpRequest::Update { remove_identifiers, .. } = &mut both.op {
        remove_identifiers.push(ident("council:305:client", "c-1"));
    }
    must_commit(s, tx(vec![both]));
    let history = s.history(&id).unwrap();
    assert_eq!(history.len(), 3);
    let ChangeOp::Update { delta } = &history[1].change.op else { panic!("version 2 is an update") };
    assert_eq!(
        delta.ops(),
        &[
            FieldOp::Set { attribute: "ethnicity".into(), before: None, after: json!("WHITE") },
            FieldOp::Set { attribute: "family_name".into(), before: Some(json!("Ash")), after: json!("Birch") },
            FieldOp::AddIdentifier { identifier: ident("nhs-number", "9434765919") },
        ],
        "only what changed, with both sides (given_name was unchanged)"
    );
    let ChangeOp::Update { delta } = &history[2].change.op else { panic!("version 3 is an update") };
    assert_eq!(
        delta.ops(),
        &[
            FieldOp::Unset { attribute: "gender".into(), before: json!("2") },
            FieldOp::RemoveIdentifier { identifier: ident("council:305:client", "c-1") },
        ]
    );
    let state = must_entity(s, &id);
    assert_eq!(state.version, 3);
    assert_eq!(attr(&state, "gender"), None);
    assert_eq!(state.identifiers.len(), 1);
    assert_eq!(state.identifiers[0].identifier, ident("nhs-number", "9434765919"));
}

#[test]
fn an_update_that_changes_nothing_writes_nothing() {
    let t = TempStore::memory();
    let s = t.store();
    let id = must_create(s, person("p", "Ash", "Ann").with_identifier("nhs-number", "9434765919"));
    let head = s.head();
    let digest = s.digest().unwrap();
    let c = must_commit(
        s,
        tx(vec![ChangeRequest::update(ent(&id))
            .with("family_name", "Ash")
            .with_identifier("nhs-number", "943 476 5919")]),
    );
    assert_eq!(c.changes, 0);
    assert_eq!(c.seq, head.seq, "a no-op answers with the head it was checked against");
    assert_eq!(s.head(), head);
    assert_eq!(s.digest().unwrap(), digest);
    assert_eq!(must_entity(s, &id).version, 1);
}

#[test]
fn expected_version_guards_against_lost_updates() {
    let t = TempStore::memory();
    let s = t.store();
    let id = must_create(s, person("p", "Ash", "Ann"));
    let c = must_commit(s, tx(vec![ChangeRequest::update(ent(&id)).with("family_name", "Birch").expecting(1)]));
    assert_eq!(c.seq, 2);
    // A writer that read version 1 now conflicts, and nothing of its transaction is written.
    let other = must_create(s, person("q", "Other", "Person"));
    let rejection = must_reject(
        s,
        tx(vec![
            ChangeRequest::update(ent(&other)).with("family_name", "Changed"),
            ChangeRequest::update(ent(&id)).with("family_name", "Cedar").expecting(1),
        ]),
    );
    assert_eq!(rejection, Rejection::Conflict { change_idx: 1, entity: id.clone(), expected: 1, actual: 2 });
    assert_eq!(attr_str(&must_entity(s, &other), "family_name"), Some("Other"));
    assert_eq!(attr_str(&must_entity(s, &id), "family_name"), Some("Birch"));
    // A change expecting version 0 of an existing entity also conflicts.
    assert!(matches!(
        must_reject(s, tx(vec![ChangeRequest::link(ent(&id), "carer_of", ent(&other)).expecting(0)])),
        Rejection::Conflict { change_idx: 0, expected: 0, actual: 2, .. }
    ));
    // Within a transaction, the version counts the transaction's earlier changes.
    must_commit(
        s,
        tx(vec![
            ChangeRequest::update(ent(&id)).with("family_name", "Cedar").expecting(2),
            ChangeRequest::update(ent(&id)).with("given_name", "Bea").expecting(3),
        ]),
    );
    assert_eq!(must_entity(s, &id).version, 4);
}

#[test]
fn concurrent_writers_expecting_the_same_version_commit_exactly_once() {
    let t = TempStore::memory();
    let store = t.store().clone();
    let id = must_create(&store, person("p", "Ash", "Ann"));
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (store, id, barrier) = (store.clone(), id.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut request = tx(vec![
                    person("mine", &format!("Side-{i}"), "Effect"),
                    ChangeRequest::update(ent(&id)).with("given_name", format!("Writer{i}")).expecting(1),
                ]);
                request.reason = Some(format!("writer {i}"));
                store.commit(request).unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let winners: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    for loser in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(matches!(loser, Rejection::Conflict { change_idx: 1, expected: 1, actual: 2, .. }), "{loser}");
    }
    assert_eq!(must_entity(&store, &id).version, 2);
    let stats = store.stats().unwrap();
    assert_eq!((stats.transactions, stats.entities), (2, 2), "the losers' creates were not written");
    assert_eq!(store.head().seq, winners[0].seq);
}

#[test]
fn a_closed_store_refuses_commits() {
    let t = TempStore::memory();
    let s = t.store();
    must_create(s, person("p", "Ash", "Ann"));
    s.close().unwrap();
    assert!(matches!(s.commit(tx(vec![person("q", "Birch", "Bob")])), Err(StoreError::WriterStopped(_))));
    assert_eq!(s.head().seq, 1);
}

#[test]
fn an_idempotency_key_answers_a_resubmission_with_the_original_result() {
    let mut t = TempStore::on_disk();
    let mut request = tx(vec![person("p", "Ash", "Ann"), address("a", "1 High Street", "LS1 4AP")]);
    request.idempotency_key = Some("submission-0001".into());
    let first = must_commit(t.store(), request.clone());
    assert!(!first.replayed);
    must_commit(t.store(), tx(vec![person("q", "Other", "Person")]));
    let digest = t.store().digest().unwrap();
    let head = t.store().head();
    let again = must_commit(t.store(), request.clone());
    assert!(again.replayed);
    assert_eq!(again.seq, first.seq);
    assert_eq!(again.hash, first.hash);
    assert_eq!(again.recorded_at, first.recorded_at);
    assert_eq!(again.refs, first.refs, "the same ids, not new entities");
    assert_eq!(again.changes, first.changes);
    assert_eq!(t.store().head(), head);
    assert_eq!(t.store().digest().unwrap(), digest);

    let mut different = request.clone();
    different.changes.push(person("r", "Third", "Person"));
    let rejection = must_reject(t.store(), different.clone());
    assert_eq!(rejection, Rejection::IdempotencyKeyReused { key: "submission-0001".into(), seq: first.seq });

    // The key is remembered across a restart and a rebuild.
    t.reopen();
    let again = must_commit(t.store(), request.clone());
    assert!(again.replayed);
    assert_eq!(again.seq, first.seq);
    assert!(matches!(must_reject(t.store(), different.clone()), Rejection::IdempotencyKeyReused { .. }));
    t.store().rebuild(|_| {}).unwrap();
    let again = must_commit(t.store(), request);
    assert!(again.replayed);
    assert_eq!(again.refs, first.refs);
    assert!(matches!(must_reject(t.store(), different), Rejection::IdempotencyKeyReused { .. }));
}

#[test]
fn concurrent_resubmissions_of_one_idempotency_key_commit_once() {
    let t = TempStore::memory();
    let store = t.store().clone();
    let mut request = tx(vec![person("p", "Ash", "Ann")]);
    request.idempotency_key = Some("race".into());
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (store, request, barrier) = (store.clone(), request.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                must_commit(&store, request)
            })
        })
        .collect();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(answers.iter().filter(|c| !c.replayed).count(), 1, "exactly one original: {answers:?}");
    assert!(answers.iter().all(|c| c.seq == 1 && c.refs == answers[0].refs));
    assert_eq!(store.stats().unwrap().transactions, 1);
    assert_eq!(store.stats().unwrap().entities, 1);
}

// ------------------------------------------------------------------ refusals

/// Asserts a refusal names the change, the operation, the entity and the field.
#[track_caller]
fn assert_invalid(rejection: &Rejection, idx: usize, op_name: &str, entity: Option<&str>, field: &str) {
    let Rejection::Invalid { change_idx, op, entity: named, field: named_field, reason } = rejection else {
        panic!("expected an invalid-change refusal, got {rejection:?}");
    };
    assert_eq!(*change_idx, idx, "{rejection}");
    assert_eq!(op, op_name, "{rejection}");
    assert_eq!(named_field.as_deref(), Some(field), "{rejection}");
    assert!(!reason.is_empty());
    assert!(!named.is_empty(), "the entity is named: {rejection}");
    if let Some(entity) = entity {
        assert_eq!(named, entity, "{rejection}");
    }
    let text = rejection.to_string();
    assert!(text.contains(&format!("change {idx}")) && text.contains(field), "the message names them: {text}");
}

#[test]
fn bad_input_is_refused_whole_naming_the_change_entity_and_field() {
    let t = TempStore::memory();
    let s = t.store();
    let p = must_create(s, person("p", "Ash", "Ann"));
    let a = must_create(s, address("a", "1 High Street", "LS1 4AP"));
    let entities_before = s.stats().unwrap().entities;
    // Each bad change follows a good one, which must not be written either.
    let good = || ChangeRequest::update(ent(&p)).with("given_name", "Changed");
    let cases: Vec<(ChangeRequest, &str, Option<String>, &str)> = vec![
        (ChangeRequest::create("x", "spaceship"), "create", None, "type"),
        (ChangeRequest::create("x", "person").with("shoe_size", 9), "create", None, "shoe_size"),
        (ChangeRequest::create("x", "person").with("birth_date", "05/04/1950"), "create", None, "birth_date"),
        (ChangeRequest::create("x", "person").with("opted_out", "yes"), "create", None, "opted_out"),
        (ChangeRequest::create("x", "person").with("gender", "X"), "create", None, "gender"),
        (ChangeRequest::create("x", "organisation").with("organisation_type", "charity"), "create", None, "name"),
        (
            ChangeRequest::create("x", "person").with_identifier("nhs-number", "9434765918"),
            "create",
            None,
            "identifiers.nhs-number",
        ),
        (
            ChangeRequest::create("x", "person").with_identifier("no-such-system", "1"),
            "create",
            None,
            "identifiers.no-such-system",
        ),
        (ChangeRequest::update(ent(&p)).with("gender", "X"), "update", Some(p.to_string()), "gender"),
        (ChangeRequest::update(ent(&p)).with("family_name", 42), "update", Some(p.to_string()), "family_name"),
        (ChangeRequest::update(ent(&p)).with("postcode", "LS1 4AP"), "update", Some(p.to_string()), "postcode"),
        (
            ChangeRequest::update(ent(&p)).with_identifier("nhs-number", "123"),
            "update",
            Some(p.to_string()),
            "identifiers.nhs-number",
        ),
        (ChangeRequest::link(ent(&a), "resides_at", ent(&p)), "link", Some(a.to_string()), "role"),
        (ChangeRequest::link(ent(&p), "teleports_to", ent(&a)), "link", Some(p.to_string()), "role"),
        (ChangeRequest::link(ent(&p), "subject", ent(&p)), "link", Some(p.to_string()), "role"),
        (unlink(ent(&p), "resides_at", ent(&a)), "unlink", Some(p.to_string()), "role"),
        (
            ChangeRequest::update(ent(&p)).valid_at(pole_model::Timestamp::now().plus_days(400)),
            "update",
            Some(p.to_string()),
            "valid_time",
        ),
    ];
    for (bad, op_name, entity, field) in cases {
        let rejection = must_reject(s, tx(vec![good(), bad.clone()]));
        assert_invalid(&rejection, 1, op_name, entity.as_deref(), field);
    }
    // Unsetting a required attribute.
    let c = must_create(s, contact("c", "2024-01-01"));
    let rejection = must_reject(s, tx(vec![unset(ent(&c), &["contact_date"])]));
    assert_invalid(&rejection, 0, "update", Some(c.as_str()), "contact_date");
    // A link to an entity that does not exist, and an update of one: a national writer is
    // told so; a council's transaction reads it as not its own (see the scope tests).
    let ghost = pole_model::EntityId::new("01J00000000000000000000000").unwrap();
    let rejection = must_reject(s, national(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&ghost))]));
    assert_invalid(&rejection, 0, "link", Some(p.as_str()), "to");
    assert!(matches!(
        must_reject(s, national(vec![ChangeRequest::update(ent(&ghost)).with("gender", "1")])),
        Rejection::Invalid { change_idx: 0, .. }
    ));
    assert!(matches!(
        must_reject(s, tx(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&ghost))])),
        Rejection::OutOfScope { change_idx: 0, .. }
    ));
    // A ref that was not created earlier in the transaction, and a create that names an id.
    assert!(matches!(
        must_reject(s, tx(vec![ChangeRequest::link(rf("nobody"), "resides_at", ent(&a))])),
        Rejection::Invalid { change_idx: 0, .. }
    ));
    let mut named_create = ChangeRequest::create("x", "person");
    named_create.target = ent(&p);
    assert!(matches!(must_reject(s, tx(vec![named_create])), Rejection::Invalid { change_idx: 0, .. }));
    // An empty transaction.
    assert!(matches!(must_reject(s, tx(vec![])), Rejection::Transaction { .. }));
    assert_eq!(s.stats().unwrap().entities, entities_before + 1);
    assert_eq!(attr_str(&must_entity(s, &p), "given_name"), Some("Ann"));
}

#[test]
fn a_refused_create_is_named_by_the_ref_the_caller_gave_it() {
    // The id a refused create was about to get was never committed and means nothing to the
    // caller; the refusal must name the entity by its ref.
    let t = TempStore::memory();
    let rejection = must_reject(t.store(), tx(vec![person("row-17-person", "Ash", "Ann").with("gender", "X")]));
    let Rejection::Invalid { entity, .. } = &rejection else { panic!("{rejection:?}") };
    assert!(entity.contains("row-17-person"), "the refused create is named {entity:?}: {rejection}");
}

// ------------------------------------------------------------------ links

#[test]
fn a_create_may_name_its_entity_by_an_unused_id_and_a_queued_transaction_may_use_it() {
    let t = TempStore::memory();
    let s = t.store();
    let id = pole_store::new_entity_id();
    // Two transactions queued back to back: the second refers to the entity the first
    // creates, by the id the caller chose, before the first has been answered.
    let first = s.submit(tx(vec![person("ignored", "Ash", "Ann")])).unwrap();
    let mut create = person("ignored", "Ash", "Ann");
    create.target = ent(&id);
    let creating = s.submit(tx(vec![create.clone(), contact("c", "2024-03-01")])).unwrap();
    let using = s.submit(tx(vec![ChangeRequest::update(ent(&id)).with("given_name", "Anne")])).unwrap();
    first.wait().unwrap().unwrap();
    let created = creating.wait().unwrap().unwrap();
    assert!(!created.refs.values().any(|r| r == &id), "a chosen id is not a ref's");
    using.wait().unwrap().unwrap();
    let state = must_entity(s, &id);
    assert_eq!((state.version, attr_str(&state, "given_name")), (2, Some("Anne")));

    // Used once, the id is refused to every later create, whatever became of its entity.
    let again = must_reject(s, tx(vec![create.clone()]));
    let Rejection::Invalid { change_idx: 0, entity, .. } = &again else { panic!("{again:?}") };
    assert_eq!(entity, id.as_str());
    assert!(again.to_string().contains("exists already"), "{again}");
    must_commit(s, tx(vec![op(ent(&id), OpRequest::Erase { reason: "erasure request 7".into() })]));
    let after_erasure = must_reject(s, tx(vec![create.clone()]));
    assert!(after_erasure.to_string().contains("exists already"), "{after_erasure}");
    // Twice in one transaction: the second is refused and nothing is written.
    let other = pole_store::new_entity_id();
    let mut twice = person("x", "Bell", "Bo");
    twice.target = ent(&other);
    let both = must_reject(s, tx(vec![twice.clone(), twice]));
    assert!(matches!(&both, Rejection::Invalid { change_idx: 1, entity, .. } if entity == other.as_str()), "{both:?}");
    assert!(s.entity(&other, ReadAt::NOW).unwrap().is_none());
}

#[test]
fn links_are_navigable_both_ways_by_role_and_as_of_an_instant() {
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(
        s,
        tx(vec![
            person("p", "Ash", "Ann"),
            person("carer", "Birch", "Bob"),
            address("a1", "1 High Street", "LS1 4AP"),
            address("a2", "2 Low Road", "LS2 9JT"),
            contact("c", "2024-03-01"),
        ]),
    );
    let r = |name: &str| c.refs[name].clone();
    let (p, carer, a1, a2, con) = (r("p"), r("carer"), r("a1"), r("a2"), r("c"));
    let linked = must_commit(
        s,
        tx(vec![
            ChangeRequest::link(ent(&p), "resides_at", ent(&a1)),
            ChangeRequest::link(ent(&p), "resides_at", ent(&a2))
                .link_period(Some(ts("2020-01-01")), Some(ts("2022-01-01"))),
            ChangeRequest::link(ent(&carer), "carer_of", ent(&p)),
            ChangeRequest::link(ent(&con), "subject", ent(&p)),
        ]),
    );
    let others = |views: &[pole_store::LinkView]| -> BTreeSet<(String, String, String)> {
        views.iter().map(|v| (v.role.clone(), format!("{:?}", v.direction), v.other.to_string())).collect()
    };
    let set = |items: &[(&str, Direction, &pole_model::EntityId)]| -> BTreeSet<(String, String, String)> {
        items.iter().map(|(r, d, o)| ((*r).to_owned(), format!("{d:?}"), o.to_string())).collect()
    };
    let out = s.links(&p, Some(Direction::Out), None, ReadAt::NOW).unwrap();
    assert_eq!(others(&out), set(&[("resides_at", Direction::Out, &a1), ("resides_at", Direction::Out, &a2)]));
    let inn = s.links(&p, Some(Direction::In), None, ReadAt::NOW).unwrap();
    assert_eq!(others(&inn), set(&[("carer_of", Direction::In, &carer), ("subject", Direction::In, &con)]));
    let both = s.links(&p, None, Some("subject"), ReadAt::NOW).unwrap();
    assert_eq!(others(&both), set(&[("subject", Direction::In, &con)]));
    let at_a1 = s.links(&a1, Some(Direction::In), Some("resides_at"), ReadAt::NOW).unwrap();
    assert_eq!(others(&at_a1), set(&[("resides_at", Direction::In, &p)]));
    assert_eq!(at_a1[0].added_seq, linked.seq);
    assert_eq!(at_a1[0].council.as_deref(), Some("305"));
    assert!(s.links(&a1, Some(Direction::Out), None, ReadAt::NOW).unwrap().is_empty());
    let period = out.iter().find(|v| v.other == a2).unwrap();
    assert_eq!((period.valid_from, period.valid_to), (Some(ts("2020-01-01")), Some(ts("2022-01-01"))));
    // The link's own validity period filters valid-time reads.
    let in_2021 = ReadAt { as_of: None, valid_at: Some(ts("2021-06-01")) };
    let in_2023 = ReadAt { as_of: None, valid_at: Some(ts("2023-06-01")) };
    assert_eq!(others(&s.links(&p, Some(Direction::Out), None, in_2021).unwrap()).len(), 2);
    assert_eq!(
        others(&s.links(&p, Some(Direction::Out), None, in_2023).unwrap()),
        set(&[("resides_at", Direction::Out, &a1)])
    );

    // Remove one; it stays visible as of before the removal, from both ends.
    let removed = must_commit(s, tx(vec![unlink(ent(&p), "resides_at", ent(&a1))]));
    let now_out = s.links(&p, Some(Direction::Out), None, ReadAt::NOW).unwrap();
    assert_eq!(others(&now_out), set(&[("resides_at", Direction::Out, &a2)]));
    assert!(s.links(&a1, Some(Direction::In), None, ReadAt::NOW).unwrap().is_empty());
    let before = ReadAt::as_of_seq(removed.seq - 1);
    let then_out = s.links(&p, Some(Direction::Out), None, before).unwrap();
    assert_eq!(others(&then_out).len(), 2);
    let then_a1 = s.links(&a1, Some(Direction::In), None, before).unwrap();
    assert_eq!(others(&then_a1), set(&[("resides_at", Direction::In, &p)]));
    assert_eq!(then_a1[0].removed_seq, Some(removed.seq));
    let by_time = ReadAt { as_of: Some(AsOf::Time(linked.recorded_at)), valid_at: None };
    assert_eq!(others(&s.links(&a1, Some(Direction::In), None, by_time).unwrap()).len(), 1);
    let before_link = ReadAt::as_of_seq(linked.seq - 1);
    assert!(s.links(&p, None, None, before_link).unwrap().is_empty());
    // The entity's own links agree.
    assert_eq!(must_entity(s, &p).links.len(), 1);
    assert_eq!(s.entity(&p, before).unwrap().unwrap().links.len(), 2);

    // Linking again opens a new record; the old one stays in the past.
    let relinked = must_commit(s, tx(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&a1))]));
    let again = s.links(&a1, Some(Direction::In), None, ReadAt::NOW).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].added_seq, relinked.seq);
    assert!(s.links(&a1, Some(Direction::In), None, ReadAt::as_of_seq(removed.seq)).unwrap().is_empty());
    // Re-stating an identical link writes nothing.
    let same = must_commit(s, tx(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&a1))]));
    assert_eq!(same.changes, 0);
}

#[test]
fn a_late_recorded_relink_leaves_the_link_index_agreeing_with_the_entity() {
    // Regression: the link index (`links`) is kept in sequence order while the entity's links
    // are folded in valid-time order, so a link re-stated with a past valid time after an
    // unlink shows in one and not the other (and cannot be unlinked any more).
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(s, tx(vec![person("p", "Ash", "Ann"), address("a", "1 High Street", "LS1 4AP")]));
    let (p, a) = (c.refs["p"].clone(), c.refs["a"].clone());
    must_commit(s, tx(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&a))]));
    must_commit(s, tx(vec![unlink(ent(&p), "resides_at", ent(&a))]));
    must_commit(s, tx(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&a)).valid_at(ts("2020-01-01"))]));
    let from_entity: BTreeSet<(String, String)> =
        must_entity(s, &p).links.iter().map(|l| (l.role.clone(), l.to.to_string())).collect();
    let out: BTreeSet<(String, String)> = s
        .links(&p, Some(Direction::Out), None, ReadAt::NOW)
        .unwrap()
        .iter()
        .map(|v| (v.role.clone(), v.other.to_string()))
        .collect();
    let inn: BTreeSet<(String, String)> = s
        .links(&a, Some(Direction::In), None, ReadAt::NOW)
        .unwrap()
        .iter()
        .map(|v| (v.role.clone(), p.to_string()))
        .collect();
    assert_eq!(out, from_entity, "links(Out) and the entity's links disagree");
    assert_eq!(inn, from_entity, "links(In) at the far end and the entity's links disagree");
}

#[test]
fn a_late_recorded_unlink_leaves_the_link_index_agreeing_with_the_entity() {
    // The link was made now; an unlink valid in 2020 (before it) is older news. The entity
    // keeps the link (valid-time order) but the link index closes it (sequence order).
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(s, tx(vec![person("p", "Ash", "Ann"), address("a", "1 High Street", "LS1 4AP")]));
    let (p, a) = (c.refs["p"].clone(), c.refs["a"].clone());
    must_commit(s, tx(vec![ChangeRequest::link(ent(&p), "resides_at", ent(&a))]));
    must_commit(s, tx(vec![unlink(ent(&p), "resides_at", ent(&a)).valid_at(ts("2020-01-01"))]));
    let from_entity: Vec<String> = must_entity(s, &p).links.iter().map(|l| l.to.to_string()).collect();
    let out: Vec<String> = s
        .links(&p, Some(Direction::Out), Some("resides_at"), ReadAt::NOW)
        .unwrap()
        .iter()
        .map(|v| v.other.to_string())
        .collect();
    let inn: Vec<String> = s
        .links(&a, Some(Direction::In), Some("resides_at"), ReadAt::NOW)
        .unwrap()
        .iter()
        .map(|_| p.to_string())
        .collect();
    assert_eq!(from_entity, vec![a.to_string()], "the later-valid link stands");
    assert_eq!(out, from_entity, "links(Out) disagrees with the entity");
    assert_eq!(inn, vec![p.to_string()], "links(In) at the address disagrees with the entity");
}

#[test]
fn an_unlink_repeated_at_the_same_valid_time_changes_nothing() {
    // A file not in date order ends an older address where the newer one starts; a later
    // row (or a resubmission) ends it there again. That repeat changes nothing, as a
    // repeated set does, in the same transaction or a later one; an unlink of a link that
    // was never there, or at another time, is still refused.
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(s, tx(vec![person("p", "Ash", "Ann"), address("a", "1 High Street", "LS1 4AP")]));
    let (p, a) = (c.refs["p"].clone(), c.refs["a"].clone());
    let at = |day: &str| ts(day);
    let first = must_commit(
        s,
        tx(vec![
            ChangeRequest::link(ent(&p), "resides_at", ent(&a)).valid_at(at("2020-01-01")),
            unlink(ent(&p), "resides_at", ent(&a)).valid_at(at("2020-06-01")),
            unlink(ent(&p), "resides_at", ent(&a)).valid_at(at("2020-06-01")),
        ]),
    );
    assert_eq!(first.changes, 2, "the repeat in the same transaction is left out");
    let before = s.stats().unwrap();
    let again = must_commit(s, tx(vec![unlink(ent(&p), "resides_at", ent(&a)).valid_at(at("2020-06-01"))]));
    assert_eq!(again.changes, 0);
    assert_eq!(s.stats().unwrap(), before, "nothing was written");
    assert!(must_entity(s, &p).links.is_empty());
    let other_time = must_reject(s, tx(vec![unlink(ent(&p), "resides_at", ent(&a)).valid_at(at("2020-07-01"))]));
    assert_invalid(&other_time, 0, "unlink", Some(p.as_str()), "role");
    let never = must_reject(s, tx(vec![unlink(ent(&a), "resides_at", ent(&p)).valid_at(at("2020-06-01"))]));
    assert_invalid(&never, 0, "unlink", Some(a.as_str()), "role");
}

// ------------------------------------------------------------------ indexes

#[test]
fn identifiers_are_found_normalised() {
    let t = TempStore::memory();
    let s = t.store();
    let p = must_create(
        s,
        person("p", "Ash", "Ann")
            .with_identifier("nhs-number", "943 476 5919")
            .with_identifier("council:305:client", "6789"),
    );
    let q = must_create(s, person("q", "Birch", "Bob").with_identifier("nhs-number", "9434765927"));
    let home = must_create(
        s,
        ChangeRequest::create("h", "care_setting")
            .with("name", "Oak House")
            .with_identifier("cqc-location", "1-1234567"),
    );
    for query in ["9434765919", "943 476 5919", " 9434765919 ", "943-476-5919"] {
        assert_eq!(s.find_by_identifier(&ident("nhs-number", query)).unwrap(), vec![p.clone()], "query {query:?}");
    }
    assert_eq!(s.find_by_identifier(&ident("nhs-number", "9434765927")).unwrap(), vec![q.clone()]);
    assert!(s.find_by_identifier(&ident("nhs-number", "9434765900")).unwrap().is_empty());
    assert!(s.find_by_identifier(&ident("nhs-number", "not a number")).unwrap().is_empty());
    assert_eq!(s.find_by_identifier(&ident("council:305:client", "6789")).unwrap(), vec![p.clone()]);
    assert!(s.find_by_identifier(&ident("council:306:client", "6789")).unwrap().is_empty());
    assert_eq!(s.find_by_identifier(&ident("cqc-location", "1-1234567")).unwrap(), vec![home]);
    // Moving an identifier moves the index entry.
    must_commit(
        s,
        tx(vec![
            remove_identifier(ent(&p), "nhs-number", "943 476 5919"),
            ChangeRequest::update(ent(&q)).with_identifier("nhs-number", "9434765919"),
        ]),
    );
    assert_eq!(s.find_by_identifier(&ident("nhs-number", "9434765919")).unwrap(), vec![q.clone()]);
    assert!(must_entity(s, &p).identifiers.iter().all(|i| i.identifier.system != "nhs-number"));
}

#[test]
fn an_identifier_re_added_with_an_earlier_valid_time_stays_removed() {
    // A client id is removed now, then re-stated as added in 2020: the removal is the later
    // valid statement and must win. Plain identifiers behave so; sealed (identifiable) ones
    // come back, because every seal is a different ciphertext and the fold matches
    // identifiers by their stored value, so the removal no longer names the re-added one.
    let t = TempStore::memory();
    let s = t.store();
    for system in ["council:305:dummy-client", "council:305:client"] {
        let id = must_create(s, person("p", "Ash", "Ann").with_identifier(system, "c1").valid_at(ts("2000-01-01")));
        must_commit(s, tx(vec![remove_identifier(ent(&id), system, "c1")]));
        must_commit(
            s,
            tx(vec![ChangeRequest::update(ent(&id)).with_identifier(system, "c1").valid_at(ts("2020-01-01"))]),
        );
        let state = must_entity(s, &id);
        assert!(state.identifiers.is_empty(), "{system}: {:?}", state.identifiers);
        assert!(!s.find_by_identifier(&ident(system, "c1")).unwrap().contains(&id), "{system}: still indexed");
    }
}

#[test]
fn search_keys_ignore_case_punctuation_and_postcode_spacing() {
    let t = TempStore::memory();
    let s = t.store();
    let p = must_create(s, person("p", "O'Brien-Smith", "Mary Ann").with("birth_date", "1950-04-05"));
    let q = must_create(s, person("q", "Obrien Smith", "Maryann"));
    let other = must_create(s, person("o", "Jones", "Mary"));
    let a = must_create(s, address("a", "1 High Street", "LS1 4AP"));
    let home = must_create(
        s,
        ChangeRequest::create("h", "care_setting").with("name", "Oak House").with("postcode", "ls2 9jt"),
    );
    let both = {
        let mut v = vec![p.clone(), q.clone()];
        v.sort();
        v
    };
    for query in ["obrien smith", "O'BRIEN-SMITH", "o'brien smith", "OBRIENSMITH"] {
        assert_eq!(s.search(SearchKey::FamilyName, query).unwrap(), both, "family name {query:?}");
    }
    assert_eq!(s.search(SearchKey::GivenName, "mary-ann").unwrap(), both);
    assert_eq!(s.search(SearchKey::GivenName, "Mary").unwrap(), vec![other.clone()]);
    assert_eq!(s.search(SearchKey::FamilyName, "jones").unwrap(), vec![other]);
    assert_eq!(s.search(SearchKey::BirthDate, "1950-04-05").unwrap(), vec![p.clone()]);
    assert!(s.search(SearchKey::FamilyName, "smith").unwrap().is_empty(), "exact match after normalisation");
    assert!(s.search(SearchKey::FamilyName, "  ").unwrap().is_empty());
    for query in ["LS1 4AP", "ls14ap", "LS14AP", " ls1  4ap "] {
        assert_eq!(s.search(SearchKey::Postcode, query).unwrap(), vec![a.clone()], "postcode {query:?}");
    }
    for query in ["LS2 9JT", "ls29jt"] {
        assert_eq!(s.search(SearchKey::Postcode, query).unwrap(), vec![home.clone()], "plain postcode {query:?}");
    }
    // An update re-indexes: the old value no longer finds the entity.
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("family_name", "Cedar")]));
    assert_eq!(s.search(SearchKey::FamilyName, "obrien smith").unwrap(), vec![q.clone()]);
    assert_eq!(s.search(SearchKey::FamilyName, "cedar").unwrap(), vec![p.clone()]);
    must_commit(s, tx(vec![unset(ent(&q), &["family_name"])]));
    assert!(s.search(SearchKey::FamilyName, "obrien smith").unwrap().is_empty());
}

#[test]
fn retracted_and_merged_entities_leave_the_lookup_indexes() {
    let t = TempStore::memory();
    let s = t.store();
    let p = must_create(s, person("p", "Ash", "Ann").with_identifier("nhs-number", "9434765919"));
    let dup = must_create(s, person("d", "Ash", "Anne").with_identifier("council:305:client", "77"));
    must_commit(s, tx(vec![op(ent(&p), OpRequest::Retract { reason: "entered in error".into() })]));
    assert!(matches!(must_entity(s, &p).status, Status::Retracted { .. }));
    assert_eq!(s.entity(&p, ReadAt::as_of_seq(1)).unwrap().unwrap().status, Status::Active);
    assert!(s.find_by_identifier(&ident("nhs-number", "9434765919")).unwrap().is_empty());
    assert_eq!(s.search(SearchKey::FamilyName, "ash").unwrap(), vec![dup.clone()]);
    let rejection = must_reject(s, tx(vec![ChangeRequest::update(ent(&p)).with("gender", "1")]));
    assert!(matches!(rejection, Rejection::Invalid { change_idx: 0, .. }));

    let survivor = must_create(s, person("s", "Ash", "Ann"));
    must_commit(s, tx(vec![op(ent(&dup), OpRequest::Merge { into: ent(&survivor) })]));
    assert_eq!(must_entity(s, &dup).status, Status::Merged { into: survivor.clone() });
    assert!(s.find_by_identifier(&ident("council:305:client", "77")).unwrap().is_empty());
    assert_eq!(s.search(SearchKey::FamilyName, "ash").unwrap(), vec![survivor.clone()]);
    must_commit(s, tx(vec![op(ent(&dup), OpRequest::Unmerge)]));
    assert_eq!(s.find_by_identifier(&ident("council:305:client", "77")).unwrap(), vec![dup.clone()]);
    let digest = s.digest().unwrap();
    assert_eq!(s.rebuild(|_| {}).unwrap(), digest);
}

/// Every id of a listing, page by page; panics if paging does not end.
fn list_all(s: &Store, kind: Option<Kind>, entity_type: Option<&str>, limit: usize) -> Vec<pole_model::EntityId> {
    let mut out = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    for _ in 0..1000 {
        let (page, next) = s.list(kind, entity_type, cursor.as_deref(), limit).unwrap();
        assert!(page.len() <= limit);
        out.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
    panic!("paging did not end");
}

#[test]
fn entities_are_listed_by_kind_and_type_in_pages() {
    let t = TempStore::memory();
    let s = t.store();
    let mut people = Vec::new();
    for i in 0..5 {
        people.push(must_create(s, person("p", &format!("P{i}"), "X")));
    }
    let addr = must_create(s, address("a", "1 High Street", "LS1 4AP"));
    let mut contacts = Vec::new();
    let mut referrals = Vec::new();
    for i in 0..3 {
        referrals.push(must_create(s, ChangeRequest::create("r", "referral").with("referral_date", "2024-01-01")));
        contacts.push(must_create(s, contact("c", &format!("2024-01-0{}", i + 1))));
    }
    people.sort();
    contacts.sort();
    referrals.sort();
    let (all_people, next) = s.list(Some(Kind::Person), None, None, 100).unwrap();
    assert_eq!(all_people, people);
    assert_eq!(next, None, "no further page");
    assert_eq!(s.list(None, Some("person"), None, 100).unwrap().0, people);
    let (first, cursor) = s.list(Some(Kind::Person), Some("person"), None, 2).unwrap();
    assert_eq!(first, people[..2].to_vec());
    let cursor = cursor.expect("a cursor to the next page");
    let (second, _) = s.list(Some(Kind::Person), Some("person"), Some(&cursor), 2).unwrap();
    assert_eq!(second, people[2..4].to_vec());
    for limit in [1, 2, 3, 5, 7] {
        assert_eq!(list_all(s, Some(Kind::Person), None, limit), people, "persons, pages of {limit}");
        let events: Vec<_> = contacts.iter().chain(&referrals).cloned().collect();
        assert_eq!(list_all(s, Some(Kind::Event), None, limit), events, "events (type, then id), pages of {limit}");
        let mut everything = list_all(s, None, None, limit);
        everything.sort();
        let mut expected: Vec<_> = people.iter().chain(&contacts).chain(&referrals).cloned().collect();
        expected.push(addr.clone());
        expected.sort();
        assert_eq!(everything, expected, "everything once, pages of {limit}");
    }
    assert_eq!(s.list(Some(Kind::Location), None, None, 100).unwrap().0, vec![addr.clone()]);
    assert_eq!(s.list(None, Some("contact"), None, 100).unwrap().0, contacts);
    assert!(s.list(Some(Kind::Object), None, None, 100).unwrap().0.is_empty());
}

#[test]
fn council_index_lists_each_councils_own_records() {
    let t = TempStore::memory();
    let s = t.store();
    let p = must_create(s, person("p", "Ash", "Ann"));
    let c = must_commit(s, tx_from("306", vec![person("q", "Birch", "Bob")]));
    let q = c.refs["q"].clone();
    assert_eq!(s.list_by_council("305", None, None, None, 100).unwrap().0, vec![p.clone()]);
    assert_eq!(s.list_by_council("306", None, None, None, 100).unwrap().0, vec![q.clone()]);
    assert!(s.list_by_council("999", None, None, None, 100).unwrap().0.is_empty());
    // A national writer's change to 305's record does not make it anyone else's.
    must_commit(s, national(vec![ChangeRequest::update(ent(&p)).with("gender", "1")]));
    assert_eq!(s.list_by_council("305", None, None, None, 100).unwrap().0, vec![p.clone()]);
    assert!(s.contributed_by("305", &p).unwrap());
    assert!(!s.contributed_by("306", &p).unwrap());
}

// ------------------------------------------------------------------ contributor scope

/// A rejection as JSON with the entity it names blanked: what a caller could compare.
fn without_entity(rejection: &Rejection) -> Value {
    let mut json = serde_json::to_value(rejection).unwrap();
    json["entity"] = Value::Null;
    json
}

#[test]
fn a_council_changes_only_its_own_records_and_another_councils_read_as_none_at_all() {
    let t = TempStore::memory();
    let s = t.store();
    let p = must_commit(
        s,
        tx(vec![
            person("p", "Ash", "Ann").with_identifier("council:305:client", "C-1"),
            address("a", "1 High Street", "LS1 4AP"),
            ChangeRequest::link(rf("p"), "resides_at", rf("a")),
        ]),
    );
    let (p, a) = (p.refs["p"].clone(), p.refs["a"].clone());
    let version = must_entity(s, &p).version;
    let q = must_commit(s, tx_from("506", vec![person("q", "Birch", "Bob")])).refs["q"].clone();
    let nobody = pole_model::EntityId::new("01JNOBODY0000000000000000").unwrap();
    type Attempt<'a> = (&'static str, Box<dyn Fn(&pole_model::EntityId) -> ChangeRequest + 'a>);
    let attempts: Vec<Attempt> = vec![
        ("update", Box::new(|id| ChangeRequest::update(ent(id)).with("gender", "2"))),
        ("update", Box::new(|id| remove_identifier(ent(id), "council:305:client", "C-1"))),
        ("update", Box::new(|id| ChangeRequest::update(ent(id)).with("gender", "2").expecting(7))),
        ("link", Box::new(|id| ChangeRequest::link(ent(id), "resides_at", ent(&a)))),
        ("link", Box::new(|id| ChangeRequest::link(ent(&q), "carer_of", ent(id)))),
        ("unlink", Box::new(|id| unlink(ent(id), "resides_at", ent(&a)))),
        ("retract", Box::new(|id| op(ent(id), OpRequest::Retract { reason: "entered in error".into() }))),
        ("merge", Box::new(|id| op(ent(&q), OpRequest::Merge { into: ent(id) }))),
        ("erase", Box::new(|id| op(ent(id), OpRequest::Erase { reason: "request".into() }))),
    ];
    for (name, change) in &attempts {
        let theirs = must_reject(s, tx_from("506", vec![change(&p)]));
        let missing = must_reject(s, tx_from("506", vec![change(&nobody)]));
        assert!(
            matches!(&theirs, Rejection::OutOfScope { change_idx: 0, op, entity, contributor }
                if op == name && entity == &p && contributor == "506"),
            "{name}: {theirs:?}"
        );
        assert!(matches!(&missing, Rejection::OutOfScope { entity, .. } if entity == &nobody), "{name}: {missing:?}");
        assert_eq!(without_entity(&theirs), without_entity(&missing), "{name}: the refusals tell the two apart");
        assert!(!theirs.to_string().contains("version"), "{name}: {theirs}");
    }
    // A create naming an id that is another council's reads as out of scope too.
    let mut create = person("x", "Cedar", "Cat");
    create.target = ent(&p);
    assert!(matches!(must_reject(s, tx_from("506", vec![create])), Rejection::OutOfScope { .. }));
    // Nothing of 305's record changed, and its own council still may.
    assert_eq!(must_entity(s, &p).version, version);
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("gender", "2")]));
}

#[test]
fn a_council_links_its_records_to_national_reference_records_but_never_changes_them() {
    let t = TempStore::memory();
    let s = t.store();
    let home = must_commit(s, national(vec![ChangeRequest::create("h", "care_setting").with("name", "Oak Lodge")]));
    let home = home.refs["h"].clone();
    let p = must_commit(
        s,
        tx_from("506", vec![person("p", "Ash", "Ann"), ChangeRequest::link(rf("p"), "resides_at", ent(&home))]),
    );
    let p = p.refs["p"].clone();
    assert_eq!(must_entity(s, &p).links.len(), 1);
    let refused = must_reject(s, tx_from("506", vec![ChangeRequest::update(ent(&home)).with("name", "Elm Lodge")]));
    assert!(matches!(refused, Rejection::OutOfScope { .. }), "{refused:?}");
    // An administrator may change any record, national or a council's.
    must_commit(s, national(vec![ChangeRequest::update(ent(&home)).with("name", "Elm Lodge")]));
    must_commit(s, national(vec![ChangeRequest::update(ent(&p)).with("gender", "2")]));
}

#[test]
fn a_council_records_no_identifier_of_another_councils_namespace() {
    let t = TempStore::memory();
    let s = t.store();
    let refused =
        must_reject(s, tx_from("506", vec![person("p", "Ash", "Ann").with_identifier("council:305:client", "C-1")]));
    assert_invalid(&refused, 0, "create", Some("ref \"p\""), "identifiers.council:305:client");
    must_commit(s, tx_from("506", vec![person("p", "Ash", "Ann").with_identifier("council:506:client", "C-1")]));
}

#[test]
fn a_merge_never_joins_two_sources_records() {
    let t = TempStore::memory();
    let s = t.store();
    let ours = must_commit(s, tx(vec![person("p", "Ash", "Ann"), person("d", "Ash", "Ann")]));
    let theirs = must_commit(s, tx_from("506", vec![person("q", "Ash", "Ann")])).refs["q"].clone();
    // Not even a national writer merges one council's record into another's: identity
    // resolution links them into one person and each keeps its own record.
    let refused = must_reject(s, national(vec![op(ent(&ours.refs["p"]), OpRequest::Merge { into: ent(&theirs) })]));
    assert_invalid(&refused, 0, "merge", Some(ours.refs["p"].as_str()), "into");
    // A duplicate within one source's records merges.
    must_commit(s, national(vec![op(ent(&ours.refs["d"]), OpRequest::Merge { into: ent(&ours.refs["p"]) })]));
    assert_eq!(must_entity(s, &ours.refs["d"]).status, Status::Merged { into: ours.refs["p"].clone() });
}

#[test]
fn natural_keys_resolve_among_a_contributors_own_records() {
    let t = TempStore::memory();
    let s = t.store();
    let nhs = ident("nhs-number", "9434765919");
    let mine =
        must_commit(s, tx(vec![person("p", "Ash", "Ann").with_identifier(&nhs.system, &nhs.value)])).refs["p"].clone();
    let theirs =
        must_commit(s, tx_from("506", vec![person("p", "Ash", "Ann").with_identifier(&nhs.system, &nhs.value)])).refs
            ["p"]
            .clone();
    let mut both = vec![mine.clone(), theirs.clone()];
    both.sort();
    assert_eq!(s.find_by_identifier(&nhs).unwrap(), both);
    assert_eq!(s.find_by_identifier_of(&nhs, Some("305")).unwrap(), vec![mine]);
    assert_eq!(s.find_by_identifier_of(&nhs, Some("506")).unwrap(), vec![theirs]);
    assert!(s.find_by_identifier_of(&nhs, None).unwrap().is_empty());
}

#[test]
fn idempotency_keys_live_in_each_writers_namespace() {
    let t = TempStore::on_disk();
    let mut first = tx(vec![person("p", "Ash", "Ann")]);
    first.idempotency_key = Some("batch-1".into());
    let mut other = tx_from("506", vec![person("q", "Birch", "Bob")]);
    other.idempotency_key = Some("batch-1".into());
    // 506 sends its own transaction under 305's key first: both are stored, and neither
    // council learns of the other's.
    let theirs = must_commit(t.store(), other.clone());
    let ours = must_commit(t.store(), first.clone());
    assert!(!theirs.replayed && !ours.replayed);
    assert_ne!(theirs.seq, ours.seq);
    assert!(must_commit(t.store(), first.clone()).replayed);
    // National writers' keys are their actor's.
    let mut admin = national(vec![person("r", "Cedar", "Cat")]);
    admin.idempotency_key = Some("batch-1".into());
    assert!(!must_commit(t.store(), admin.clone()).replayed);
    let mut another_admin = admin.clone();
    another_admin.actor = "someone-else".into();
    assert!(!must_commit(t.store(), another_admin).replayed);
    t.store().rebuild(|_| {}).unwrap();
    assert_eq!(must_commit(t.store(), first).seq, ours.seq);
    assert_eq!(must_commit(t.store(), other).seq, theirs.seq);
    assert!(must_commit(t.store(), admin).replayed);
}

// ------------------------------------------------------------------ time travel

#[test]
fn reads_as_of_a_sequence_or_a_recorded_time() {
    let t = TempStore::memory();
    let s = t.store();
    let c1 = must_commit(s, tx(vec![person("p", "Ash", "Ann").with("gender", "2")]));
    let id = c1.refs["p"].clone();
    let c2 = must_commit(s, tx(vec![ChangeRequest::update(ent(&id)).with("family_name", "Birch")]));
    let c3 = must_commit(s, tx(vec![unset(ent(&id), &["gender"])]));
    let read = |at: ReadAt| s.entity(&id, at).unwrap();
    let fam = |at: ReadAt| read(at).and_then(|st| attr_str(&st, "family_name").map(str::to_owned));
    let gender = |at: ReadAt| read(at).and_then(|st| attr_str(&st, "gender").map(str::to_owned));
    assert!(read(ReadAt::as_of_seq(0)).is_none());
    assert_eq!(fam(ReadAt::as_of_seq(1)).as_deref(), Some("Ash"));
    assert_eq!(fam(ReadAt::as_of_seq(2)).as_deref(), Some("Birch"));
    assert_eq!(gender(ReadAt::as_of_seq(2)).as_deref(), Some("2"));
    assert_eq!(gender(ReadAt::as_of_seq(3)), None);
    assert_eq!(read(ReadAt::as_of_seq(3)), read(ReadAt::NOW));
    assert_eq!(read(ReadAt::as_of_seq(99)), read(ReadAt::NOW));
    assert_eq!(read(ReadAt::as_of_seq(1)).unwrap().version, 1);
    let at = |t: pole_model::Timestamp| ReadAt { as_of: Some(AsOf::Time(t)), valid_at: None };
    let micro = |t: pole_model::Timestamp, d: i64| pole_model::Timestamp::from_micros(t.micros() + d);
    assert!(read(at(micro(c1.recorded_at, -1))).is_none());
    assert_eq!(fam(at(c1.recorded_at)).as_deref(), Some("Ash"));
    assert_eq!(fam(at(micro(c2.recorded_at, -1))).as_deref(), Some("Ash"));
    assert_eq!(fam(at(c2.recorded_at)).as_deref(), Some("Birch"));
    assert_eq!(gender(at(micro(c3.recorded_at, -1))).as_deref(), Some("2"));
    assert_eq!(gender(at(c3.recorded_at)), None);
    assert_eq!(s.seq_at(micro(c2.recorded_at, 1)).unwrap(), 2);
    assert_eq!(s.seq_at(micro(c1.recorded_at, -1)).unwrap(), 0);
}

#[test]
fn what_we_knew_at_one_time_about_the_world_at_another() {
    let t = TempStore::memory();
    let s = t.store();
    let c1 = must_commit(s, tx(vec![person("p", "Ash", "Ann").with("gender", "0").valid_at(ts("2019-01-01"))]));
    let id = c1.refs["p"].clone();
    let c2 = must_commit(s, tx(vec![ChangeRequest::update(ent(&id)).with("gender", "1").valid_at(ts("2024-01-01"))]));
    // Recorded late: true since 2022, but learned after the 2024 value.
    let c3 = must_commit(s, tx(vec![ChangeRequest::update(ent(&id)).with("gender", "2").valid_at(ts("2022-01-01"))]));
    assert_eq!(c3.changes, 1);
    let gender = |as_of: Option<AsOf>, valid: Option<&str>| {
        s.entity(&id, ReadAt { as_of, valid_at: valid.map(ts) })
            .unwrap()
            .map(|st| attr_str(&st, "gender").unwrap_or("-").to_owned())
    };
    // Now: the late change does not override the later-valid value.
    assert_eq!(gender(None, None).as_deref(), Some("1"));
    assert_eq!(gender(Some(AsOf::Seq(c3.seq)), None).as_deref(), Some("1"));
    // But it shows under a valid time between.
    assert_eq!(gender(None, Some("2023-06-01")).as_deref(), Some("2"));
    assert_eq!(gender(None, Some("2020-06-01")).as_deref(), Some("0"));
    assert_eq!(gender(None, Some("2025-06-01")).as_deref(), Some("1"));
    assert_eq!(gender(None, Some("2018-06-01")), None, "the entity did not exist yet in the world");
    // Before it was recorded, we did not know it.
    assert_eq!(gender(Some(AsOf::Seq(c2.seq)), Some("2023-06-01")).as_deref(), Some("0"));
    assert_eq!(gender(Some(AsOf::Time(c2.recorded_at)), Some("2023-06-01")).as_deref(), Some("0"));
    assert_eq!(gender(Some(AsOf::Seq(c1.seq)), Some("2025-06-01")).as_deref(), Some("0"));
    // The current state's provenance keeps the valid time of the value shown.
    let state = must_entity(s, &id);
    assert_eq!(state.attributes["gender"].provenance.valid_time, ts("2024-01-01"));
    assert_eq!(state.attributes["gender"].provenance.seq, c2.seq);
    assert_eq!(state.version, 3);
    let history = s.history(&id).unwrap();
    assert_eq!(
        history.iter().map(|v| v.valid_time).collect::<Vec<_>>(),
        vec![ts("2019-01-01"), ts("2024-01-01"), ts("2022-01-01")]
    );
    // The late change is indexed the same way after a rebuild.
    let digest = s.digest().unwrap();
    assert_eq!(s.rebuild(|_| {}).unwrap(), digest);
    assert_eq!(gender(None, None).as_deref(), Some("1"));
}

#[test]
fn a_late_change_does_not_override_a_value_created_later_in_valid_time() {
    // The create carries no valid time, so its values are valid from when they were
    // recorded; a change valid in 2020 and recorded afterwards is older news and must not
    // replace them now (it only shows for valid times between).
    let t = TempStore::memory();
    let s = t.store();
    let id = must_create(s, person("p", "Now-Name", "Ann"));
    must_commit(
        s,
        tx(vec![ChangeRequest::update(ent(&id)).with("family_name", "Then-Name").valid_at(ts("2020-01-01"))]),
    );
    let state = must_entity(s, &id);
    assert_eq!(attr_str(&state, "family_name"), Some("Now-Name"), "the late 2020 value replaced the current one");
}

#[test]
fn a_late_change_followed_by_a_current_one_in_the_same_transaction_is_not_lost() {
    // Within one transaction the second change is checked against a state that applied the
    // first (late) change out of valid-time order, so it is wrongly dropped as a no-op.
    let t = TempStore::memory();
    let s = t.store();
    let id = must_create(s, person("p", "Ash", "Ann").with("gender", "0").valid_at(ts("2019-01-01")));
    must_commit(s, tx(vec![ChangeRequest::update(ent(&id)).with("gender", "1").valid_at(ts("2024-01-01"))]));
    let c = must_commit(
        s,
        tx(vec![
            ChangeRequest::update(ent(&id)).with("gender", "2").valid_at(ts("2020-01-01")),
            ChangeRequest::update(ent(&id)).with("gender", "2"),
        ]),
    );
    assert_eq!(c.changes, 2, "both changes state something new");
    let state = must_entity(s, &id);
    assert_eq!(attr_str(&state, "gender"), Some("2"), "the current statement (gender 2 now) was lost");
}

#[test]
fn history_lists_every_version_with_its_change_actor_and_source() {
    let t = TempStore::memory();
    let s = t.store();
    let id = must_create(s, person("p", "Ash", "Ann").with("gender", "2"));
    let mut request = tx(vec![ChangeRequest::update(ent(&id)).with("family_name", "Birch")]);
    request.actor = "someone-else".into();
    request.role = "council".into();
    request.source.file = Some("clients.csv".into());
    request.changes[0].row = Some(17);
    must_commit(s, request);
    must_commit(s, tx(vec![unset(ent(&id), &["gender"]), ChangeRequest::update(ent(&id)).with("given_name", "Bea")]));
    let history = s.history(&id).unwrap();
    assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(history.iter().map(|v| v.seq).collect::<Vec<_>>(), vec![1, 2, 3, 3]);
    assert_eq!(history.iter().map(|v| v.change_idx).collect::<Vec<_>>(), vec![0, 0, 0, 1]);
    assert_eq!(history[0].actor, "tester");
    assert_eq!(history[1].actor, "someone-else");
    assert_eq!(history[1].role, "council");
    assert_eq!(history[1].source.council.as_deref(), Some("305"));
    assert_eq!(history[1].source.file.as_deref(), Some("clients.csv"));
    assert_eq!(history[1].change.row, Some(17));
    assert_eq!(history[1].recorded_at, s.transaction_meta(2).unwrap().unwrap().recorded_at);
    assert_eq!(history[1].valid_time, history[1].recorded_at, "valid time defaults to the recorded time");
    let ChangeOp::Create { kind, entity_type, delta } = &history[0].change.op else {
        panic!("version 1 is the create")
    };
    assert_eq!((*kind, entity_type.as_str()), (Kind::Person, "person"));
    assert!(delta.ops().contains(&FieldOp::Set { attribute: "family_name".into(), before: None, after: json!("Ash") }));
    let ChangeOp::Update { delta } = &history[1].change.op else { panic!("version 2 is an update") };
    assert_eq!(
        delta.ops(),
        &[FieldOp::Set { attribute: "family_name".into(), before: Some(json!("Ash")), after: json!("Birch") }]
    );
    let ChangeOp::Update { delta } = &history[2].change.op else { panic!("version 3 is an update") };
    assert_eq!(delta.ops(), &[FieldOp::Unset { attribute: "gender".into(), before: json!("2") }]);
    // Versions read back, and any two diff.
    let v2 = s.entity_at_version(&id, 2).unwrap().unwrap();
    assert_eq!(attr_str(&v2, "family_name"), Some("Birch"));
    assert_eq!(attr_str(&v2, "gender"), Some("2"));
    assert_eq!(v2.version, 2);
    assert!(s.entity_at_version(&id, 0).unwrap().is_none());
    assert!(s.entity_at_version(&id, 5).unwrap().is_none());
    assert_eq!(s.entity_at_version(&id, 4).unwrap().unwrap(), must_entity(s, &id));
    let diff = s.diff(&id, 1, 4).unwrap().unwrap();
    assert_eq!(
        diff,
        Delta(vec![
            FieldOp::Set { attribute: "family_name".into(), before: Some(json!("Ash")), after: json!("Birch") },
            FieldOp::Unset { attribute: "gender".into(), before: json!("2") },
            FieldOp::Set { attribute: "given_name".into(), before: Some(json!("Ann")), after: json!("Bea") },
        ])
    );
    assert_eq!(
        s.diff(&id, 4, 1).unwrap().unwrap(),
        Delta(vec![
            FieldOp::Set { attribute: "family_name".into(), before: Some(json!("Birch")), after: json!("Ash") },
            FieldOp::Set { attribute: "gender".into(), before: None, after: json!("2") },
            FieldOp::Set { attribute: "given_name".into(), before: Some(json!("Bea")), after: json!("Ann") },
        ])
    );
    assert!(s.diff(&id, 2, 2).unwrap().unwrap().is_empty());
    assert!(s.diff(&id, 1, 9).unwrap().is_none());
}

// ------------------------------------------------------------------ replay

/// A workload touching every kind of change and index.
fn mixed_workload(s: &Store) -> Vec<pole_model::EntityId> {
    let c = must_commit(
        s,
        tx(vec![
            person("p", "Ash", "Ann").with("gender", "2").with_identifier("nhs-number", "9434765919"),
            person("q", "Birch", "Bob").with_identifier("council:305:client", "B-1"),
            address("a", "1 High Street", "LS1 4AP"),
            contact("c", "2024-03-01"),
            ChangeRequest::link(rf("p"), "resides_at", rf("a")),
            ChangeRequest::link(rf("c"), "subject", rf("p")),
        ]),
    );
    let r = |name: &str| c.refs[name].clone();
    let (p, q, a, con) = (r("p"), r("q"), r("a"), r("c"));
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("family_name", "Ash-Birch").expecting(2)]));
    must_commit(s, tx(vec![ChangeRequest::update(ent(&q)).with("gender", "1").valid_at(ts("2021-05-01"))]));
    must_commit(s, national(vec![ChangeRequest::link(ent(&q), "carer_of", ent(&p))]));
    must_commit(s, tx(vec![unlink(ent(&p), "resides_at", ent(&a))]));
    let mut keyed = tx(vec![ChangeRequest::update(ent(&con)).with("outcome", "advice given")]);
    keyed.idempotency_key = Some("k-1".into());
    must_commit(s, keyed);
    must_commit(s, tx(vec![op(ent(&q), OpRequest::Retract { reason: "duplicate".into() })]));
    must_commit(s, tx(vec![unset(ent(&p), &["gender"]), remove_identifier(ent(&p), "nhs-number", "9434765919")]));
    vec![p, q, a, con]
}

#[test]
fn rebuild_and_replay_reproduce_the_live_projections_exactly() {
    for backend in [pole_store::BackendKind::Memory, disk_backend()] {
        let t = TempStore::new(backend);
        let s = t.store();
        let ids = mixed_workload(s);
        let digest = s.digest().unwrap();
        let stats = s.stats().unwrap();
        let before: Vec<_> = ids.iter().map(|id| (must_entity(s, id), s.history(id).unwrap())).collect();
        let links: Vec<_> = ids.iter().map(|id| s.links(id, None, None, ReadAt::NOW).unwrap()).collect();
        assert_eq!(s.replay_digest(|_| {}).unwrap(), digest, "{backend:?}");
        assert_eq!(s.digest().unwrap(), digest, "replay_digest leaves the store as it is");
        assert_eq!(s.rebuild(|_| {}).unwrap(), digest, "{backend:?}");
        assert_eq!(s.digest().unwrap(), digest);
        assert_eq!(s.stats().unwrap(), stats);
        let after: Vec<_> = ids.iter().map(|id| (must_entity(s, id), s.history(id).unwrap())).collect();
        assert_eq!(after, before);
        let links_after: Vec<_> = ids.iter().map(|id| s.links(id, None, None, ReadAt::NOW).unwrap()).collect();
        assert_eq!(links_after, links);
        // The store keeps working after a rebuild.
        let c = must_commit(s, tx(vec![person("z", "Zed", "Zoe")]));
        assert_eq!(c.seq, stats.head_seq + 1);
    }
}

#[test]
fn materialise_writes_a_store_holding_exactly_the_first_transactions() {
    let t = TempStore::memory();
    let s = t.store();
    let ids = mixed_workload(s);
    let head = s.head().seq;
    let mut digests = BTreeMap::new();
    let out = tempfile::tempdir().unwrap();
    for seq in [1, 3, head - 1, head] {
        let into = out.path().join(format!("at-{seq}"));
        let digest = s.materialise(seq, &into, |_| {}).unwrap();
        digests.insert(seq, digest);
        let report = verify(&into, |_| {}).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.transactions, seq);
        let m = open(&into, disk_backend());
        assert_eq!(m.digest().unwrap(), digest);
        assert_eq!(m.head().seq, seq);
        assert_eq!(m.stats().unwrap().transactions, seq);
        assert_eq!(m.head().hash, s.transaction_meta(seq).unwrap().unwrap().hash);
        for id in &ids {
            assert_eq!(
                m.entity(id, ReadAt::NOW).unwrap(),
                s.entity(id, ReadAt::as_of_seq(seq)).unwrap(),
                "entity {id} in the store materialised at seq {seq}"
            );
        }
        assert_eq!(m.transactions(0, 1000).unwrap(), s.transactions(0, seq as usize).unwrap());
        m.close().unwrap();
    }
    assert_eq!(digests[&head], s.digest().unwrap(), "materialising at the head copies the store");
    // A target that is not empty is refused.
    let busy = out.path().join(format!("at-{head}"));
    assert!(s.materialise(1, &busy, |_| {}).is_err());
}

#[test]
fn materialised_digest_equals_the_live_digest_right_after_that_sequence() {
    let t = TempStore::memory();
    let s = t.store();
    let mut live = vec![s.digest().unwrap()];
    let p = must_create(s, person("p", "Ash", "Ann"));
    live.push(s.digest().unwrap());
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("gender", "1")]));
    live.push(s.digest().unwrap());
    must_commit(
        s,
        tx(vec![address("a", "1 High Street", "LS1 4AP"), ChangeRequest::link(ent(&p), "resides_at", rf("a"))]),
    );
    live.push(s.digest().unwrap());
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("gender", "2").valid_at(ts("2020-01-01"))]));
    live.push(s.digest().unwrap());
    let out = tempfile::tempdir().unwrap();
    for (seq, digest) in live.iter().enumerate().skip(1) {
        let into = out.path().join(format!("m{seq}"));
        assert_eq!(&s.materialise(seq as u64, &into, |_| {}).unwrap(), digest, "seq {seq}");
    }
}

// ------------------------------------------------------------------ durability

#[test]
fn a_reopened_store_has_the_same_state() {
    for backend in [disk_backend(), pole_store::BackendKind::Memory] {
        let mut t = TempStore::new(backend);
        let ids = mixed_workload(t.store());
        let digest = t.store().digest().unwrap();
        let stats = t.store().stats().unwrap();
        let head = t.store().head();
        let states: Vec<_> = ids.iter().map(|id| must_entity(t.store(), id)).collect();
        t.reopen();
        let s = t.store();
        assert_eq!(s.recovery().torn_bytes, 0);
        assert_eq!(s.digest().unwrap(), digest, "{backend:?}");
        assert_eq!(s.stats().unwrap(), stats, "{backend:?}");
        assert_eq!(s.head(), head, "{backend:?}");
        let again: Vec<_> = ids.iter().map(|id| must_entity(s, id)).collect();
        assert_eq!(again, states);
        assert_eq!(s.search(SearchKey::FamilyName, "ash birch").unwrap(), vec![ids[0].clone()]);
        // And it carries on from where it was.
        let c = must_commit(s, tx(vec![ChangeRequest::update(ent(&ids[0])).with("gender", "9")]));
        assert_eq!(c.seq, head.seq + 1);
        assert!(c.recorded_at > head.recorded_at);
        assert!(verify(t.path(), |_| {}).unwrap().ok);
    }
}

#[test]
fn a_torn_tail_is_cut_on_open_and_reported() {
    let mut t = TempStore::on_disk();
    let ids = mixed_workload(t.store());
    let digest = t.store().digest().unwrap();
    let stats = t.store().stats().unwrap();
    let states: Vec<_> = ids.iter().map(|id| must_entity(t.store(), id)).collect();
    t.close();
    let segment = first_segment(t.path());
    let clean = fs::read(&segment).unwrap();
    // Garbage, then a real frame cut short (an interrupted write).
    let last_frame = {
        let (_, start, end) = *frame_ranges(&segment).last().unwrap();
        clean[start..end].to_vec()
    };
    let tails: Vec<Vec<u8>> = vec![vec![0xA5; 37], vec![0x00; 200], last_frame[..last_frame.len() / 2].to_vec()];
    for tail in tails {
        let mut f = fs::OpenOptions::new().append(true).open(&segment).unwrap();
        f.write_all(&tail).unwrap();
        drop(f);
        let s = t.reopen();
        assert_eq!(s.recovery().torn_bytes, tail.len() as u64);
        assert!(s.recovery().quarantined.as_ref().is_some_and(|p| p.exists()));
        assert_eq!(s.digest().unwrap(), digest);
        assert_eq!(s.stats().unwrap(), stats);
        assert_eq!(ids.iter().map(|id| must_entity(s, id)).collect::<Vec<_>>(), states);
        t.close();
        assert_eq!(fs::read(&segment).unwrap(), clean, "the tail was cut back to the last whole frame");
        assert!(verify(t.path(), |_| {}).unwrap().ok);
    }
    let s = t.reopen();
    assert_eq!(s.recovery().torn_bytes, 0);
    let c = must_commit(s, tx(vec![person("z", "Zed", "Zoe")]));
    assert_eq!(c.seq, stats.head_seq + 1);
    let report = verify(t.path(), |_| {}).unwrap();
    assert!(report.ok && report.transactions == c.seq, "{report:?}");
}

fn rewrite_format(dir: &std::path::Path, format: u32) {
    let path = dir.join("FORMAT");
    let mut value: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    value["format"] = json!(format);
    fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

#[test]
fn a_data_directory_of_a_newer_format_is_refused_untouched() {
    let mut t = TempStore::on_disk();
    must_create(t.store(), person("p", "Ash", "Ann"));
    t.close();
    rewrite_format(t.path(), 99);
    let journal_before = fs::read(first_segment(t.path())).unwrap();
    match Store::open(t.path(), options(disk_backend())) {
        Err(StoreError::NewerFormat { found, supported, .. }) => {
            assert_eq!(found, 99);
            assert_eq!(supported, FORMAT_VERSION);
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
    assert_eq!(fs::read(first_segment(t.path())).unwrap(), journal_before);
    rewrite_format(t.path(), FORMAT_VERSION);
    let s = t.reopen();
    assert_eq!(s.head().seq, 1);
}

#[test]
fn a_newer_format_file_is_recognised_by_its_version_alone() {
    // A newer pole-ods may write other fields in FORMAT; the version number is what decides.
    let mut t = TempStore::memory();
    must_create(t.store(), person("p", "Ash", "Ann"));
    t.close();
    fs::write(t.path().join("FORMAT"), br#"{"format": 99}"#).unwrap();
    let result = Store::open(t.path(), options(pole_store::BackendKind::Memory));
    assert!(matches!(result, Err(StoreError::NewerFormat { found: 99, .. })), "{result:?}");
}

#[test]
fn a_second_open_of_an_open_directory_is_refused() {
    for backend in [disk_backend(), pole_store::BackendKind::Memory] {
        let mut t = TempStore::new(backend);
        must_create(t.store(), person("p", "Ash", "Ann"));
        let second = Store::open(t.path(), options(backend));
        assert!(matches!(second, Err(StoreError::Locked(_))), "{backend:?}: {second:?}");
        // The first store is unharmed, and once it is gone the directory opens again.
        must_create(t.store(), person("q", "Birch", "Bob"));
        let s = t.reopen();
        assert_eq!(s.head().seq, 2);
    }
}

/// Every file under `dir` with its mode, and every directory (`dir` included), as
/// `(path, is_dir, mode & 0o777)`.
fn modes_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, bool, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(dir.to_path_buf(), true, fs::metadata(dir).unwrap().permissions().mode() & 0o777)];
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            out.extend(modes_under(&entry.path()));
        } else {
            out.push((entry.path(), false, meta.permissions().mode() & 0o777));
        }
    }
    out
}

fn assert_owner_only(dir: &std::path::Path, when: &str) {
    let modes = modes_under(dir);
    let loose: Vec<_> = modes
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(path, _, mode)| format!("{} {mode:o}", path.display()))
        .collect();
    assert!(loose.is_empty(), "{when}: not the owner's alone: {loose:?}");
}

fn loosen_everything(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for (path, is_dir, _) in modes_under(dir) {
        fs::set_permissions(&path, fs::Permissions::from_mode(if is_dir { 0o755 } else { 0o644 })).unwrap();
    }
}

#[test]
fn every_file_in_a_data_directory_is_the_owners_alone() {
    for backend in [pole_store::BackendKind::Redb, pole_store::BackendKind::Sled] {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        let store = open(&dir, backend);
        let id = must_create(&store, person("p", "Ash", "Ann"));
        let log = pole_store::AccessLog::open(dir.join("audit")).unwrap();
        let mut entry = pole_store::AccessEntry::new("tester", "admin", pole_store::AccessAction::Read, "test");
        entry.entities = vec![id.clone()];
        log.record_durably(entry.clone()).unwrap();
        assert!(dir.join("keys/vault").exists() && dir.join("audit/access-000001.log").exists());
        assert_owner_only(&dir, &format!("{backend:?}, open"));
        drop(log);
        store.close().unwrap();
        drop(store);
        assert_owner_only(&dir, &format!("{backend:?}, closed"));

        // A torn tail is kept beside the journal, in a file of its own.
        let mut segment = fs::OpenOptions::new().append(true).open(first_segment(&dir)).unwrap();
        segment.write_all(&[0xA5; 37]).unwrap();
        drop(segment);
        // So is a torn access record.
        let mut access = fs::OpenOptions::new().append(true).open(dir.join("audit/access-000001.log")).unwrap();
        access.write_all(b"2\tcut").unwrap();
        drop(access);
        // A data directory written by an older pole-ods, readable by anyone, is tightened
        // when it is opened again.
        loosen_everything(&dir);
        let store = open(&dir, backend);
        assert!(store.recovery().quarantined.is_some());
        must_commit(&store, tx(vec![ChangeRequest::update(ent(&id)).with("gender", "9")]));
        let log = pole_store::AccessLog::open(dir.join("audit")).unwrap();
        log.record_durably(entry).unwrap();
        assert!(dir.join("audit/access-000001.log.torn").exists());
        assert_owner_only(&dir, &format!("{backend:?}, reopened"));
        drop(log);
        store.close().unwrap();
    }
}

// ------------------------------------------------------------------ verify

#[test]
fn verify_passes_on_an_intact_journal() {
    let mut t = TempStore::memory();
    let empty = verify(t.path(), |_| {}).unwrap();
    assert!(empty.ok && empty.transactions == 0, "{empty:?}");
    mixed_workload(t.store());
    let head = t.store().head();
    let report = verify(t.path(), |_| {}).unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.transactions, head.seq);
    assert_eq!(report.head_hash, head.hash);
    assert_eq!(report.first_bad_seq, None);
    t.close();
    assert!(verify(t.path(), |_| {}).unwrap().ok);
}

#[test]
fn verify_names_the_transaction_holding_any_flipped_byte() {
    let mut t = TempStore::memory();
    let s = t.store();
    let p = must_create(s, person("p", "Ash", "Ann"));
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("gender", "1")]));
    must_commit(
        s,
        tx(vec![address("a", "1 High Street", "LS1 4AP"), ChangeRequest::link(ent(&p), "resides_at", rf("a"))]),
    );
    must_commit(s, tx(vec![unset(ent(&p), &["gender"])]));
    t.close();
    let segment = first_segment(t.path());
    let clean = fs::read(&segment).unwrap();
    let frames = frame_ranges(&segment);
    assert_eq!(frames.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    for &(seq, start, end) in &frames {
        for at in start..end {
            for mask in [0x01u8, 0xFF] {
                let mut damaged = clean.clone();
                damaged[at] ^= mask;
                fs::write(&segment, &damaged).unwrap();
                let report = verify(t.path(), |_| {}).unwrap();
                assert!(!report.ok, "byte {at} of seq {seq} flipped with {mask:#x} went unnoticed");
                assert_eq!(report.first_bad_seq, Some(seq), "byte {at} (mask {mask:#x}): {report:?}");
                assert_eq!(report.transactions, seq - 1);
                assert!(report.problem.is_some());
            }
        }
    }
    fs::write(&segment, &clean).unwrap();
    assert!(verify(t.path(), |_| {}).unwrap().ok);
}

// ------------------------------------------------------------------ identifiable values

const FAMILY: &str = "Zebedee-Quartermaine";
const FAMILY_2: &str = "Zebedee-Quartermaine-Oyelaran";
const GIVEN: &str = "Wilhelmina-Xylophone";
const BIRTH: &str = "1931-02-03";
const NHS: &str = "9434765935";
const CLIENT: &str = "ZQ-778812";
const LINE1: &str = "77 Quixotic Mews";
const POSTCODE: &str = "QX9 9ZZ";

/// Every form in which one of the person's own identifiable values could be stored.
fn person_needles() -> Vec<String> {
    needles_of(&[FAMILY, FAMILY_2, GIVEN, BIRTH, NHS, CLIENT])
}

/// The person's values and those of their home address.
fn needles() -> Vec<String> {
    needles_of(&[FAMILY, FAMILY_2, GIVEN, BIRTH, NHS, CLIENT, LINE1, POSTCODE])
}

fn needles_of(values: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for &value in values {
        out.push(value.to_owned());
        out.push(SearchKey::FamilyName.normalise(value));
        out.push(value.to_lowercase());
    }
    out.push("943 476 5935".into());
    out.sort();
    out.dedup();
    out
}

fn commit_distinctive_person(s: &Store) -> (pole_model::EntityId, pole_model::EntityId, pole_model::EntityId) {
    let c = must_commit(
        s,
        tx(vec![
            person("p", FAMILY, GIVEN)
                .with("birth_date", BIRTH)
                .with("gender", "2")
                .with_identifier("nhs-number", "943 476 5935")
                .with_identifier("council:305:client", CLIENT),
            address("a", LINE1, POSTCODE).with("town", "Plaintown-Distinctive"),
            ChangeRequest::link(rf("p"), "resides_at", rf("a")),
            person("ctl", "Control-Person", "Kept"),
        ]),
    );
    let p = c.refs["p"].clone();
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("family_name", FAMILY_2)]));
    must_commit(s, tx(vec![ChangeRequest::update(ent(&p)).with("family_name", FAMILY)]));
    (p, c.refs["a"].clone(), c.refs["ctl"].clone())
}

#[test]
fn identifiable_values_are_never_stored_in_plaintext() {
    let mut t = TempStore::on_disk();
    let (p, _, _) = commit_distinctive_person(t.store());
    assert_eq!(attr_str(&must_entity(t.store(), &p), "family_name"), Some(FAMILY));
    t.close();
    // The scan does see plain values, so it would see these too.
    assert!(!files_containing(t.path(), b"Plaintown-Distinctive").is_empty(), "the scan finds plain values");
    for needle in needles() {
        let found = files_containing(t.path(), needle.as_bytes());
        assert!(found.is_empty(), "{needle:?} is stored in plaintext in {found:?}");
    }
    // And they open again after a restart.
    let s = t.reopen();
    let state = must_entity(s, &p);
    assert_eq!(attr_str(&state, "given_name"), Some(GIVEN));
    assert_eq!(s.find_by_identifier(&ident("nhs-number", NHS)).unwrap(), vec![p.clone()]);
}

#[test]
fn erasure_makes_a_persons_identifiable_values_unreadable_everywhere() {
    let mut t = TempStore::on_disk();
    let (p, a, ctl) = commit_distinctive_person(t.store());
    let s = t.store();
    let seq_before = s.head().seq;
    let erased = must_commit(s, tx(vec![op(ent(&p), OpRequest::Erase { reason: "erasure request 42".into() })]));
    let contains_none = |what: &str, text: &str| {
        for needle in person_needles() {
            assert!(!text.contains(&needle), "{what} still holds {needle:?}: {text}");
        }
    };
    let state = must_entity(s, &p);
    assert_eq!(state.status, Status::Erased);
    for name in ["family_name", "given_name", "birth_date"] {
        assert_eq!(attr(&state, name), None, "{name} survives erasure");
    }
    assert!(state.identifiers.is_empty(), "identifiers survive erasure: {:?}", state.identifiers);
    assert_eq!(attr_str(&state, "gender"), Some("2"), "plain values are kept");
    contains_none("the current state", &serde_json::to_string(&state).unwrap());
    for seq in 1..=seq_before {
        let then = s.entity(&p, ReadAt::as_of_seq(seq)).unwrap().unwrap();
        contains_none(&format!("the state as of seq {seq}"), &serde_json::to_string(&then).unwrap());
        assert_eq!(attr(&then, "family_name"), None);
    }
    for version in 1..=state.version {
        let then = s.entity_at_version(&p, version).unwrap().unwrap();
        contains_none(&format!("version {version}"), &serde_json::to_string(&then).unwrap());
    }
    contains_none("the history", &serde_json::to_string(&s.history(&p).unwrap()).unwrap());
    contains_none("a diff", &serde_json::to_string(&s.diff(&p, 1, 3).unwrap()).unwrap());
    contains_none(
        "the change feed",
        &serde_json::to_string(
            &s.transactions(0, 100)
                .unwrap()
                .iter()
                .map(|t| t.changes.iter().map(|c| s.open_change(c.clone())).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        )
        .unwrap(),
    );
    assert!(s.search(SearchKey::FamilyName, FAMILY).unwrap().is_empty());
    assert!(s.search(SearchKey::GivenName, GIVEN).unwrap().is_empty());
    assert!(s.search(SearchKey::BirthDate, BIRTH).unwrap().is_empty());
    assert!(s.find_by_identifier(&ident("nhs-number", NHS)).unwrap().is_empty());
    assert!(s.find_by_identifier(&ident("council:305:client", CLIENT)).unwrap().is_empty());
    // Someone else is untouched; the address, linked from the person alone, went with them.
    assert_eq!(s.search(SearchKey::FamilyName, "control person").unwrap(), vec![ctl.clone()]);
    assert_eq!(must_entity(s, &a).status, Status::Erased);
    assert_eq!(attr_str(&must_entity(s, &a), "line1"), None);
    // The erasure is itself a recorded change; the chain still verifies and replays.
    assert_eq!(s.history(&p).unwrap().last().unwrap().seq, erased.seq);
    assert!(verify(t.path(), |_| {}).unwrap().ok);
    let digest = s.digest().unwrap();
    assert_eq!(s.replay_digest(|_| {}).unwrap(), digest);
    assert_eq!(s.rebuild(|_| {}).unwrap(), digest);
    assert!(s.search(SearchKey::FamilyName, FAMILY).unwrap().is_empty());
    // Erased entities take no more changes, and are not erased twice.
    assert!(matches!(
        must_reject(s, tx(vec![ChangeRequest::update(ent(&p)).with("family_name", FAMILY)])),
        Rejection::Invalid { change_idx: 0, .. }
    ));
    assert!(matches!(
        must_reject(s, tx(vec![op(ent(&p), OpRequest::Erase { reason: "again".into() })])),
        Rejection::Invalid { change_idx: 0, .. }
    ));
    // The address went with the person, so no file holds any of their identifiable values.
    t.close();
    for needle in needles() {
        let found = files_containing(t.path(), needle.as_bytes());
        assert!(found.is_empty(), "{needle:?} is stored in plaintext in {found:?}");
    }
    assert!(verify(t.path(), |_| {}).unwrap().ok);
    // After a restart the values stay gone.
    let s = t.reopen();
    let state = must_entity(s, &p);
    assert_eq!(attr(&state, "family_name"), None);
    contains_none("the history after a restart", &serde_json::to_string(&s.history(&p).unwrap()).unwrap());
    assert!(s.find_by_identifier(&ident("nhs-number", NHS)).unwrap().is_empty());
}

#[test]
fn erasing_a_person_erases_the_addresses_that_exist_only_for_them() {
    let t = TempStore::memory();
    let s = t.store();
    let c = must_commit(
        s,
        tx(vec![
            person("p", "Ash", "Ann"),
            person("q", "Birch", "Bob"),
            address("old", "1 Former Row", "LS2 7AA"),
            address("home", "2 Current Close", "LS3 8BB"),
            address("shared", "3 Family House", "LS4 9CC"),
            ChangeRequest::create("cs", "care_setting").with("name", "Oak Lodge"),
            ChangeRequest::link(rf("p"), "resides_at", rf("old")),
            ChangeRequest::link(rf("p"), "resides_at", rf("home")),
            ChangeRequest::link(rf("p"), "resides_at", rf("shared")),
            ChangeRequest::link(rf("q"), "resides_at", rf("shared")),
            ChangeRequest::link(rf("p"), "resides_at", rf("cs")),
        ]),
    );
    let r = |name: &str| c.refs[name].clone();
    // A move: the former address's link ended, but the address is theirs alone still.
    must_commit(s, tx(vec![unlink(ent(&r("p")), "resides_at", ent(&r("old")))]));
    let erased =
        must_commit(s, national(vec![op(ent(&r("p")), OpRequest::Erase { reason: "erasure request 9".into() })]));
    assert_eq!(erased.changes, 3, "the person, the former and the current address");
    for name in ["p", "old", "home"] {
        assert_eq!(must_entity(s, &r(name)).status, Status::Erased, "{name}");
    }
    for name in ["q", "shared", "cs"] {
        assert_eq!(must_entity(s, &r(name)).status, Status::Active, "{name}: linked from another, or not identifiable");
    }
    for postcode in ["LS2 7AA", "LS3 8BB"] {
        assert!(s.search(SearchKey::Postcode, postcode).unwrap().is_empty(), "{postcode} is still searchable");
    }
    assert_eq!(s.search(SearchKey::Postcode, "LS4 9CC").unwrap(), vec![r("shared")]);
    assert_eq!(attr(&must_entity(s, &r("home")), "line1"), None, "the address's values are unreadable");
}

#[test]
fn erased_values_cannot_be_recovered_from_their_blind_index_tokens() {
    // The blind index tokens of an erased person's values stay in the journal and the
    // projections after erasure, keyed with the store-wide index key kept beside them in
    // `keys/vault`. Anyone holding the data directory can then confirm or enumerate an erased
    // birth date (tens of thousands of candidates) or NHS number (under 10^9): erasure must
    // make these tokens unreadable too.
    let mut t = TempStore::memory();
    let (p, _, _) = commit_distinctive_person(t.store());
    must_commit(t.store(), tx(vec![op(ent(&p), OpRequest::Erase { reason: "erasure request 42".into() })]));
    t.close();
    let vault = fs::read(t.path().join("keys").join("vault")).unwrap();
    let index_key: [u8; 32] = vault[8..40].try_into().unwrap();
    let tokens = [
        ("birth_date", pole_store::vault::blind_token(&index_key, "birth_date", BIRTH).unwrap()),
        ("nhs-number", pole_store::vault::blind_token(&index_key, "nhs-number", NHS).unwrap()),
        (
            "family_name",
            pole_store::vault::blind_token(&index_key, "family_name", &SearchKey::FamilyName.normalise(FAMILY))
                .unwrap(),
        ),
    ];
    for (what, token) in tokens {
        let found = files_containing(t.path(), token.as_bytes());
        assert!(found.is_empty(), "the erased {what}'s index token is still in {found:?}");
    }
}

/// Writes `batch` straight into a closed store's projections, as an older pole-ods (or
/// damage) would have left them.
fn write_projections(t: &TempStore, batch: pole_store::WriteBatch) {
    use pole_store::{Backend, BackendKind, RedbBackend, SledBackend};
    let backend: Box<dyn Backend> = match t.backend {
        BackendKind::Redb => Box::new(RedbBackend::open(&t.path().join("projections.redb"), 1 << 20).unwrap()),
        _ => Box::new(SledBackend::open(&t.path().join("projections"), 1 << 20).unwrap()),
    };
    backend.apply(batch).unwrap();
    backend.flush().unwrap();
}

#[test]
fn the_opt_out_index_follows_the_current_state_and_is_rebuilt_for_older_projections() {
    use pole_store::WriteBatch;
    let mut t = TempStore::on_disk();
    let id = must_create(t.store(), person("p", "Ash", "Ann").with("opted_out", true));
    assert!(t.store().opted_out(&id).unwrap());
    must_commit(t.store(), tx(vec![ChangeRequest::update(ent(&id)).with("opted_out", false)]));
    assert!(!t.store().opted_out(&id).unwrap(), "withdrawing the objection lifts it");
    must_commit(t.store(), tx(vec![ChangeRequest::update(ent(&id)).with("opted_out", true)]));
    assert!(t.store().opted_out(&id).unwrap());
    let digest = t.store().digest().unwrap();
    t.close();
    // Projections from before the index existed: no index entry and no format marker.
    let mut batch = WriteBatch::default();
    batch.delete(pole_store::keys::opted_out(&id));
    batch.delete(pole_store::keys::PROJECTION_FORMAT.to_vec());
    write_projections(&t, batch);
    let s = t.reopen();
    assert!(s.opted_out(&id).unwrap(), "older projections are rebuilt on open");
    assert_eq!(s.digest().unwrap(), digest);
}

#[test]
fn projections_of_format_3_with_uncompressed_states_are_rebuilt_not_misread() {
    use pole_store::WriteBatch;
    let mut t = TempStore::on_disk();
    let id = must_create(t.store(), person("p", "Ash", "Ann"));
    let before = must_entity(t.store(), &id);
    let digest = t.store().digest().unwrap();
    t.close();
    // Format 3 kept states as plain MessagePack, which the LZ4 reader cannot read.
    let mut batch = WriteBatch::default();
    batch.put(pole_store::keys::PROJECTION_FORMAT.to_vec(), 3u32.to_be_bytes().to_vec());
    batch.put(pole_store::keys::entity(&id), b"\x8a\xa2id\xb1not a compressed state".to_vec());
    write_projections(&t, batch);
    let s = t.reopen();
    assert_eq!(must_entity(s, &id), before, "the state is rebuilt from the journal");
    assert_eq!(s.digest().unwrap(), digest);
}

/// A transaction of the dry-run test, naming earlier-created entities through `ids` (the
/// ids a dry run or a commit gave the refs of earlier transactions).
fn dry_run_step(
    step: usize,
    stored: &pole_model::EntityId,
    ids: &BTreeMap<String, pole_model::EntityId>,
) -> pole_store::TransactionRequest {
    let q = || ent(&ids["q"]);
    tx(match step {
        // Asks for what is already so.
        0 => vec![ChangeRequest::update(ent(stored)).with("family_name", "Stored")],
        // A new person (sealed values, an NHS number) living at a new address.
        1 => vec![
            person("q", "Dry", "Quinn").with_identifier("nhs-number", "9434765919"),
            address("a", "1 Dry Row", "LS1 4AP"),
            ChangeRequest::link(rf("q"), "resides_at", rf("a")),
        ],
        // Changes the new person, judged against what step 1 made.
        2 => vec![ChangeRequest::update(q()).with("given_name", "Quincy")],
        // Asks again for what step 2 made so.
        3 => vec![ChangeRequest::update(q()).with("given_name", "Quincy").with("family_name", "Dry")],
        // No such entity.
        4 => vec![ChangeRequest::update(ent(&pole_model::EntityId::new("01J00000000000000000000000").unwrap()))
            .with("given_name", "X")],
        // Moves the new person out, ending step 1's link.
        _ => vec![unlink(q(), "resides_at", ent(&ids["a"]))],
    })
}

#[test]
fn a_dry_run_judges_each_transaction_as_a_commit_would_and_stores_nothing() {
    let t = TempStore::memory();
    let s = t.store();
    let stored = must_create(s, person("p", "Stored", "Person"));
    let (head, digest, stats) = (s.head(), s.digest().unwrap(), s.stats().unwrap());

    let mut dry_run = s.dry_run();
    let mut ids = BTreeMap::new();
    let mut judged = Vec::new();
    for step in 0..6 {
        match dry_run.judge(&dry_run_step(step, &stored, &ids)).unwrap() {
            Ok(answer) => {
                ids.extend(answer.refs);
                judged.push(Some(answer.changes));
            }
            Err(rejection) => {
                assert!(matches!(rejection, Rejection::OutOfScope { .. }), "step {step}: {rejection}");
                judged.push(None);
            }
        }
    }
    // The writer's rule for idempotency keys holds in a dry run too.
    let mut keyed = dry_run_step(0, &stored, &ids);
    keyed.idempotency_key = Some("k".repeat(300));
    let refused = dry_run.judge(&keyed).unwrap().unwrap_err();
    assert!(refused.to_string().contains("1 to 256 characters"), "{refused}");
    drop(dry_run);
    assert_eq!(judged, vec![Some(0), Some(3), Some(1), Some(0), None, Some(1)]);
    assert_eq!((s.head(), s.digest().unwrap(), s.stats().unwrap()), (head, digest, stats), "a dry run stores nothing");
    assert!(s.find_by_identifier(&ident("nhs-number", "9434765919")).unwrap().is_empty());

    // The same transactions committed: the same answers.
    let mut ids = BTreeMap::new();
    let mut committed = Vec::new();
    for step in 0..6 {
        match s.commit(dry_run_step(step, &stored, &ids)).unwrap() {
            Ok(answer) => {
                ids.extend(answer.refs);
                committed.push(Some(answer.changes));
            }
            Err(_) => committed.push(None),
        }
    }
    assert_eq!(committed, judged);
    assert_eq!(s.find_by_identifier(&ident("nhs-number", "9434765919")).unwrap(), vec![ids["q"].clone()]);
}
