#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests: random sequences of transactions (creates, updates setting and unsetting
//! attributes and identifiers, links and unlinks, some valid in the past, some expecting a
//! version that may conflict, some refused, some resubmitted under an idempotency key)
//! checked three ways:
//! (a) the live projections equal the ones rebuilt and replayed from the journal;
//! (b) reading as of every sequence equals what was read right after it was committed;
//! (c) the store agrees with a simple model of attributes, identifiers, links and versions,
//!     read now and valid at past times. The model keeps each entity's accepted changes and
//!     folds them in valid-time order as the store does; a change about an earlier time than
//!     the entity's latest is judged against the state valid at that time.
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
        /// Valid 2000-01-01, before every dated change; otherwise valid now, after them.
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
        2 => (0..3usize, pairs(), prop::collection::vec(0..5usize, 0..3), prop::bool::weighted(0.5))
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

/// The valid time of a change: a date, or "now", which is the recorded time of the change's
/// transaction and so later than any date the generator makes and increasing with the
/// sequence (the variants are ordered that way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Valid {
    At(Timestamp),
    Now(u64),
}

/// The fold position of a change, as `pole_model::fold_order` has it: valid time, then
/// sequence, then position in the transaction. Creates take their turn like any change.
type Key = (Valid, u64, usize);

fn key(valid: Option<Timestamp>, seq: u64, idx: usize) -> Key {
    (valid.map_or(Valid::Now(seq), Valid::At), seq, idx)
}

/// A normalised identifier: `(system, value)`.
type Ident = (String, String);

/// What an accepted change does to the entity's fields when it is folded. Like the store's
/// fold, applying one is lenient: an unset of an absent attribute, a removal of an absent
/// identifier or an unlink of an absent link changes nothing.
#[derive(Debug, Clone)]
enum MOp {
    Set(String, Value),
    Unset(String),
    Add(Ident),
    Remove(Ident),
    Link((String, usize), Period),
    Unlink((String, usize)),
}

/// One accepted (written) change of an entity.
#[derive(Debug, Clone)]
struct MChange {
    key: Key,
    ops: Vec<MOp>,
}

/// An entity's state as a fold of its changes makes it.
#[derive(Debug, Clone, Default, PartialEq)]
struct MState {
    /// Number of changes folded.
    version: u64,
    attrs: BTreeMap<String, Value>,
    idents: BTreeSet<Ident>,
    /// Outgoing links per `(role, far end)`.
    links: BTreeMap<(String, usize), Period>,
}

#[derive(Debug, Clone)]
struct MEntity {
    ty: usize,
    id: Option<EntityId>,
    local_ref: String,
    /// Every accepted change, the create included, in the order they were accepted.
    changes: Vec<MChange>,
}

impl MEntity {
    fn target(&self) -> Target {
        match &self.id {
            Some(id) => Target::Entity(id.clone()),
            None => Target::Ref(self.local_ref.clone()),
        }
    }

    /// The fold of the changes valid by `until` (all of them when `None`), in fold order;
    /// `None` when no change is valid by then: the entity did not exist at that time.
    fn fold(&self, until: Option<Valid>) -> Option<MState> {
        let mut changes: Vec<&MChange> =
            self.changes.iter().filter(|c| until.is_none_or(|until| c.key.0 <= until)).collect();
        if changes.is_empty() {
            return None;
        }
        changes.sort_by_key(|c| c.key);
        let mut state = MState::default();
        for change in changes {
            for op in &change.ops {
                match op {
                    MOp::Set(name, value) => {
                        state.attrs.insert(name.clone(), value.clone());
                    }
                    MOp::Unset(name) => {
                        state.attrs.remove(name);
                    }
                    MOp::Add(ident) => {
                        state.idents.insert(ident.clone());
                    }
                    MOp::Remove(ident) => {
                        state.idents.remove(ident);
                    }
                    MOp::Link(link, period) => {
                        state.links.insert(link.clone(), *period);
                    }
                    MOp::Unlink(link) => {
                        state.links.remove(link);
                    }
                }
            }
            state.version += 1;
        }
        Some(state)
    }

    /// The state now: the fold of every change in valid-time order, so a change recorded
    /// late never overrides a value valid later.
    fn current(&self) -> MState {
        self.fold(None).unwrap_or_default()
    }

    /// The state a change valid at `valid` is judged against: the fold of the changes valid
    /// by then. For a change at or after the entity's latest valid time that is every change
    /// (the current state); for a late one it is the state as it was valid at that time, with
    /// the earlier changes of its own transaction. Nothing valid by then reads as no fields.
    fn base(&self, valid: Valid) -> MState {
        self.fold(Some(valid)).unwrap_or_default()
    }

    fn version(&self) -> u64 {
        self.changes.len() as u64
    }

    /// The distinct dated valid times of the entity's changes, in order.
    fn dated_valid_times(&self) -> BTreeSet<Timestamp> {
        self.changes
            .iter()
            .filter_map(|c| match c.key.0 {
                Valid::At(at) => Some(at),
                Valid::Now(_) => None,
            })
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
    rejection: Option<Rejection>,
}

struct Harness {
    t: TempStore,
    types: Vec<TypeSpec>,
    links: Vec<LinkSpec>,
    model: Vec<MEntity>,
    /// Assert the store against the model (property c); otherwise the model only steers
    /// the generated operations towards entities that exist.
    strict: bool,
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
                    let mut added = BTreeSet::new();
                    for i in idents {
                        let ident = &spec.idents[i % spec.idents.len()];
                        change = change.with_identifier(ident.system, ident.value);
                        added.insert((ident.system.to_owned(), ident.normalised.to_owned()));
                    }
                    let valid = dated.then(|| ts("2000-01-01"));
                    if let Some(valid) = valid {
                        change = change.valid_at(valid);
                    }
                    changes.push(change);
                    if values.values().any(|(_, valid)| !valid) {
                        refused = Some(Predicted::Invalid(idx));
                    } else {
                        let mut ops: Vec<MOp> =
                            values.into_iter().map(|(name, (value, _))| MOp::Set(name, value)).collect();
                        ops.extend(added.into_iter().map(MOp::Add));
                        work.push(MEntity {
                            ty,
                            id: None,
                            local_ref,
                            changes: vec![MChange { key: key(valid, seq, idx), ops }],
                        });
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
                    // Identifiers the entity has now: a late removal of one may find that it
                    // did not have it at that time.
                    let present: Vec<Ident> = work[e].current().idents.into_iter().collect();
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
                    let valid = valid_days.map(past);
                    if let Some(valid) = valid {
                        change = change.valid_at(valid);
                    }
                    let version = work[e].version();
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
                        let key = key(valid, seq, idx);
                        // Compared with the state valid at the change's time: the current
                        // state unless the change is late.
                        let base = work[e].base(key.0);
                        let before = base.idents;
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
                            let mut ops = Vec::new();
                            for (name, (value, _)) in values {
                                if base.attrs.get(&name) != Some(&value) {
                                    ops.push(MOp::Set(name, value));
                                }
                            }
                            for attr in unset {
                                if base.attrs.contains_key(attr.name) {
                                    ops.push(MOp::Unset(attr.name.to_owned()));
                                }
                            }
                            ops.extend(before.difference(&after).cloned().map(MOp::Remove));
                            ops.extend(after.difference(&before).cloned().map(MOp::Add));
                            // A change of no-ops is not written.
                            if !ops.is_empty() {
                                work[e].changes.push(MChange { key, ops });
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
                    let valid = valid_days.map(past);
                    if let Some(valid) = valid {
                        change = change.valid_at(valid);
                    }
                    let version = work[f].version();
                    if let Some(right) = expect {
                        change = change.expecting(if *right { version } else { version + 1 });
                    }
                    changes.push(change);
                    let link = (spec.role.to_owned(), t);
                    if *expect == Some(false) {
                        refused = Some(Predicted::Conflict(idx));
                    } else if !spec.allowed {
                        refused = Some(Predicted::Invalid(idx));
                    } else if work[f].current().links.get(&link) != Some(&period)
                        && valid.is_none_or(|at| work[f].base(Valid::At(at)).links.get(&link) != Some(&period))
                    {
                        // Links are compared with the current state and, late, with the state
                        // valid at their time: a link that held then is a repeat.
                        work[f].changes.push(MChange { key: key(valid, seq, idx), ops: vec![MOp::Link(link, period)] });
                        written += 1;
                    }
                }
                Op::Unlink { existing, spec, from, to, valid_days } => {
                    let linked: Vec<(usize, String, usize)> = work
                        .iter()
                        .enumerate()
                        .flat_map(|(f, e)| e.current().links.into_keys().map(move |(role, t)| (f, role, t)))
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
                    let valid = valid_days.map(past);
                    if let Some(valid) = valid {
                        change = change.valid_at(valid);
                    }
                    changes.push(change);
                    let link = (role, t);
                    // An unlink is compared with the current state, late or not; the same
                    // unlink at the same valid time again is a repeat.
                    let at = key(valid, seq, idx).0;
                    let repeat = work[f]
                        .changes
                        .iter()
                        .any(|c| c.key.0 == at && c.ops.iter().any(|op| matches!(op, MOp::Unlink(l) if *l == link)));
                    if work[f].current().links.contains_key(&link) {
                        work[f].changes.push(MChange { key: key(valid, seq, idx), ops: vec![MOp::Unlink(link)] });
                        written += 1;
                    } else if !repeat {
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
            return Step { committed: None, rejection: None };
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
                Step { committed: Some(committed), rejection: None }
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
                Step { committed: None, rejection: Some(rejection) }
            }
        }
    }

    /// Property (c): every entity reads as the model says, now and valid at the times its
    /// changes are dated, and the indexes agree.
    fn check_model(&self) {
        let store = self.store();
        for (n, e) in self.model.iter().enumerate() {
            let id = e.id.clone().unwrap();
            let state = must_entity(store, &id);
            let what = format!("entity #{n} ({}) {id}", self.types[e.ty].name);
            let current = e.current();
            self.assert_state(&state, &current, &what);
            let out: BTreeSet<(String, EntityId)> = store
                .links(&id, Some(pole_store::Direction::Out), None, ReadAt::NOW)
                .unwrap()
                .into_iter()
                .map(|v| (v.role, v.other))
                .collect();
            let expected: BTreeSet<(String, EntityId)> =
                current.links.keys().map(|(role, to)| (role.clone(), self.model[*to].id.clone().unwrap())).collect();
            assert_eq!(out, expected, "link index of {what}");
            // Valid-time reads: the fold of the changes valid by then, and no entity at all
            // before its first change.
            let before_all = ts("1999-12-31");
            for at in std::iter::once(before_all).chain(e.dated_valid_times()) {
                let read = store.entity(&id, ReadAt { as_of: None, valid_at: Some(at) }).unwrap();
                match (read, e.fold(Some(Valid::At(at)))) {
                    (None, None) => {}
                    (Some(read), Some(expected)) => {
                        self.assert_state(&read, &expected, &format!("{what} valid at {at}"))
                    }
                    (read, expected) => panic!("{what} valid at {at}: read {read:?}, the model has {expected:?}"),
                }
            }
            // The lookup indexes.
            let spec = &self.types[e.ty];
            if let Some(key) = spec.search {
                let now = current.attrs.get(spec.attrs[0].name);
                for value in &spec.attrs[0].values {
                    let found = store.search(key, value.as_str().unwrap()).unwrap().contains(&id);
                    assert_eq!(found, now == Some(value), "search {key:?} {value} for {what}");
                }
            }
            for i in &spec.idents {
                let found = store.find_by_identifier(&ident(i.system, i.value)).unwrap().contains(&id);
                let expected = current.idents.contains(&(i.system.to_owned(), i.normalised.to_owned()));
                assert_eq!(found, expected, "identifier {}|{} for {what}", i.system, i.value);
            }
        }
    }

    /// An entity as read has the model's attributes, identifiers, links and version.
    fn assert_state(&self, state: &EntityState, expected: &MState, what: &str) {
        let attrs: BTreeMap<String, Value> =
            state.attributes.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
        assert_eq!(attrs, expected.attrs, "attributes of {what}");
        let idents: BTreeSet<Ident> =
            state.identifiers.iter().map(|i| (i.identifier.system.clone(), i.identifier.value.clone())).collect();
        assert_eq!(idents.len(), state.identifiers.len(), "identifiers of {what} are distinct");
        assert_eq!(idents, expected.idents, "identifiers of {what}");
        let links: BTreeMap<(String, EntityId), Period> =
            state.links.iter().map(|l| ((l.role.clone(), l.to.clone()), (l.valid_from, l.valid_to))).collect();
        let expected_links: BTreeMap<(String, EntityId), Period> = expected
            .links
            .iter()
            .map(|((role, to), period)| ((role.clone(), self.model[*to].id.clone().unwrap()), *period))
            .collect();
        assert_eq!(links, expected_links, "links of {what}");
        assert_eq!(state.version, expected.version, "version of {what}");
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
    run_model(plans);
}

/// Runs plans as (c) does, returning the harness and every step so that a fixed case can
/// also assert what the store and the model agreed on.
fn run_model(plans: &[TxPlan]) -> (Harness, Vec<Step>) {
    let mut h = Harness::new(BackendKind::Memory, true);
    let mut steps = Vec::new();
    for plan in plans {
        steps.push(h.step(plan));
        h.check_model();
    }
    (h, steps)
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
        live_equals_rebuilt(disk_backend(), &plans);
    }
}

// ------------------------------------------------------------------ contributor scope

/// Who writes: a national writer (`None`) or one of three councils.
const WRITERS: [Option<&str>; 4] = [None, Some("C1"), Some("C2"), Some("C3")];

/// One write of the scope property: who writes what to which record (an index into the
/// records so far, past the end naming a record that does not exist) and, for links, to
/// which far end.
#[derive(Debug, Clone)]
struct ScopedWrite {
    writer: usize,
    op: u8,
    target: usize,
    far: usize,
}

fn arb_scoped_writes() -> impl Strategy<Value = Vec<ScopedWrite>> {
    prop::collection::vec(
        (0..WRITERS.len(), 0u8..7, 0usize..12, 0usize..12).prop_map(|(writer, op, target, far)| ScopedWrite {
            writer,
            op,
            target,
            far,
        }),
        1..40,
    )
}

/// The change a scoped write asks for, aimed at `target` (and `far`).
fn scoped_change(op: u8, target: &EntityId, far: &EntityId) -> ChangeRequest {
    match op {
        1 => ChangeRequest::update(ent(target)).with("gender", "2"),
        2 => ChangeRequest::link(ent(target), "carer_of", ent(far)),
        3 => unlink(ent(target), "carer_of", ent(far)),
        4 => op_change(target, OpRequest::Retract { reason: "entered in error".into() }),
        5 => remove_identifier(ent(target), "council:C1:client", "X-1"),
        _ => ChangeRequest::update(ent(target)).with("family_name", "Rowan").expecting(1),
    }
}

fn op_change(target: &EntityId, request: OpRequest) -> ChangeRequest {
    op(ent(target), request)
}

/// A rejection as JSON with the entity it names blanked.
fn blanked(rejection: &Rejection) -> Value {
    let mut json = serde_json::to_value(rejection).unwrap();
    if json.get("entity").is_some() {
        json["entity"] = Value::Null;
    }
    json
}

/// No write outside a council's own records succeeds, a refusal of another council's record
/// reads exactly as one of a record that does not exist, and in the end every record's
/// history holds only its own contributor's and national writers' changes.
fn writes_stay_in_scope(writes: &[ScopedWrite]) {
    let t = TempStore::memory();
    let s = t.store();
    let mut records: Vec<(EntityId, Option<&str>)> = Vec::new();
    let mut nobody_n = 0u32;
    let mut nobody = || {
        nobody_n += 1;
        EntityId::new(format!("01JNOBODY{nobody_n:017}")).unwrap()
    };
    for write in writes {
        let writer = WRITERS[write.writer];
        let mut request = tx(Vec::new());
        request.source.council = writer.map(str::to_owned);
        if write.op == 0 || records.is_empty() {
            request.changes.push(person("p", "Ash", "Ann"));
            let committed = must_commit(s, request);
            records.push((committed.refs["p"].clone(), writer));
            continue;
        }
        let pick = |n: usize| records.get(n % (records.len() + 2)).cloned();
        let (target, far) = (pick(write.target), pick(write.far));
        let target_id = target.as_ref().map_or_else(&mut nobody, |(id, _)| id.clone());
        let far_id = far.as_ref().map_or_else(&mut nobody, |(id, _)| id.clone());
        request.changes.push(scoped_change(write.op, &target_id, &far_id));
        let own = |record: &Option<(EntityId, Option<&str>)>, far_end: bool| match (writer, record) {
            (None, Some(_)) => true,
            (Some(writer), Some((_, owner))) => *owner == Some(writer) || (far_end && owner.is_none()),
            (_, None) => false,
        };
        let far_named = matches!(write.op, 2 | 3);
        // A national writer is told an id names nothing; a council cannot tell.
        let in_scope = own(&target, false) && (!far_named || write.op == 3 || own(&far, true));
        let answer = s.commit(request.clone()).unwrap();
        match (&answer, writer) {
            (Err(Rejection::OutOfScope { .. }), Some(_)) if !in_scope => {
                // The same write aimed at a record that does not exist answers alike.
                let Err(rejection) = answer else { unreachable!() };
                let ghost = nobody();
                let mut again = request.clone();
                let (t, f) = if own(&target, false) { (target_id.clone(), ghost) } else { (ghost, far_id.clone()) };
                again.changes = vec![scoped_change(write.op, &t, &f)];
                let ghost_answer = must_reject(s, again);
                assert_eq!(blanked(&rejection), blanked(&ghost_answer), "{write:?}");
            }
            (Err(Rejection::OutOfScope { .. }), _) => panic!("{write:?}: refused as out of scope: {answer:?}"),
            (Ok(_), Some(_)) if !in_scope => panic!("{write:?} by {writer:?} outside its records was stored"),
            _ => {}
        }
    }
    for (id, owner) in &records {
        for version in s.history(id).unwrap() {
            let by = version.source.council.as_deref();
            assert!(by.is_none() || by == *owner, "{id} ({owner:?}) holds a change by {by:?}");
        }
        assert_eq!(s.entity(id, ReadAt::NOW).unwrap().unwrap().contributor(), *owner);
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn no_write_leaves_its_contributors_records(writes in arb_scoped_writes()) {
        writes_stay_in_scope(&writes);
    }
}

// ------------------------------------------------------------------ minimised failures

/// A create valid now (its transaction's recorded time).
fn create(ty: usize, idents: &[usize]) -> Op {
    Op::Create { ty, set: Vec::new(), idents: idents.to_vec(), dated: false }
}

/// A create valid 2000-01-01, before any dated change the generator makes.
fn dated_create(ty: usize, idents: &[usize]) -> Op {
    Op::Create { ty, set: Vec::new(), idents: idents.to_vec(), dated: true }
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

/// The model's `n`-th entity as the store reads it, now or valid at `valid_at`.
fn read(h: &Harness, n: usize, valid_at: Option<&str>) -> Option<EntityState> {
    let id = h.model[n].id.clone().unwrap();
    h.store().entity(&id, ReadAt { as_of: None, valid_at: valid_at.map(ts) }).unwrap()
}

fn client_ids(state: &EntityState) -> Vec<&str> {
    state
        .identifiers
        .iter()
        .filter(|i| i.identifier.system == "council:305:client")
        .map(|i| i.identifier.value.as_str())
        .collect()
}

/// The number of changes a step wrote and the sequence it took.
fn written(step: &Step) -> (usize, u64) {
    let committed = step.committed.as_ref().expect("the transaction was committed");
    (committed.changes, committed.seq)
}

#[test]
fn regression_an_identifier_re_added_with_an_earlier_valid_time_after_its_removal() {
    // A person created valid 2000 with client id c1; c1 is removed now, then re-added valid
    // 2020 (before the removal). The re-add is late, so it is judged against the state valid
    // in 2020, which has c1 from the create: it is a no-op, nothing is written and no
    // sequence is taken. Now the entity still has no c1; valid in 2020 it has.
    let (h, steps) = run_model(&plans(vec![
        vec![dated_create(PERSON, &[0])],
        vec![update(0, &[], &[], &[], &[(true, 0)], None)],
        vec![update(0, &[], &[], &[0], &[], Some(0))],
    ]));
    assert_eq!(written(&steps[2]), (0, 2), "the late re-add is a no-op");
    let now = read(&h, 0, None).unwrap();
    assert_eq!(client_ids(&now), Vec::<&str>::new());
    assert_eq!(now.version, 2);
    assert_eq!(client_ids(&read(&h, 0, Some("2020-01-01")).unwrap()), vec!["c1"]);
}

#[test]
fn regression_an_identifier_added_before_its_create_and_removal_stays_removed() {
    // The case above with the create valid now: in 2020 nothing of the entity was valid, so
    // the late re-add of c1 is written. It folds first (2020), then the create adds c1 and
    // the removal takes it away: the later valid statement wins, also for a sealed client
    // id (the removal must match the ciphertext the late addition stored).
    let (h, steps) = run_model(&plans(vec![
        vec![create(PERSON, &[0])],
        vec![update(0, &[], &[], &[], &[(true, 0)], None)],
        vec![update(0, &[], &[], &[0], &[], Some(0))],
    ]));
    assert_eq!(written(&steps[2]), (1, 3));
    let now = read(&h, 0, None).unwrap();
    assert_eq!(client_ids(&now), Vec::<&str>::new());
    assert_eq!(now.version, 3);
    let then = read(&h, 0, Some("2020-01-01")).unwrap();
    assert_eq!((client_ids(&then), then.version), (vec!["c1"], 1), "only the late addition is valid in 2020");
    assert!(read(&h, 0, Some("2019-12-31")).is_none(), "no change of the entity is valid in 2019");
}

#[test]
fn regression_a_late_change_then_a_current_one_in_one_transaction() {
    // A contact created valid 2000, `outcome` set now. Then, in one transaction: unset
    // `outcome` valid 2020, then unset it now. The first is judged against the state valid
    // in 2020, which has no `outcome`: a no-op, not written. The second is judged against the
    // current state, which has "ok": it is written. One change, and `outcome` is gone.
    let (h, steps) = run_model(&plans(vec![
        vec![dated_create(CONTACT, &[])],
        vec![update(0, &[(2, 0)], &[], &[], &[], None)],
        vec![update(0, &[], &[1], &[], &[], Some(0)), update(0, &[], &[1], &[], &[], None)],
    ]));
    assert_eq!(written(&steps[2]), (1, 3), "only the current unset is written");
    let now = read(&h, 0, None).unwrap();
    assert_eq!(attr(&now, "outcome"), None);
    assert_eq!(now.version, 3);
    assert_eq!(attr(&read(&h, 0, Some("2020-01-01")).unwrap(), "outcome"), None);
}

#[test]
fn regression_a_late_identifier_removal_then_a_current_one_in_one_transaction() {
    // A person created valid 2000 without identifiers; client id c1 added now. Then, in one
    // transaction: remove c1 valid 2020, then remove it now. The first removal is judged
    // against the state valid in 2020, which has no c1, and is refused like any removal of
    // an absent identifier ("the entity has no identifier", field identifiers.<system>).
    // Nothing is written and c1 stays.
    let (h, steps) = run_model(&plans(vec![
        vec![dated_create(PERSON, &[])],
        vec![update(0, &[], &[], &[0], &[], None)],
        vec![update(0, &[], &[], &[], &[(true, 0)], Some(0)), update(0, &[], &[], &[], &[(true, 0)], None)],
    ]));
    match &steps[2].rejection {
        Some(Rejection::Invalid { change_idx: 0, field: Some(field), reason, .. }) => {
            assert_eq!(field, "identifiers.council:305:client");
            assert!(reason.contains("has no identifier"), "{reason}");
        }
        other => panic!("the late removal must be refused, got {other:?}"),
    }
    let now = read(&h, 0, None).unwrap();
    assert_eq!((client_ids(&now), now.version), (vec!["c1"], 2));
}

#[test]
fn regression_a_late_set_is_written_once_and_never_overrides_a_later_value() {
    // A person created valid 2000; family name "Jones" set now. Setting "Smith" valid 2020 is
    // written (the entity had no family name then) but "Jones", valid later, stays current.
    // Setting "Smith" valid 2021 again is a no-op: that is what was valid then.
    let (h, steps) = run_model(&plans(vec![
        vec![dated_create(PERSON, &[])],
        vec![update(0, &[(0, 1)], &[], &[], &[], None)],
        vec![update(0, &[(0, 0)], &[], &[], &[], Some(0))],
        vec![update(0, &[(0, 0)], &[], &[], &[], Some(366))],
    ]));
    assert_eq!(written(&steps[2]), (1, 3));
    assert_eq!(written(&steps[3]), (0, 3), "the same value valid later in 2021 is a no-op");
    let now = read(&h, 0, None).unwrap();
    assert_eq!((attr_str(&now, "family_name"), now.version), (Some("Jones"), 3));
    assert_eq!(attr_str(&read(&h, 0, Some("2021-06-01")).unwrap(), "family_name"), Some("Smith"));
}

#[test]
fn regression_a_late_unlink_leaves_the_link_index_agreeing_with_the_entity() {
    // A link made now, then an unlink valid 2020 (before the link). Unlinks are judged
    // against the current state, which has the link, so it is written; in valid-time order
    // it folds before the link, so the entity keeps the link, and the link index must agree.
    let (h, steps) = run_model(&plans(vec![
        vec![create(PERSON, &[]), create(ADDRESS, &[])],
        vec![Op::Link { spec: 0, from: 0, to: 0, period: 0, valid_days: None, expect: None }],
        vec![Op::Unlink { existing: true, spec: 0, from: 0, to: 0, valid_days: Some(0) }],
    ]));
    assert_eq!(written(&steps[2]), (1, 3));
    let now = read(&h, 0, None).unwrap();
    assert_eq!((now.links.len(), now.version), (1, 3));
    let out = h.store().links(&now.id, Some(pole_store::Direction::Out), None, ReadAt::NOW).unwrap();
    assert_eq!(out.len(), 1, "the link index keeps the link");
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
