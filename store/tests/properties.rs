#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests: random sequences of transactions (creates, updates setting and unsetting
//! attributes and identifiers, links and unlinks, some valid in the past, some expecting a
//! version that may conflict, some refused, some resubmitted under an idempotency key)
//! checked three ways:
//! (a) the live projections equal the ones rebuilt and replayed from the journal;
//! (b) reading as of every sequence equals what was read right after it was committed;
//! (c) the store agrees with a simple model of attributes, identifiers, links and versions.
//!
//! Minimised failures are kept as regression tests at the end of the file.

mod fixtures;

use std::collections::{BTreeMap, BTreeSet};

use fixtures::*;
use pole_model::{EntityId, EntityState, SearchKey, Timestamp};
use pole_store::{verify, AsOf, BackendKind, ChangeRequest, Committed, LinkView, OpRequest, ReadAt, Rejection, Target};
use proptest::prelude::*;
use serde_json::{json, Value};

// ------------------------------------------------------------------ the generated world

struct AttrSpec {
    name: &'static str,
    required: bool,
    /// Values the schema accepts.
    values: Vec<Value>,
    /// A value it refuses, if the attribute has one.
    bad: Option<Value>,
}

/// Generated value indices at or above this pick the attribute's bad value.
const BAD: usize = 99;

impl AttrSpec {
    /// The value a generated index picks, and whether the schema accepts it.
    fn value(&self, n: usize) -> (Value, bool) {
        match (&self.bad, n >= BAD) {
            (Some(bad), true) => (bad.clone(), false),
            _ => (self.values[n % self.values.len()].clone(), true),
        }
    }
}

struct IdentSpec {
    system: &'static str,
    value: &'static str,
    normalised: &'static str,
}

struct TypeSpec {
    name: &'static str,
    attrs: Vec<AttrSpec>,
    idents: Vec<IdentSpec>,
    /// The search key that indexes `attrs[0]`, if any.
    search: Option<SearchKey>,
}

const PERSON: usize = 0;
const ADDRESS: usize = 1;
const CONTACT: usize = 2;

fn types() -> Vec<TypeSpec> {
    let a = |name, required, values: &[Value], bad: Option<Value>| AttrSpec {
        name,
        required,
        values: values.to_vec(),
        bad,
    };
    let i = |system, value, normalised| IdentSpec { system, value, normalised };
    vec![
        TypeSpec {
            name: "person",
            attrs: vec![
                a("family_name", false, &[json!("Smith"), json!("Jones"), json!("O'Brien")], None),
                a("given_name", false, &[json!("Ann"), json!("Bob")], Some(json!(""))),
                a("gender", false, &[json!("0"), json!("1"), json!("2"), json!("9")], Some(json!("X"))),
                a("opted_out", false, &[json!(true), json!(false)], Some(json!("yes"))),
                a("birth_date", false, &[json!("1950-01-02"), json!("1960-03-04")], Some(json!("02/01/1950"))),
            ],
            idents: vec![
                i("council:305:client", "c1", "c1"),
                i("council:305:client", "c2", "c2"),
                i("nhs-number", "9434765919", "9434765919"),
                i("nhs-number", "943 476 5919", "9434765919"),
                i("nhs-number", "9434765927", "9434765927"),
            ],
            search: Some(SearchKey::FamilyName),
        },
        TypeSpec {
            name: "address",
            attrs: vec![
                a("postcode", false, &[json!("LS1 4AP"), json!("YO1 7HH")], None),
                a("line1", false, &[json!("1 High St"), json!("2 Low Rd")], Some(json!(12))),
                a("town", false, &[json!("Leeds"), json!("York")], None),
            ],
            idents: vec![i("uprn", "100023336956", "100023336956"), i("uprn", "200", "200")],
            search: Some(SearchKey::Postcode),
        },
        TypeSpec {
            name: "contact",
            attrs: vec![
                a("contact_date", true, &[json!("2024-01-01"), json!("2024-02-02")], Some(json!("2024-13-01"))),
                a("contact_source", false, &[json!("phone"), json!("letter")], None),
                a("outcome", false, &[json!("ok"), json!("nfa")], Some(json!(7))),
            ],
            idents: vec![i("council:305:event", "e1", "e1"), i("council:305:event", "e2", "e2")],
            search: None,
        },
    ]
}

struct LinkSpec {
    role: &'static str,
    from: usize,
    to: usize,
    allowed: bool,
}

fn link_specs() -> Vec<LinkSpec> {
    let l = |role, from, to, allowed| LinkSpec { role, from, to, allowed };
    vec![
        l("resides_at", PERSON, ADDRESS, true),
        l("subject", CONTACT, PERSON, true),
        l("carer_of", PERSON, PERSON, true),
        l("occurred_at", CONTACT, ADDRESS, true),
        l("subject", ADDRESS, PERSON, false),
    ]
}

type Period = (Option<Timestamp>, Option<Timestamp>);

fn periods() -> [Period; 3] {
    [(None, None), (Some(ts("2020-01-01")), Some(ts("2022-01-01"))), (Some(ts("2021-01-01")), None)]
}

fn past(days: u16) -> Timestamp {
    ts("2020-01-01").plus_days(i64::from(days))
}

/// One generated operation; indices are taken modulo whatever exists when it runs.
#[derive(Debug, Clone)]
enum Op {
    Create {
        ty: usize,
        set: Vec<(usize, usize)>,
        idents: Vec<usize>,
        dated: bool,
    },
    Update {
        target: usize,
        set: Vec<(usize, usize)>,
        /// Attributes to unset, among those that are not required.
        unset: Vec<usize>,
        /// Also unset a required attribute (refused).
        unset_required: bool,
        add: Vec<usize>,
        /// `(true, n)` removes the entity's n-th identifier, `(false, n)` any of its type.
        remove: Vec<(bool, usize)>,
        valid_days: Option<u16>,
        expect: Option<bool>,
    },
    Link {
        spec: usize,
        from: usize,
        to: usize,
        period: usize,
        valid_days: Option<u16>,
        expect: Option<bool>,
    },
    /// `existing` removes one of the links that exist, otherwise any pair (often refused).
    Unlink {
        existing: bool,
        spec: usize,
        from: usize,
        to: usize,
        valid_days: Option<u16>,
    },
}

#[derive(Debug, Clone)]
struct TxPlan {
    ops: Vec<Op>,
    /// Commit under an idempotency key, then resubmit it.
    resubmit: bool,
}

fn arb_value() -> impl Strategy<Value = usize> {
    prop_oneof![30 => 0..6usize, 1 => Just(BAD)]
}

/// Days after 2020-01-01 (always before now), with probability `p`.
fn arb_valid_days(p: f64) -> impl Strategy<Value = Option<u16>> {
    prop::option::weighted(p, 0..1500u16)
}

fn arb_expect() -> impl Strategy<Value = Option<bool>> {
    prop::option::weighted(0.2, prop::bool::weighted(0.7))
}

fn arb_op() -> impl Strategy<Value = Op> {
    let pairs = || prop::collection::vec((0..6usize, arb_value()), 0..4);
    prop_oneof![
        2 => (0..3usize, pairs(), prop::collection::vec(0..5usize, 0..3), prop::bool::weighted(0.3))
            .prop_map(|(ty, set, idents, dated)| Op::Create { ty, set, idents, dated }),
        5 => (
            any::<usize>(),
            pairs(),
            (prop::collection::vec(0..6usize, 0..2), prop::bool::weighted(0.02)),
            prop::collection::vec(0..5usize, 0..2),
            prop::collection::vec((prop::bool::weighted(0.9), 0..5usize), 0..2),
            arb_valid_days(0.4),
            arb_expect(),
        )
            .prop_map(|(target, set, (unset, unset_required), add, remove, valid_days, expect)| Op::Update {
                target,
                set,
                unset,
                unset_required,
                add,
                remove,
                valid_days,
                expect,
            }),
        3 => (
            prop_oneof![12 => 0..4usize, 1 => Just(4usize)],
            any::<usize>(),
            any::<usize>(),
            0..3usize,
            arb_valid_days(0.2),
            arb_expect(),
        )
            .prop_map(|(spec, from, to, period, valid_days, expect)| Op::Link {
                spec,
                from,
                to,
                period,
                valid_days,
                expect,
            }),
        1 => (prop::bool::weighted(0.9), 0..4usize, any::<usize>(), any::<usize>(), arb_valid_days(0.2))
            .prop_map(|(existing, spec, from, to, valid_days)| Op::Unlink { existing, spec, from, to, valid_days }),
    ]
}

fn arb_plans(max_txs: usize) -> impl Strategy<Value = Vec<TxPlan>> {
    prop::collection::vec(
        (prop::collection::vec(arb_op(), 1..4), prop::bool::weighted(0.1))
            .prop_map(|(ops, resubmit)| TxPlan { ops, resubmit }),
        1..max_txs,
    )
}

// ------------------------------------------------------------------ the model

/// Fold order of a value: creates first, then valid time (past days, or "now" which is the
/// recorded time and so later than any past day and increasing with the sequence), then
/// sequence and position in the transaction.
type Key = (u8, u8, i64, u64, usize);

/// The fold position of a change that is not a create.
fn update_key(valid_days: Option<u16>, seq: u64, idx: usize) -> Key {
    match valid_days {
        Some(days) => (1, 0, i64::from(days), seq, idx),
        None => (1, 1, 0, seq, idx),
    }
}

#[derive(Debug, Clone)]
struct MEntity {
    ty: usize,
    id: Option<EntityId>,
    local_ref: String,
    version: u64,
    /// Every statement about each attribute: `Some(value)` set, `None` unset.
    attrs: BTreeMap<String, Log<Option<Value>>>,
    /// Every statement about each identifier: added or removed.
    idents: BTreeMap<(String, String), Log<bool>>,
    /// Link and unlink statements per `(role, far end)`: `Some(period)` linked, `None` unlinked.
    links: BTreeMap<(String, usize), Log<Option<Period>>>,
}

/// Statements about one field, each at its fold position; the greatest position wins.
type Log<T> = Vec<(Key, T)>;

impl MEntity {
    fn target(&self) -> Target {
        match &self.id {
            Some(id) => Target::Entity(id.clone()),
            None => Target::Ref(self.local_ref.clone()),
        }
    }

    fn attr(&self, name: &str) -> Option<Value> {
        self.attrs.get(name).and_then(|log| log.iter().max_by_key(|(k, _)| *k)).and_then(|(_, v)| v.clone())
    }

    fn attributes(&self) -> BTreeMap<String, Value> {
        self.attrs.keys().filter_map(|name| self.attr(name).map(|v| (name.clone(), v))).collect()
    }

    fn link(&self, role: &str, to: usize) -> Option<Period> {
        self.links.get(&(role.to_owned(), to)).and_then(|log| log.iter().max_by_key(|(k, _)| *k)).and_then(|(_, p)| *p)
    }

    fn current_links(&self) -> BTreeMap<(String, usize), Period> {
        self.links.keys().filter_map(|(role, to)| self.link(role, *to).map(|p| ((role.clone(), *to), p))).collect()
    }

    fn identifiers(&self) -> BTreeSet<(String, String)> {
        self.idents
            .iter()
            .filter(|(_, log)| log.iter().max_by_key(|(k, _)| *k).is_some_and(|(_, present)| *present))
            .map(|(ident, _)| ident.clone())
            .collect()
    }
}

/// What the model expects of a transaction.
#[derive(Debug, Clone, PartialEq)]
enum Predicted {
    Written(usize),
    Conflict(usize),
    Invalid(usize),
}

/// The outcome of one planned transaction, for the properties to look at.
struct Step {
    committed: Option<Committed>,
}

struct Harness {
    t: TempStore,
    types: Vec<TypeSpec>,
    links: Vec<LinkSpec>,
    model: Vec<MEntity>,
    /// Assert the store against the model (property c); otherwise the model only steers
    /// the generated operations towards entities that exist.
    strict: bool,
    /// Dated creates (valid 2000-01-01) only, so that "create first" and "valid time order"
    /// agree in the model.
    dated_creates: bool,
    n_keys: usize,
}

impl Harness {
    fn new(backend: BackendKind, strict: bool) -> Self {
        Harness {
            t: TempStore::new(backend),
            types: types(),
            links: link_specs(),
            model: Vec::new(),
            strict,
            dated_creates: strict,
            n_keys: 0,
        }
    }

    fn store(&self) -> &pole_store::Store {
        self.t.store()
    }

    /// Every entity the store has assigned an id.
    fn ids(&self) -> Vec<EntityId> {
        self.model.iter().filter_map(|e| e.id.clone()).collect()
    }

    fn pick(work: &[MEntity], ty: usize, n: usize) -> Option<usize> {
        let of_type: Vec<usize> = (0..work.len()).filter(|i| work[*i].ty == ty).collect();
        (!of_type.is_empty()).then(|| of_type[n % of_type.len()])
    }

    /// Builds the request for a plan and predicts its outcome.
    fn plan(&self, plan: &TxPlan, seq: u64) -> (Vec<ChangeRequest>, Vec<MEntity>, Predicted) {
        let mut work = self.model.clone();
        let mut changes = Vec::new();
        let mut written = 0;
        for op in &plan.ops {
            let idx = changes.len();
            let mut refused = None;
            match op {
                Op::Create { ty, set, idents, dated } => {
                    let ty = *ty % self.types.len();
                    let spec = &self.types[ty];
                    let local_ref = format!("e{}", work.len());
                    let mut values: BTreeMap<String, (Value, bool)> = BTreeMap::new();
                    for (a, v) in set {
                        let attr = &spec.attrs[a % spec.attrs.len()];
                        values.insert(attr.name.to_owned(), attr.value(*v));
                    }
                    for attr in spec.attrs.iter().filter(|a| a.required) {
                        values.entry(attr.name.to_owned()).or_insert_with(|| attr.value(0));
                    }
                    let mut change = ChangeRequest::create(&local_ref, spec.name);
                    for (name, (value, _)) in &values {
                        change = change.with(name.clone(), value.clone());
                    }
                    let mut entity = MEntity {
                        ty,
                        id: None,
                        local_ref,
                        version: 1,
                        attrs: BTreeMap::new(),
                        idents: BTreeMap::new(),
                        links: BTreeMap::new(),
                    };
                    let key = (0, 0, 0, seq, idx);
                    for i in idents {
                        let ident = &spec.idents[i % spec.idents.len()];
                        change = change.with_identifier(ident.system, ident.value);
                        entity.idents.insert((ident.system.into(), ident.normalised.into()), vec![(key, true)]);
                    }
                    if self.dated_creates || *dated {
                        change = change.valid_at(ts("2000-01-01"));
                    }
                    changes.push(change);
                    if values.values().any(|(_, valid)| !valid) {
                        refused = Some(Predicted::Invalid(idx));
                    } else {
                        for (name, (value, _)) in values {
                            entity.attrs.insert(name, vec![(key, Some(value))]);
                        }
                        work.push(entity);
                        written += 1;
                    }
                }
                Op::Update { target, set, unset, unset_required, add, remove, valid_days, expect } => {
                    if work.is_empty() {
                        continue;
                    }
                    let e = target % work.len();
                    let spec = &self.types[work[e].ty];
                    let mut change = ChangeRequest::update(work[e].target());
                    let mut values: BTreeMap<String, (Value, bool)> = BTreeMap::new();
                    for (a, v) in set {
                        let attr = &spec.attrs[a % spec.attrs.len()];
                        values.insert(attr.name.to_owned(), attr.value(*v));
                    }
                    for (name, (value, _)) in &values {
                        change = change.with(name.clone(), value.clone());
                    }
                    let optional: Vec<&AttrSpec> = spec.attrs.iter().filter(|a| !a.required).collect();
                    let mut unset: Vec<&AttrSpec> = unset
                        .iter()
                        .map(|a| optional[a % optional.len()])
                        .filter(|a| !values.contains_key(a.name))
                        .collect();
                    if *unset_required {
                        unset.extend(spec.attrs.iter().filter(|a| a.required));
                    }
                    let add: Vec<&IdentSpec> = add.iter().map(|i| &spec.idents[i % spec.idents.len()]).collect();
                    let present: Vec<(String, String)> = work[e].identifiers().into_iter().collect();
                    let remove: Vec<&IdentSpec> = remove
                        .iter()
                        .filter_map(|(from_present, n)| match (*from_present, present.get(n % present.len().max(1))) {
                            // Any spelling of the identifier the entity has (NHS numbers have two).
                            (true, Some((system, normal))) => {
                                let spellings: Vec<&IdentSpec> = spec
                                    .idents
                                    .iter()
                                    .filter(|i| i.system == system && i.normalised == normal)
                                    .collect();
                                Some(spellings[n / 7 % spellings.len()])
                            }
                            (true, None) => None,
                            (false, _) => Some(&spec.idents[n % spec.idents.len()]),
                        })
                        .collect();
                    if let OpRequest::Update { unset: u, add_identifiers, remove_identifiers, .. } = &mut change.op {
                        u.extend(unset.iter().map(|a| a.name.to_owned()));
                        add_identifiers.extend(add.iter().map(|i| ident(i.system, i.value)));
                        remove_identifiers.extend(remove.iter().map(|i| ident(i.system, i.value)));
                    }
                    if let Some(days) = valid_days {
                        change = change.valid_at(past(*days));
                    }
                    let version = work[e].version;
                    if let Some(right) = expect {
                        change = change.expecting(if *right { version } else { version + 1 });
                    }
                    changes.push(change);
                    // Predict, in the order the store checks.
                    if *expect == Some(false) {
                        refused = Some(Predicted::Conflict(idx));
                    } else if values.values().any(|(_, valid)| !valid) || unset.iter().any(|a| a.required) {
                        refused = Some(Predicted::Invalid(idx));
                    } else {
                        let entity = &mut work[e];
                        let before = entity.identifiers();
                        let mut after = before.clone();
                        for i in &remove {
                            if !after.remove(&(i.system.to_owned(), i.normalised.to_owned())) {
                                refused = Some(Predicted::Invalid(idx));
                            }
                        }
                        for i in &add {
                            after.insert((i.system.to_owned(), i.normalised.to_owned()));
                        }
                        if refused.is_none() {
                            let key = update_key(*valid_days, seq, idx);
                            let mut changed = false;
                            for (name, (value, _)) in values {
                                if entity.attr(&name).as_ref() != Some(&value) {
                                    entity.attrs.entry(name).or_default().push((key, Some(value)));
                                    changed = true;
                                }
                            }
                            for attr in unset {
                                if entity.attr(attr.name).is_some() {
                                    entity.attrs.entry(attr.name.to_owned()).or_default().push((key, None));
                                    changed = true;
                                }
                            }
                            for gone in before.difference(&after) {
                                entity.idents.entry(gone.clone()).or_default().push((key, false));
                                changed = true;
                            }
                            for new in after.difference(&before) {
                                entity.idents.entry(new.clone()).or_default().push((key, true));
                                changed = true;
                            }
                            if changed {
                                entity.version += 1;
                                written += 1;
                            }
                        }
                    }
                }
                Op::Link { spec, from, to, period, valid_days, expect } => {
                    let spec = &self.links[spec % self.links.len()];
                    let (Some(f), Some(t)) = (Self::pick(&work, spec.from, *from), Self::pick(&work, spec.to, *to))
                    else {
                        continue;
                    };
                    let period = periods()[*period];
                    let mut change = ChangeRequest::link(work[f].target(), spec.role, work[t].target())
                        .link_period(period.0, period.1);
                    if let Some(days) = valid_days {
                        change = change.valid_at(past(*days));
                    }
                    let version = work[f].version;
                    if let Some(right) = expect {
                        change = change.expecting(if *right { version } else { version + 1 });
                    }
                    changes.push(change);
                    if *expect == Some(false) {
                        refused = Some(Predicted::Conflict(idx));
                    } else if !spec.allowed {
                        refused = Some(Predicted::Invalid(idx));
                    } else if work[f].link(spec.role, t) != Some(period) {
                        let key = update_key(*valid_days, seq, idx);
                        work[f].links.entry((spec.role.to_owned(), t)).or_default().push((key, Some(period)));
                        work[f].version += 1;
                        written += 1;
                    }
                }
                Op::Unlink { existing, spec, from, to, valid_days } => {
                    let linked: Vec<(usize, String, usize)> = work
                        .iter()
                        .enumerate()
                        .flat_map(|(f, e)| e.current_links().into_keys().map(move |(role, t)| (f, role, t)))
                        .collect();
                    let (f, role, t) = if *existing && !linked.is_empty() {
                        linked[from % linked.len()].clone()
                    } else {
                        let spec = &self.links[spec % self.links.len()];
                        let (Some(f), Some(t)) = (Self::pick(&work, spec.from, *from), Self::pick(&work, spec.to, *to))
                        else {
                            continue;
                        };
                        (f, spec.role.to_owned(), t)
                    };
                    let mut change = unlink(work[f].target(), &role, work[t].target());
                    if let Some(days) = valid_days {
                        change = change.valid_at(past(*days));
                    }
                    changes.push(change);
                    if work[f].link(&role, t).is_some() {
                        let key = update_key(*valid_days, seq, idx);
                        work[f].links.entry((role, t)).or_default().push((key, None));
                        work[f].version += 1;
                        written += 1;
                    } else {
                        refused = Some(Predicted::Invalid(idx));
                    }
                }
            }
            if let Some(refused) = refused {
                return (changes, work, refused);
            }
        }
        (changes, work, Predicted::Written(written))
    }

    /// Runs one planned transaction against the store and the model.
    fn step(&mut self, plan: &TxPlan) -> Step {
        let store = self.store().clone();
        let head = store.head();
        let (changes, work, predicted) = self.plan(plan, head.seq + 1);
        if changes.is_empty() {
            return Step { committed: None };
        }
        let mut request = tx(changes);
        if plan.resubmit {
            self.n_keys += 1;
            request.idempotency_key = Some(format!("key-{}", self.n_keys));
        }
        let digest = store.digest().unwrap();
        match store.commit(request.clone()).unwrap() {
            Ok(committed) => {
                if self.strict {
                    assert_eq!(predicted, Predicted::Written(committed.changes), "committed: {committed:?}");
                }
                assert!(!committed.replayed);
                if committed.changes == 0 {
                    assert_eq!(committed.seq, head.seq, "a transaction of no-ops takes no sequence");
                    assert_eq!(store.head(), head);
                    assert_eq!(store.digest().unwrap(), digest);
                } else {
                    assert_eq!(committed.seq, head.seq + 1, "the next sequence, without a gap");
                    assert!(committed.recorded_at > head.recorded_at);
                    assert_eq!(store.head().seq, committed.seq);
                }
                self.model = work
                    .into_iter()
                    .filter_map(|mut e| {
                        if e.id.is_none() {
                            e.id = Some(committed.refs.get(&e.local_ref)?.clone());
                        }
                        Some(e)
                    })
                    .collect();
                if plan.resubmit && committed.changes > 0 {
                    let digest = store.digest().unwrap();
                    let again = store.commit(request.clone()).unwrap().expect("a resubmission is answered");
                    assert!(again.replayed);
                    assert_eq!((again.seq, again.hash, &again.refs), (committed.seq, committed.hash, &committed.refs));
                    assert_eq!(store.digest().unwrap(), digest);
                    let mut different = request;
                    different.reason = Some("changed my mind".into());
                    assert!(matches!(
                        store.commit(different).unwrap(),
                        Err(Rejection::IdempotencyKeyReused { seq, .. }) if seq == committed.seq
                    ));
                }
                Step { committed: Some(committed) }
            }
            Err(rejection) => {
                if self.strict {
                    match (&predicted, &rejection) {
                        (Predicted::Conflict(i), Rejection::Conflict { change_idx, .. })
                        | (Predicted::Invalid(i), Rejection::Invalid { change_idx, .. }) => {
                            assert_eq!(i, change_idx, "{rejection}")
                        }
                        _ => panic!("predicted {predicted:?}, the store refused: {rejection}"),
                    }
                }
                assert_eq!(store.head(), head, "a refused transaction moved the head");
                assert_eq!(store.digest().unwrap(), digest, "a refused transaction changed the projections");
                Step { committed: None }
            }
        }
    }

    /// Property (c): every entity reads as the model says, and the indexes agree.
    fn check_model(&self) {
        let store = self.store();
        for (n, e) in self.model.iter().enumerate() {
            let id = e.id.clone().unwrap();
            let state = must_entity(store, &id);
            let what = format!("entity #{n} ({}) {id}", self.types[e.ty].name);
            let attrs: BTreeMap<String, Value> =
                state.attributes.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
            assert_eq!(attrs, e.attributes(), "attributes of {what}");
            let mut idents: Vec<(String, String)> =
                state.identifiers.iter().map(|i| (i.identifier.system.clone(), i.identifier.value.clone())).collect();
            idents.sort();
            assert_eq!(idents, e.identifiers().into_iter().collect::<Vec<_>>(), "identifiers of {what}");
            let links: BTreeMap<(String, EntityId), Period> =
                state.links.iter().map(|l| ((l.role.clone(), l.to.clone()), (l.valid_from, l.valid_to))).collect();
            let expected: BTreeMap<(String, EntityId), Period> = e
                .current_links()
                .iter()
                .map(|((role, to), period)| ((role.clone(), self.model[*to].id.clone().unwrap()), *period))
                .collect();
            assert_eq!(links, expected, "links of {what}");
            let out: BTreeSet<(String, EntityId)> = store
                .links(&id, Some(pole_store::Direction::Out), None, ReadAt::NOW)
                .unwrap()
                .into_iter()
                .map(|v| (v.role, v.other))
                .collect();
            assert_eq!(out, expected.keys().cloned().collect(), "link index of {what}");
            assert_eq!(state.version, e.version, "version of {what}");
            // The lookup indexes.
            let spec = &self.types[e.ty];
            if let Some(key) = spec.search {
                let current = e.attr(spec.attrs[0].name);
                for value in &spec.attrs[0].values {
                    let found = store.search(key, value.as_str().unwrap()).unwrap().contains(&id);
                    assert_eq!(found, current.as_ref() == Some(value), "search {key:?} {value} for {what}");
                }
            }
            let present = e.identifiers();
            for i in &spec.idents {
                let found = store.find_by_identifier(&ident(i.system, i.value)).unwrap().contains(&id);
                let expected = present.contains(&(i.system.to_owned(), i.normalised.to_owned()));
                assert_eq!(found, expected, "identifier {}|{} for {what}", i.system, i.value);
            }
        }
    }

    /// What every entity and its links read as now.
    fn snapshot(&self) -> BTreeMap<EntityId, (EntityState, Vec<LinkView>)> {
        let store = self.store();
        self.ids()
            .into_iter()
            .map(|id| {
                let state = must_entity(store, &id);
                let links = masked(store.links(&id, None, None, ReadAt::NOW).unwrap());
                (id, (state, links))
            })
            .collect()
    }

    /// Everything the public read API says about every entity.
    fn reads(&self) -> Vec<String> {
        let store = self.store();
        self.ids()
            .into_iter()
            .map(|id| {
                let state = store.entity(&id, ReadAt::NOW).unwrap();
                let history = store.history(&id).unwrap();
                let links = store.links(&id, None, None, ReadAt::NOW).unwrap();
                let mid = store.entity(&id, ReadAt::as_of_seq(store.head().seq / 2)).unwrap();
                serde_json::to_string(&(state, history, links, mid)).unwrap()
            })
            .collect()
    }
}

/// Link views with the removal hidden: a view read now never has one, a view read as of
/// the past may (the link was removed later).
fn masked(mut views: Vec<LinkView>) -> Vec<LinkView> {
    for v in &mut views {
        v.removed_seq = None;
    }
    views
}

fn config(cases: u32) -> ProptestConfig {
    // `PROPTEST_CASES` runs more (or fewer) cases than the default of each property.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, failure_persistence: None, max_shrink_time: 60_000, ..ProptestConfig::default() }
}

// ------------------------------------------------------------------ the properties

/// (a) Live state equals the state rebuilt and replayed from the journal.
fn live_equals_rebuilt(backend: BackendKind, plans: &[TxPlan]) {
    let mut h = Harness::new(backend, false);
    for plan in plans {
        h.step(plan);
    }
    let store = h.store();
    let digest = store.digest().unwrap();
    let stats = store.stats().unwrap();
    let reads = h.reads();
    assert_eq!(store.replay_digest(|_| {}).unwrap(), digest, "replay_digest");
    assert_eq!(store.rebuild(|_| {}).unwrap(), digest, "rebuild");
    assert_eq!(store.digest().unwrap(), digest);
    assert_eq!(store.stats().unwrap(), stats);
    assert_eq!(h.reads(), reads, "reads after the rebuild");
    let report = verify(h.t.path(), |_| {}).unwrap();
    assert!(report.ok && report.transactions == stats.head_seq, "{report:?}");
    // And after a restart.
    h.t.reopen();
    assert_eq!(h.store().digest().unwrap(), digest, "after reopening");
    assert_eq!(h.reads(), reads, "reads after reopening");
}

/// (b) Reading as of each sequence equals what was read right after it was committed.
fn as_of_equals_recorded(plans: &[TxPlan]) {
    let mut h = Harness::new(BackendKind::Memory, false);
    let mut snapshots: BTreeMap<u64, BTreeMap<EntityId, (EntityState, Vec<LinkView>)>> = BTreeMap::new();
    snapshots.insert(0, BTreeMap::new());
    for plan in plans {
        let step = h.step(plan);
        if let Some(c) = step.committed {
            let snap = h.snapshot();
            if let Some(previous) = snapshots.get(&c.seq) {
                assert_eq!(previous, &snap, "a transaction of no-ops changed what reads say");
            }
            snapshots.insert(c.seq, snap);
        }
    }
    let store = h.store();
    let ids = h.ids();
    for (seq, snap) in &snapshots {
        let at_time = store
            .transaction_meta(*seq)
            .unwrap()
            .map(|m| ReadAt { as_of: Some(AsOf::Time(m.recorded_at)), valid_at: None });
        for id in &ids {
            let expected = snap.get(id);
            let state = store.entity(id, ReadAt::as_of_seq(*seq)).unwrap();
            assert_eq!(state.as_ref(), expected.map(|(s, _)| s), "entity {id} as of seq {seq}");
            let links = masked(store.links(id, None, None, ReadAt::as_of_seq(*seq)).unwrap());
            assert_eq!(links, expected.map(|(_, l)| l.clone()).unwrap_or_default(), "links of {id} as of seq {seq}");
            if let Some(at) = at_time {
                assert_eq!(store.entity(id, at).unwrap(), state, "entity {id} as of the recorded time of seq {seq}");
            }
        }
    }
}

/// (c) The store agrees with the model after every step.
fn matches_model(plans: &[TxPlan]) {
    let mut h = Harness::new(BackendKind::Memory, true);
    for plan in plans {
        h.step(plan);
        h.check_model();
    }
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn live_state_equals_rebuilt_state(plans in arb_plans(24)) {
        live_equals_rebuilt(BackendKind::Memory, &plans);
    }

    #[test]
    fn as_of_every_sequence_equals_the_state_recorded_then(plans in arb_plans(20)) {
        as_of_equals_recorded(&plans);
    }

    #[test]
    fn the_store_matches_a_simple_model(plans in arb_plans(24)) {
        matches_model(&plans);
    }
}

proptest! {
    #![proptest_config(config(6))]

    #[test]
    fn live_state_equals_rebuilt_state_on_sled(plans in arb_plans(16)) {
        live_equals_rebuilt(BackendKind::Sled, &plans);
    }
}

// ------------------------------------------------------------------ minimised failures

// ------------------------------------------------------------------ minimised failures

fn create(ty: usize, idents: &[usize]) -> Op {
    Op::Create { ty, set: Vec::new(), idents: idents.to_vec(), dated: false }
}

/// An update of the model's `target`-th entity.
fn update(
    target: usize,
    set: &[(usize, usize)],
    unset: &[usize],
    add: &[usize],
    remove: &[(bool, usize)],
    valid_days: Option<u16>,
) -> Op {
    Op::Update {
        target,
        set: set.to_vec(),
        unset: unset.to_vec(),
        unset_required: false,
        add: add.to_vec(),
        remove: remove.to_vec(),
        valid_days,
        expect: None,
    }
}

fn plans(txs: Vec<Vec<Op>>) -> Vec<TxPlan> {
    txs.into_iter().map(|ops| TxPlan { ops, resubmit: false }).collect()
}

#[test]
fn regression_an_identifier_re_added_with_an_earlier_valid_time_after_its_removal() {
    // A client id is removed now, then re-added valid 2020 (before the removal). The later
    // valid statement (removed) must win, as it does for plain identifiers; a sealed one came
    // back because each seal has its own ciphertext and the fold matches identifiers by it.
    matches_model(&plans(vec![
        vec![create(PERSON, &[0])],
        vec![update(0, &[], &[], &[], &[(true, 0)], None)],
        vec![update(0, &[], &[], &[0], &[], Some(0))],
    ]));
}

#[test]
fn regression_a_late_change_then_a_current_one_in_one_transaction() {
    // Within one transaction: unset `outcome` valid 2020, then unset it now. The second is
    // checked against a state that applied the first out of valid-time order, dropped as a
    // no-op, and the older "ok" stays current.
    matches_model(&plans(vec![
        vec![create(CONTACT, &[])],
        vec![update(0, &[(2, 0)], &[], &[], &[], None)],
        vec![update(0, &[], &[1], &[], &[], Some(0)), update(0, &[], &[1], &[], &[], None)],
    ]));
}

#[test]
fn regression_a_late_identifier_removal_then_a_current_one_in_one_transaction() {
    // Within one transaction: remove a client id valid 2020 (it was added later, so it stays),
    // then remove it now. The second is refused: "the entity has no identifier".
    matches_model(&plans(vec![
        vec![create(PERSON, &[])],
        vec![update(0, &[], &[], &[0], &[], None)],
        vec![update(0, &[], &[], &[], &[(true, 0)], Some(0)), update(0, &[], &[], &[], &[(true, 0)], None)],
    ]));
}

#[test]
fn regression_a_late_unlink_leaves_the_link_index_agreeing_with_the_entity() {
    // A link made now, then an unlink valid 2020 (before the link): the entity keeps the
    // link (valid-time order) but the link index closes it (sequence order).
    matches_model(&plans(vec![
        vec![create(PERSON, &[]), create(ADDRESS, &[])],
        vec![Op::Link { spec: 0, from: 0, to: 0, period: 0, valid_days: None, expect: None }],
        vec![Op::Unlink { existing: true, spec: 0, from: 0, to: 0, valid_days: Some(0) }],
    ]));
}

#[test]
fn regression_a_transaction_of_creates_refs_and_links_replays() {
    // Creates, links by ref and a late update in one transaction, then more: exercised by
    // (a) and (b) as a fixed case.
    let txs = plans(vec![
        vec![create(PERSON, &[2]), create(ADDRESS, &[0]), create(CONTACT, &[1])],
        vec![
            Op::Link { spec: 0, from: 0, to: 0, period: 1, valid_days: None, expect: Some(true) },
            Op::Link { spec: 1, from: 0, to: 0, period: 0, valid_days: Some(10), expect: None },
            update(0, &[(0, 2), (2, 1)], &[], &[3], &[], Some(100)),
        ],
        vec![update(0, &[(0, 0)], &[3], &[], &[(true, 0)], None)],
        vec![Op::Unlink { existing: true, spec: 0, from: 0, to: 0, valid_days: None }],
    ]);
    live_equals_rebuilt(BackendKind::Memory, &txs);
    as_of_equals_recorded(&txs);
}
