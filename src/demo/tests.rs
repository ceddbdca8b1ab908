//! The generator against a fake store that checks every change against the default schema,
//! assigns ids the way the real store would, and refuses transactions with invalid NHS
//! numbers as the real store does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use pole_model::{default_registry, EntityId, Kind, SchemaRegistry, Timestamp, ValueType};
use pole_store::{OpRequest, Rejection, Target, TransactionRequest};
use serde_json::Value;

use super::sim::END;
use super::*;

#[derive(Debug)]
struct Entity {
    kind: Kind,
    entity_type: String,
    created_valid: Option<Timestamp>,
}

struct FakeStore {
    registry: SchemaRegistry,
    entities: HashMap<EntityId, Entity>,
    links: BTreeSet<(EntityId, String, EntityId)>,
    next_id: u64,
    /// Values outside their code list in non-strict attributes, in committed transactions.
    local_codes: u64,
}

/// What a change names, for checks that need its type.
enum Named {
    Stored(EntityId),
    Local(String),
}

impl Named {
    fn key(&self) -> String {
        match self {
            Named::Stored(id) => format!("id:{id}"),
            Named::Local(name) => format!("ref:{name}"),
        }
    }
}

impl FakeStore {
    fn new() -> Self {
        FakeStore {
            registry: default_registry().unwrap(),
            entities: HashMap::new(),
            links: BTreeSet::new(),
            next_id: 0,
            local_codes: 0,
        }
    }

    fn fake_id(&mut self) -> EntityId {
        self.next_id += 1;
        EntityId::new(format!("01HZ{:022}", self.next_id)).unwrap()
    }

    fn latest_valid_time() -> Timestamp {
        Timestamp::from_date(END.succ_opt().unwrap().succ_opt().unwrap())
    }

    /// Checks every change (panicking on any generator bug) and commits, or refuses the
    /// transaction when it carries an NHS number failing its check.
    fn submit(&mut self, tx: &TransactionRequest) -> Result<BTreeMap<String, EntityId>, Rejection> {
        assert!(!tx.changes.is_empty(), "empty transaction");
        assert_eq!(tx.actor, "demo");
        let admin = tx.role == "admin";
        assert!(admin || tx.role == "council", "role {}", tx.role);
        assert_eq!(tx.source.council.is_some(), !admin, "council named exactly for council submissions");
        assert!(tx.source.system.is_some() && tx.source.batch.is_some() && tx.source.file.is_some());

        let mut local: BTreeMap<String, Entity> = BTreeMap::new();
        // Links as they stand at this point of the transaction, on top of the committed ones.
        let mut added: BTreeMap<(String, String, String), (Named, Named)> = BTreeMap::new();
        let mut removed: BTreeSet<(EntityId, String, EntityId)> = BTreeSet::new();
        let mut invalid_nhs = None;
        let mut local_codes = 0;
        for (idx, change) in tx.changes.iter().enumerate() {
            if admin {
                assert!(change.valid_time.is_none(), "reference data uses recorded time: {change:?}");
            } else {
                let valid =
                    change.valid_time.unwrap_or_else(|| panic!("council change without valid time: {change:?}"));
                assert!(valid <= Self::latest_valid_time(), "valid time in the future: {change:?}");
            }
            let target = self.named(&change.target);
            match &change.op {
                OpRequest::Create { entity_type, set, identifiers } => {
                    let Target::Ref(name) = &change.target else { panic!("create of an id") };
                    assert!(!local.contains_key(name), "ref {name} created twice");
                    let def = self.registry.type_def(entity_type).unwrap_or_else(|e| panic!("{e}"));
                    for (attr, adef) in &def.attributes {
                        assert!(!adef.required || set.contains_key(attr), "{entity_type}: required {attr} missing");
                    }
                    local_codes += self.check_attributes(entity_type, set);
                    for identifier in identifiers {
                        if let Err(e) = self.registry.check_identifier(identifier) {
                            assert_eq!(identifier.system, "nhs-number", "{e}");
                            invalid_nhs = Some((idx, e.to_string()));
                        }
                    }
                    local.insert(
                        name.clone(),
                        Entity { kind: def.kind, entity_type: entity_type.clone(), created_valid: change.valid_time },
                    );
                }
                OpRequest::Update { set, unset, add_identifiers, remove_identifiers } => {
                    assert!(unset.is_empty() && remove_identifiers.is_empty());
                    let entity = self.entity(&target, &local);
                    let entity_type = entity.entity_type.clone();
                    self.check_not_before_create(entity, change.valid_time, change);
                    local_codes += self.check_attributes(&entity_type, set);
                    for identifier in add_identifiers {
                        self.registry.check_identifier(identifier).unwrap_or_else(|e| panic!("{e}"));
                    }
                }
                OpRequest::Link { role, to, .. } => {
                    let to = self.named(to);
                    let from_entity = self.entity(&target, &local);
                    self.check_not_before_create(from_entity, change.valid_time, change);
                    let to_entity = self.entity(&to, &local);
                    self.registry
                        .check_link(
                            role,
                            (from_entity.kind, &from_entity.entity_type),
                            (to_entity.kind, &to_entity.entity_type),
                        )
                        .unwrap_or_else(|e| panic!("{e}"));
                    if let (Named::Stored(from), Named::Stored(to)) = (&target, &to) {
                        removed.remove(&(from.clone(), role.clone(), to.clone()));
                    }
                    added.insert((target.key(), role.clone(), to.key()), (target, to));
                }
                OpRequest::Unlink { role, to } => {
                    let (Named::Stored(from), Named::Stored(to_id)) = (&target, self.named(to)) else {
                        panic!("unlink of an entity created in the same transaction")
                    };
                    let stored = (from.clone(), role.clone(), to_id.clone());
                    let key = (target.key(), role.clone(), Named::Stored(to_id).key());
                    let exists =
                        added.remove(&key).is_some() || self.links.contains(&stored) && !removed.contains(&stored);
                    assert!(exists, "unlink of a missing link: {change:?}");
                    removed.insert(stored);
                }
                other => panic!("unexpected op {}", other.name()),
            }
        }
        if let Some((change_idx, reason)) = invalid_nhs {
            return Err(Rejection::Invalid {
                change_idx,
                op: "create".into(),
                entity: "ref".into(),
                field: Some("nhs-number".into()),
                reason,
            });
        }
        let mut refs = BTreeMap::new();
        for (name, entity) in local {
            let id = self.fake_id();
            self.entities.insert(id.clone(), entity);
            refs.insert(name, id);
        }
        let resolve = |named: Named| match named {
            Named::Stored(id) => id,
            Named::Local(name) => refs[&name].clone(),
        };
        for link in removed {
            self.links.remove(&link);
        }
        for ((_, role, _), (from, to)) in added {
            self.links.insert((resolve(from), role, resolve(to)));
        }
        self.local_codes += local_codes;
        Ok(refs)
    }

    fn named(&self, target: &Target) -> Named {
        match target {
            Target::Entity(id) => {
                assert!(self.entities.contains_key(id), "unknown entity {id}");
                Named::Stored(id.clone())
            }
            Target::Ref(name) => Named::Local(name.clone()),
        }
    }

    fn entity<'a>(&'a self, named: &Named, local: &'a BTreeMap<String, Entity>) -> &'a Entity {
        match named {
            Named::Stored(id) => &self.entities[id],
            Named::Local(name) => local.get(name).unwrap_or_else(|| panic!("ref {name} used before its create")),
        }
    }

    /// Nothing about an entity is dated before its create, so a valid-time read never
    /// meets a change to an entity that did not exist yet.
    fn check_not_before_create(&self, entity: &Entity, valid: Option<Timestamp>, change: &impl std::fmt::Debug) {
        if let (Some(created), Some(valid)) = (entity.created_valid, valid) {
            assert!(valid >= created, "change dated before its entity's create: {change:?}");
        }
    }

    /// Checks each attribute value; returns how many are local codes of non-strict lists.
    fn check_attributes(&self, entity_type: &str, set: &BTreeMap<String, Value>) -> u64 {
        let mut local = 0;
        for (attr, value) in set {
            self.registry.check_value(entity_type, attr, value).unwrap_or_else(|e| panic!("{entity_type}.{attr}: {e}"));
            let def = self.registry.attribute(entity_type, attr).unwrap();
            if def.value_type == ValueType::Code {
                let list = self.registry.code_list(def.code_list.as_deref().unwrap()).unwrap();
                if !list.contains(value.as_str().unwrap()) {
                    assert!(!def.strict);
                    local += 1;
                }
            }
        }
        local
    }
}

struct Run {
    requests: Vec<TransactionRequest>,
    stats: DemoStats,
    emitted: u64,
    store: FakeStore,
}

/// Runs the generator to the end against the fake store.
fn run(changes: u64, seed: u64, keep: bool) -> Run {
    let mut generator = DemoGenerator::new(DemoConfig { changes, seed });
    let mut store = FakeStore::new();
    let mut requests = Vec::new();
    let mut awaiting_resubmission: Option<TransactionRequest> = None;
    while let Some(tx) = generator.next_transaction() {
        if let Some(rejected) = awaiting_resubmission.take() {
            assert_eq!(tx.changes.len(), rejected.changes.len(), "resubmission keeps every change");
            assert!(tx.reason.is_some());
            assert_ne!(tx.idempotency_key, rejected.idempotency_key);
        }
        match store.submit(&tx) {
            Ok(refs) => generator.committed(&refs),
            Err(rejection) => {
                generator.rejected(&rejection);
                awaiting_resubmission = Some(tx.clone());
            }
        }
        if keep {
            requests.push(tx);
        }
    }
    assert!(awaiting_resubmission.is_none(), "a rejected transaction was never resubmitted");
    Run { requests, stats: generator.stats().clone(), emitted: generator.changes_emitted(), store }
}

#[test]
fn same_seed_gives_identical_requests() {
    let a = run(3000, 42, true);
    let b = run(3000, 42, true);
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.stats, b.stats);
}

#[test]
fn different_seeds_differ() {
    let a = run(3000, 1, true);
    let b = run(3000, 2, true);
    assert_ne!(a.requests, b.requests);
}

#[test]
fn change_count_is_close_to_the_target() {
    for target in [1_000u64, 50_000] {
        let r = run(target, 7, true);
        let total: u64 = r.requests.iter().map(|t| t.changes.len() as u64).sum();
        assert_eq!(total, r.emitted);
        let off = r.emitted.abs_diff(target) as f64 / target as f64;
        assert!(off < 0.04, "{} changes for a target of {target}", r.emitted);
        assert_eq!(r.stats.transactions, r.requests.len() as u64);
    }
}

#[test]
fn every_change_validates_and_the_defects_appear() {
    let r = run(50_000, 2024, true);
    let s = &r.stats;
    assert_eq!(s.unexpected_rejections, 0, "{:?}", s.last_unexpected_rejection);
    assert!(s.nhs_numbers_invalid_submitted > 0, "{s:?}");
    assert_eq!(s.transactions_rejected, s.resubmissions);
    assert!(s.resubmissions > 0 && s.resubmissions <= s.nhs_numbers_invalid_submitted);
    assert_eq!(s.transactions_committed + s.transactions_rejected, s.transactions);
    assert!(s.nhs_numbers_missing > 0);
    assert!(s.nhs_numbers_traced > 0);
    assert!(s.local_codes_used > 0);
    assert_eq!(s.local_codes_used, r.store.local_codes, "local codes counted as the store sees them");
    assert!(s.duplicates_across_councils > 0);
    assert!(s.late_recorded_changes > 0);
    assert!(s.out_of_order_updates > 0);
    assert!(s.name_corrections > 0);
    assert_eq!(s.councils, 6);
    for (name, n) in [
        ("providers", s.providers),
        ("care settings", s.care_settings),
        ("hospitals", s.hospitals),
        ("clients", s.clients),
        ("carers", s.carers),
        ("moves", s.moves),
        ("contacts", s.contacts),
        ("referrals", s.referrals),
        ("assessments", s.assessments),
        ("services", s.services),
        ("reviews", s.reviews),
        ("concerns", s.safeguarding_concerns),
        ("allegations", s.allegations),
        ("admissions", s.hospital_admissions),
        ("discharges", s.hospital_discharges),
        ("deaths", s.deaths),
        ("updates", s.updates),
    ] {
        assert!(n > 0, "no {name}: {s:?}");
    }
    assert!(s.allegations >= s.safeguarding_concerns);
    // Transactions are file-sized: most between 5 and 60 changes.
    let council: Vec<usize> = r.requests.iter().filter(|t| t.role == "council").map(|t| t.changes.len()).collect();
    let typical = council.iter().filter(|n| (5..=60).contains(*n)).count();
    assert!(typical * 10 >= council.len() * 8, "{typical} of {} typical", council.len());
}

#[test]
fn the_same_person_is_recorded_by_two_councils() {
    let r = run(20_000, 99, true);
    // (given, family, birth date, nhs number) -> councils that created a person with them.
    let mut seen: HashMap<(String, String, String, String), BTreeSet<String>> = HashMap::new();
    for tx in &r.requests {
        for change in &tx.changes {
            if let OpRequest::Create { entity_type, set, identifiers } = &change.op {
                let nhs = identifiers.iter().find(|i| i.system == "nhs-number");
                if let (true, Some(nhs)) = (entity_type == "person", nhs) {
                    let field = |k: &str| set.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                    let key = (field("given_name"), field("family_name"), field("birth_date"), nhs.value.clone());
                    seen.entry(key).or_default().insert(tx.source.council.clone().unwrap_or_default());
                }
            }
        }
    }
    assert!(seen.values().any(|councils| councils.len() >= 2));
}

#[test]
fn works_when_no_outcome_is_reported() {
    let mut generator = DemoGenerator::new(DemoConfig { changes: 2_000, seed: 5 });
    let mut n = 0;
    while let Some(tx) = generator.next_transaction() {
        n += 1;
        // Nothing committed, so nothing may be named by id.
        assert!(tx.changes.iter().all(|c| matches!(c.target, Target::Ref(_))));
    }
    assert!(n > 0);
    assert!(generator.changes_emitted() >= 2_000);
}

#[test]
fn requests_round_trip_through_json() {
    let r = run(1_000, 3, true);
    let tx = r.requests.iter().find(|t| t.role == "council").unwrap();
    let json = serde_json::to_string_pretty(tx).unwrap();
    let back: TransactionRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, tx);
}

#[test]
fn zero_changes_emits_nothing() {
    let mut generator = DemoGenerator::new(DemoConfig { changes: 0, seed: 1 });
    assert!(generator.next_transaction().is_none());
    assert_eq!(generator.changes_emitted(), 0);
}

#[test]
fn loads_into_the_real_store() {
    let dir = tempfile::tempdir().unwrap();
    let options = pole_store::StoreOptions { backend: pole_store::BackendKind::Memory, ..Default::default() };
    let store = pole_store::Store::open(dir.path(), options).unwrap();
    let mut generator = DemoGenerator::new(DemoConfig { changes: 5_000, seed: 8 });
    while let Some(request) = generator.next_transaction() {
        match store.commit(request).unwrap() {
            Ok(committed) => generator.committed(&committed.refs),
            Err(rejection) => generator.rejected(&rejection),
        }
    }
    let stats = generator.stats();
    assert_eq!(stats.unexpected_rejections, 0, "{:?}", stats.last_unexpected_rejection);
    assert_eq!(stats.transactions_rejected, stats.resubmissions);
    assert_eq!(store.stats().unwrap().transactions, stats.transactions_committed);
    store.close().unwrap();
}
