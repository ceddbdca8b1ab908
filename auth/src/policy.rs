//! The access rules, written once against roles and attribute classifications: what a
//! caller may read of an entity, a change and a link, and what it may write.
//!
//! The rules are pure: facts that need the store (which council contributed to an entity,
//! whether a linked person opted out) are looked up by the caller and handed in. The API's
//! enforcement point is the only caller.

use chrono::{Datelike, NaiveDate};
use pole_model::{
    AttributeDef, Classification, Delta, EntityId, EntityState, FieldOp, Kind, LinkValue, Operation, Provenance,
    SchemaRegistry, Timestamp,
};
use serde_json::Value;

use crate::agreement::{Agreement, DatePrecision};
use crate::generalise;
use crate::principal::{Principal, Role};

/// Why a request is refused (the 403's detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// What one attribute becomes in a view.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    AsIs,
    Generalised(Value),
    Withheld,
}

/// A caller, with everything the rules need to decide what it sees.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub principal: &'a Principal,
    /// The consumer's agreement, already checked to be in force.
    pub agreement: Option<&'a Agreement>,
    /// An analyst's break-glass grant is active.
    pub break_glass: bool,
}

impl<'a> Viewer<'a> {
    pub fn role(&self) -> Role {
        self.principal.role
    }

    /// Refuses callers that may not read records at all.
    pub fn may_read_records(&self) -> Result<(), Denied> {
        match self.role() {
            Role::Auditor => Err(Denied("auditors read the access log and verify the chains, not records".into())),
            Role::Consumer if self.agreement.is_none() => {
                Err(Denied("a consumer reads only under a data-sharing agreement in force".into()))
            }
            _ => Ok(()),
        }
    }

    /// Reads that only identify (search by name, NHS number, identifier look-up, history,
    /// diff) are refused to minimised views: they would re-identify.
    pub fn may_read_identifying(&self, what: &str) -> Result<(), Denied> {
        self.may_read_records()?;
        if self.minimised() {
            return Err(Denied(format!("{what} is not available under a data-sharing agreement")));
        }
        Ok(())
    }

    /// Third parties see minimised, pseudonymised views.
    pub fn minimised(&self) -> bool {
        self.role() == Role::Consumer
    }

    /// The day ages are banded at when `asked` is the read's day: for a minimised view the
    /// agreement's fixed reference day (or the first day of the current year), whatever day
    /// the consumer reads at, so ages cannot be bisected to a birthday.
    pub fn ages_on(&self, asked: NaiveDate) -> NaiveDate {
        match (self.minimised(), self.agreement) {
            (true, Some(agreement)) => agreement.ages_at.unwrap_or_else(|| {
                let today = Timestamp::now().date();
                NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today)
            }),
            _ => asked,
        }
    }

    /// An instant of a record's metadata (a valid time, a recorded time, a link's period)
    /// as this caller may see it: for a minimised view, the start of its day, or of its
    /// month when the agreement shows dates to the month; others see it as it is.
    pub fn coarsen(&self, instant: Timestamp) -> Timestamp {
        let (true, Some(agreement)) = (self.minimised(), self.agreement) else { return instant };
        let day = instant.date();
        let start = match agreement.dates {
            DatePrecision::Day => day,
            DatePrecision::Month => day.with_day(1).unwrap_or(day),
        };
        Timestamp::from_date(start)
    }

    fn coarsen_provenance(&self, provenance: &mut Provenance) {
        provenance.recorded_at = self.coarsen(provenance.recorded_at);
        provenance.valid_time = self.coarsen(provenance.valid_time);
        provenance.row = None;
    }

    /// The council whose contributions alone this caller sees, if it is limited to one.
    /// An analyst token may carry a council to narrow its scope; break-glass lifts it.
    pub fn council_scope(&self) -> Option<&'a str> {
        match self.role() {
            Role::Council => self.principal.council.as_deref(),
            Role::Analyst if !self.break_glass => self.principal.council.as_deref(),
            _ => None,
        }
    }

    /// The council whose own contributions alone this caller sees, field by field, version
    /// by version, link by link and in the change feed (a council token).
    pub fn own_contributions_only(&self) -> Option<&'a str> {
        (self.role() == Role::Council).then_some(self.principal.council.as_deref()).flatten()
    }

    /// Whether people who opted out (and records reachable only through them) are hidden.
    /// Opt-out covers use beyond direct care: analysis and third parties. A council's own
    /// clients are its direct care; administrators manage the record; an analyst may look
    /// only by breaking the glass.
    pub fn honours_opt_out(&self) -> bool {
        match self.role() {
            Role::Consumer => true,
            Role::Analyst => !self.break_glass,
            Role::Admin | Role::Council | Role::Auditor => false,
        }
    }

    /// Whether an entity of this kind and type may be read at all.
    pub fn covers(&self, kind: Kind, entity_type: &str) -> bool {
        match (self.role(), self.agreement) {
            (Role::Consumer, Some(agreement)) => agreement.covers(kind, entity_type),
            (Role::Consumer, None) | (Role::Auditor, _) => false,
            _ => true,
        }
    }

    fn attribute(&self, def: Option<&AttributeDef>, name: &str, value: &Value, on: NaiveDate) -> Shown {
        if !self.minimised() {
            return Shown::AsIs;
        }
        let on = self.ages_on(on);
        let (Some(def), Some(agreement)) = (def, self.agreement) else { return Shown::Withheld };
        if !agreement.allows_attribute(name) {
            return Shown::Withheld;
        }
        match def.classification {
            Classification::Identifiable => match def.generalise.and_then(|how| generalise::apply(how, value, on)) {
                Some(coarse) => Shown::Generalised(coarse),
                None => Shown::Withheld,
            },
            Classification::Sensitive if !agreement.sensitive => Shown::Withheld,
            Classification::Sensitive | Classification::Plain => {
                let is_date = matches!(def.value_type, pole_model::ValueType::Date | pole_model::ValueType::Datetime);
                if is_date && agreement.dates == DatePrecision::Month {
                    match generalise::apply(pole_model::Generalisation::Month, value, on) {
                        Some(coarse) => Shown::Generalised(coarse),
                        None => Shown::Withheld,
                    }
                } else {
                    Shown::AsIs
                }
            }
        }
    }

    /// The state as this caller may see it: attributes, identifiers and links filtered and
    /// generalised. `link_target` presents a link's far end (a pseudonym for consumers) or
    /// hides the link by answering `None`; `on` is the day ages are computed for.
    pub fn redact(
        &self,
        mut state: EntityState,
        schema: &SchemaRegistry,
        on: NaiveDate,
        mut link_target: impl FnMut(&LinkValue) -> Option<EntityId>,
    ) -> EntityState {
        if let Some(own) = self.own_contributions_only() {
            let mine = |council: &Option<String>| council.as_deref() == Some(own);
            state.attributes.retain(|_, a| mine(&a.provenance.council));
            state.identifiers.retain(|i| mine(&i.provenance.council));
            state.links.retain(|l| mine(&l.provenance.council));
        }
        if self.minimised() {
            let ty = state.entity_type.clone();
            state.identifiers.clear();
            state.attributes = std::mem::take(&mut state.attributes)
                .into_iter()
                .filter_map(|(name, mut attr)| {
                    match self.attribute(schema.attribute(&ty, &name).ok(), &name, &attr.value, on) {
                        Shown::AsIs => {}
                        Shown::Generalised(v) => attr.value = v,
                        Shown::Withheld => return None,
                    }
                    self.coarsen_provenance(&mut attr.provenance);
                    Some((name, attr))
                })
                .collect();
            self.coarsen_provenance(&mut state.created);
            self.coarsen_provenance(&mut state.updated);
            state.last_valid_time = self.coarsen(state.last_valid_time);
            for link in &mut state.links {
                self.coarsen_provenance(&mut link.provenance);
                link.valid_from = link.valid_from.map(|t| self.coarsen(t));
                link.valid_to = link.valid_to.map(|t| self.coarsen(t));
            }
        }
        state.links = std::mem::take(&mut state.links)
            .into_iter()
            .filter_map(|mut link| {
                link.to = link_target(&link)?;
                Some(link)
            })
            .collect();
        state
    }

    /// A change's field operations as a minimised view may see them; other views see them
    /// whole (a council sees only its own changes, decided by the caller).
    pub fn redact_delta(&self, delta: Delta, schema: &SchemaRegistry, entity_type: &str, on: NaiveDate) -> Delta {
        if !self.minimised() {
            return delta;
        }
        let shown =
            |name: &str, value: &Value| self.attribute(schema.attribute(entity_type, name).ok(), name, value, on);
        Delta(
            delta
                .0
                .into_iter()
                .filter_map(|op| match op {
                    FieldOp::Set { attribute, before, after } => {
                        let after = match shown(&attribute, &after) {
                            Shown::AsIs => after,
                            Shown::Generalised(v) => v,
                            Shown::Withheld => return None,
                        };
                        let before = before.and_then(|b| match shown(&attribute, &b) {
                            Shown::AsIs => Some(b),
                            Shown::Generalised(v) => Some(v),
                            Shown::Withheld => None,
                        });
                        Some(FieldOp::Set { attribute, before, after })
                    }
                    FieldOp::Unset { attribute, before } => match shown(&attribute, &before) {
                        Shown::AsIs => Some(FieldOp::Unset { attribute, before }),
                        Shown::Generalised(v) => Some(FieldOp::Unset { attribute, before: v }),
                        Shown::Withheld => None,
                    },
                    FieldOp::AddIdentifier { .. } | FieldOp::RemoveIdentifier { .. } => None,
                })
                .collect(),
        )
    }

    /// The operations this caller may write, whatever the records: an administrator every
    /// one, an analyst the identity-resolution decisions, a council its own records'
    /// content and links, others none.
    pub fn writable_operations(&self) -> &'static [Operation] {
        const ANALYST: [Operation; 2] = [Operation::Merge, Operation::Unmerge];
        match self.role() {
            Role::Admin => &Operation::ALL,
            Role::Analyst => &ANALYST,
            Role::Council => &Operation::COUNCIL,
            Role::Consumer | Role::Auditor => &[],
        }
    }

    /// Refuses writes this caller may not make: `ops` are the operations of the transaction
    /// as built; `council` is the council the submission is attributed to. Which records it
    /// may change is the store's rule (a council's transaction changes its own only).
    pub fn may_write(&self, ops: &[Operation], council: Option<&str>) -> Result<(), Denied> {
        let refuse = |what: String| Err(Denied(what));
        let allowed = self.writable_operations();
        match self.role() {
            Role::Consumer | Role::Auditor => return refuse(format!("the {} role writes nothing", self.role())),
            Role::Council => {
                let own = self.principal.council.as_deref();
                if council.is_some() && council != own {
                    return refuse(format!(
                        "council {} may not submit for council {}",
                        own.unwrap_or_default(),
                        council.unwrap_or_default()
                    ));
                }
            }
            Role::Admin | Role::Analyst => {}
        }
        match ops.iter().find(|op| !allowed.contains(op)) {
            None => Ok(()),
            Some(op) if self.role() == Role::Analyst => {
                refuse(format!("an analyst writes identity-resolution decisions (merge, unmerge), not {op}"))
            }
            Some(op) => refuse(format!("{op} is decided nationally, not by a council")),
        }
    }
}
