//! Building one transaction: local refs, source rows, valid times, and what to remember
//! about its entities once the store has assigned their ids.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, NaiveDateTime};
use pole_model::{EntityId, Identifier, Timestamp};
use pole_store::{ChangeRequest, OpRequest, Target};
use serde_json::Value;

use crate::demo::stats::DemoStats;
use crate::demo::world::OnCommit;

/// An entity named by a change: already committed (an id), or created earlier in the
/// transaction being built (a local ref, resolved to an id when it commits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Handle {
    Id(EntityId),
    Ref(String),
}

impl Handle {
    pub(crate) fn target(&self) -> Target {
        match self {
            Handle::Id(id) => Target::Entity(id.clone()),
            Handle::Ref(name) => Target::Ref(name.clone()),
        }
    }

    /// Turns a local ref into the id the store assigned; false when the store named none.
    pub(crate) fn resolve(&mut self, refs: &BTreeMap<String, EntityId>) -> bool {
        match self {
            Handle::Id(_) => true,
            Handle::Ref(name) => match refs.get(name.as_str()) {
                Some(id) => {
                    *self = Handle::Id(id.clone());
                    true
                }
                None => false,
            },
        }
    }
}

pub(crate) fn resolve_opt(handle: &mut Option<Handle>, refs: &BTreeMap<String, EntityId>) -> bool {
    handle.as_mut().is_none_or(|h| h.resolve(refs))
}

/// Attribute values of a create or update.
pub(crate) type Attrs = Vec<(&'static str, Value)>;

/// Midnight UTC of a date: the valid time of a dated event.
pub(crate) fn at(date: NaiveDate) -> Timestamp {
    Timestamp::from_date(date)
}

pub(crate) fn at_time(instant: NaiveDateTime) -> Timestamp {
    Timestamp::from_micros(instant.and_utc().timestamp_micros())
}

pub(crate) fn date_value(date: NaiveDate) -> Value {
    Value::String(date.format("%Y-%m-%d").to_string())
}

pub(crate) fn datetime_value(instant: NaiveDateTime) -> Value {
    Value::String(instant.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

pub(crate) fn text(value: impl Into<String>) -> Value {
    Value::String(value.into())
}

/// Money and hours as JSON numbers with at most two decimals.
pub(crate) fn decimal(value: f64) -> Value {
    Value::from((value * 100.0).round() / 100.0)
}

/// Who sent a transaction and from which file.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// Index into the council table; `None` for national reference data.
    pub council: Option<usize>,
    pub role: &'static str,
    pub system: String,
    pub file: String,
    pub reason: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Tx {
    pub meta: Meta,
    pub changes: Vec<ChangeRequest>,
    /// Applied to the generator's memory when the transaction commits.
    pub on_commit: Vec<OnCommit>,
    /// Added to the statistics when the transaction commits.
    pub stats: DemoStats,
    /// Added to the statistics when the transaction is emitted.
    pub submitted: DemoStats,
    /// Changes carrying a deliberately invalid NHS number, removed on resubmission.
    pub bad_nhs: Vec<usize>,
    ref_counts: BTreeMap<&'static str, u32>,
    row: Option<u64>,
    claims: BTreeSet<Claim>,
    /// Claims held by transactions still in flight: not available to this one either.
    held: BTreeSet<Claim>,
}

/// What a transaction claims: (kind of change, council, serial of the remembered item).
pub(crate) type Claim = (&'static str, usize, u64);

impl Tx {
    pub(crate) fn new(meta: Meta) -> Self {
        Tx {
            meta,
            changes: Vec::new(),
            on_commit: Vec::new(),
            stats: DemoStats::default(),
            submitted: DemoStats::default(),
            bad_nhs: Vec::new(),
            ref_counts: BTreeMap::new(),
            row: None,
            claims: BTreeSet::new(),
            held: BTreeSet::new(),
        }
    }

    /// Marks claims of transactions not yet answered as unavailable to this one.
    pub(crate) fn hold(&mut self, in_flight: &BTreeSet<Claim>) {
        self.held.clone_from(in_flight);
    }

    /// The claims this transaction made, to hold until it is answered.
    pub(crate) fn take_claims(&mut self) -> BTreeSet<Claim> {
        std::mem::take(&mut self.claims)
    }

    /// Claims a remembered person (council, serial) for one kind of change in this
    /// transaction; false if already claimed. The generator's memory of a person is only
    /// updated on commit, so without this one file could move a person twice from the same
    /// address, or record a death twice.
    pub(crate) fn claim(&mut self, what: &'static str, council: usize, serial: u64) -> bool {
        !self.held.contains(&(what, council, serial)) && self.claims.insert((what, council, serial))
    }

    pub(crate) fn len(&self) -> usize {
        self.changes.len()
    }

    /// Starts the next record of the source file; its changes carry its row number. Row 1
    /// is the header, as in the files councils send.
    pub(crate) fn next_row(&mut self) {
        self.row = Some(self.row.map_or(2, |r| r + 1));
    }

    pub(crate) fn remember(&mut self, item: OnCommit) {
        self.on_commit.push(item);
    }

    fn push(&mut self, mut change: ChangeRequest, valid: Option<pole_model::Timestamp>) {
        change.row = self.row;
        change.valid_time = valid;
        self.changes.push(change);
    }

    pub(crate) fn create(
        &mut self,
        prefix: &'static str,
        entity_type: &str,
        valid: Option<Timestamp>,
        set: Attrs,
        identifiers: Vec<Identifier>,
    ) -> Handle {
        let n = self.ref_counts.entry(prefix).or_insert(0);
        *n += 1;
        let name = format!("{prefix}{n}");
        let mut change = ChangeRequest::create(name.clone(), entity_type);
        if let OpRequest::Create { set: attrs, identifiers: ids, .. } = &mut change.op {
            attrs.extend(set.into_iter().map(|(k, v)| (k.to_owned(), v)));
            *ids = identifiers;
        }
        self.push(change, valid);
        Handle::Ref(name)
    }

    pub(crate) fn update(&mut self, target: &Handle, valid: Option<Timestamp>, set: Attrs) {
        let mut change = ChangeRequest::update(target.target());
        for (k, v) in set {
            change = change.with(k, v);
        }
        self.push(change, valid);
        self.stats.updates += 1;
    }

    pub(crate) fn add_identifier(&mut self, target: &Handle, valid: Option<Timestamp>, identifier: Identifier) {
        let change = ChangeRequest::update(target.target()).with_identifier(identifier.system, identifier.value);
        self.push(change, valid);
        self.stats.updates += 1;
    }

    pub(crate) fn link(&mut self, from: &Handle, role: &str, to: &Handle, valid: Option<Timestamp>) {
        self.push(ChangeRequest::link(from.target(), role, to.target()), valid);
    }

    /// A link with its own validity period (address history).
    pub(crate) fn link_period(
        &mut self,
        (from, role, to): (&Handle, &str, &Handle),
        valid: Option<Timestamp>,
        period_from: Option<Timestamp>,
        period_to: Option<Timestamp>,
    ) {
        let change = ChangeRequest::link(from.target(), role, to.target()).link_period(period_from, period_to);
        self.push(change, valid);
    }

    pub(crate) fn unlink(&mut self, from: &Handle, role: &str, to: &Handle, valid: Option<Timestamp>) {
        let change = ChangeRequest {
            target: from.target(),
            expected_version: None,
            valid_time: None,
            row: None,
            op: OpRequest::Unlink { role: role.to_owned(), to: to.target() },
        };
        self.push(change, valid);
    }
}
