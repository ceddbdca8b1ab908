//! ADT events to store requests, in two steps so that the store stays out of this module:
//! [`map_adt`] describes what a message says (an [`AdtRecord`]); [`to_request`] turns the
//! description into one transaction once the caller says which identifiers it already knows.

use pole_model::{normalise_nhs_number, EntityId, Identifier, Source, Timestamp};
use pole_store::{ChangeRequest, OpRequest, Target, TransactionRequest};

use super::dtm::Dtm;
use super::error::{excerpt, Hl7Error, Location};
use super::parse::{Field, Message, Repetition, Segment};

/// The ADT trigger events mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdtEvent {
    /// Admit/visit notification.
    A01,
    /// Transfer.
    A02,
    /// Discharge/end visit.
    A03,
    /// Register a patient.
    A04,
    /// Update patient information.
    A08,
    /// Add person information.
    A28,
    /// Update person information.
    A31,
    /// Merge patient (patient identifier list).
    A40,
}

impl AdtEvent {
    pub fn from_trigger(trigger: &str) -> Option<AdtEvent> {
        Some(match trigger.trim().to_ascii_uppercase().as_str() {
            "A01" => AdtEvent::A01,
            "A02" => AdtEvent::A02,
            "A03" => AdtEvent::A03,
            "A04" => AdtEvent::A04,
            "A08" => AdtEvent::A08,
            "A28" => AdtEvent::A28,
            "A31" => AdtEvent::A31,
            "A40" => AdtEvent::A40,
            _ => return None,
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            AdtEvent::A01 => "A01",
            AdtEvent::A02 => "A02",
            AdtEvent::A03 => "A03",
            AdtEvent::A04 => "A04",
            AdtEvent::A08 => "A08",
            AdtEvent::A28 => "A28",
            AdtEvent::A31 => "A31",
            AdtEvent::A40 => "A40",
        }
    }

    /// The hospital event the trigger records, if any.
    pub fn encounter_kind(self) -> Option<EncounterKind> {
        match self {
            AdtEvent::A01 => Some(EncounterKind::Admission),
            AdtEvent::A02 => Some(EncounterKind::Transfer),
            AdtEvent::A03 => Some(EncounterKind::Discharge),
            _ => None,
        }
    }

    /// Whether the message exists to state the person's details (so its address is news).
    pub fn states_demographics(self) -> bool {
        matches!(self, AdtEvent::A04 | AdtEvent::A08 | AdtEvent::A28 | AdtEvent::A31)
    }
}

/// A value the message sets, or clears with HL7's explicit null `""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdtValue {
    Set(String),
    Clear,
}

/// The person the message is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonRecord {
    /// NHS number first (when valid), then local ids, without duplicates.
    pub identifiers: Vec<Identifier>,
    pub family_name: Option<AdtValue>,
    pub given_name: Option<AdtValue>,
    pub birth_date: Option<AdtValue>,
    pub gender: Option<AdtValue>,
    pub death_date: Option<AdtValue>,
    pub address: Option<AddressRecord>,
}

impl PersonRecord {
    /// Attribute name and value, in a fixed order.
    fn attributes(&self) -> [(&'static str, Option<&AdtValue>); 5] {
        [
            ("family_name", self.family_name.as_ref()),
            ("given_name", self.given_name.as_ref()),
            ("birth_date", self.birth_date.as_ref()),
            ("gender", self.gender.as_ref()),
            ("death_date", self.death_date.as_ref()),
        ]
    }
}

/// A home address from PID-11.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressRecord {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub town: Option<String>,
    pub postcode: Option<String>,
}

impl AddressRecord {
    /// The `address` type's attributes, by name, in a fixed order.
    pub fn attributes(&self) -> [(&'static str, &Option<String>); 4] {
        [("line1", &self.line1), ("line2", &self.line2), ("town", &self.town), ("postcode", &self.postcode)]
    }
}

/// A home address a stored person is linked to now (`resides_at`), as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAddress {
    pub id: EntityId,
    pub address: AddressRecord,
    /// The link's `valid_from`: since when the person lives there.
    pub since: Option<Timestamp>,
}

/// What a message's home address does to the person's current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressDecision {
    /// Nothing to write: the same address, or a message that does not state addresses.
    Keep,
    /// The message is older news than an address linked since after its valid time: the
    /// newer address stays (a message delivered late must not move someone back).
    Stale,
    /// End the links to `unlink` and, when `link_new`, link a new address entity.
    Move { unlink: Vec<EntityId>, link_new: bool },
}

/// Decides an existing person's home address, single-valued as the CSV path's
/// single-valued links are: a different address replaces every other current one (ended at
/// the message's valid time), an equal one (all four parts) is kept and changes nothing, so
/// re-sending the same details is a no-op.
pub fn address_decision(
    address: &AddressRecord,
    valid_time: Option<Timestamp>,
    current: &[CurrentAddress],
) -> AddressDecision {
    let others: Vec<&CurrentAddress> = current.iter().filter(|c| c.address != *address).collect();
    let newer = others.iter().any(|c| matches!((c.since, valid_time), (Some(since), Some(vt)) if since > vt));
    if newer {
        return AddressDecision::Stale;
    }
    let link_new = others.len() == current.len();
    if others.is_empty() && !link_new {
        return AddressDecision::Keep;
    }
    AddressDecision::Move { unlink: others.into_iter().map(|c| c.id.clone()).collect(), link_new }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncounterKind {
    Admission,
    Transfer,
    Discharge,
}

impl EncounterKind {
    pub fn entity_type(self) -> &'static str {
        match self {
            EncounterKind::Admission => "hospital_admission",
            EncounterKind::Transfer => "hospital_transfer",
            EncounterKind::Discharge => "hospital_discharge",
        }
    }

    fn time_attribute(self) -> &'static str {
        match self {
            EncounterKind::Admission => "admitted_at",
            EncounterKind::Transfer => "transferred_at",
            EncounterKind::Discharge => "discharged_at",
        }
    }
}

/// The hospital event of an A01, A02 or A03.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncounterRecord {
    pub kind: EncounterKind,
    /// RFC 3339, as the event's time attribute holds it.
    pub at: String,
    pub valid_time: Timestamp,
    /// PV1-3.1 point of care.
    pub ward: Option<String>,
    /// PV1-3.2 and PV1-3.3.
    pub room: Option<String>,
    pub bed: Option<String>,
    pub facility: Option<FacilityRecord>,
    /// PV1-4 admission type.
    pub admission_method: Option<String>,
    /// PV1-37 discharged to location.
    pub discharge_destination: Option<String>,
    /// PV1-36 discharge disposition.
    pub outcome: Option<String>,
    /// PV1-19 visit number.
    pub visit_number: Option<String>,
}

/// The hospital, by ODS code (PV1-3.4, else MSH-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacilityRecord {
    pub ods: String,
    pub name: String,
}

/// Everything a message says, before the store is asked who anyone is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtRecord {
    pub event: AdtEvent,
    /// MSH-9 as `ADT^A01`.
    pub message_type: String,
    pub control_id: String,
    pub source: Source,
    /// Derived from the sender and MSH-10, so a repeated control id is applied once.
    pub idempotency_key: String,
    /// The message's 1-based position in its file; set it with [`AdtRecord::at_row`].
    pub row: Option<u64>,
    /// EVN-6, else EVN-2, else MSH-7.
    pub valid_time: Option<Timestamp>,
    pub person: PersonRecord,
    pub encounter: Option<EncounterRecord>,
    /// A40: MRG-1, the identifiers of the person merged away.
    pub merge_from: Vec<Identifier>,
    /// What was dropped or doubtful (invalid NHS numbers, partial dates, unknown codes).
    pub warnings: Vec<String>,
}

impl AdtRecord {
    pub fn at_row(mut self, row: u64) -> Self {
        self.row = Some(row);
        self
    }
}

/// Describes an ADT message. `council` is the contributing council; without one, the
/// sending facility (MSH-4) stands as the source.
pub fn map_adt(message: &Message, council: Option<&str>) -> Result<AdtRecord, Hl7Error> {
    let header = message.checked_header()?;
    let trigger = match header.trigger_event.trim() {
        // v2.3 senders may leave MSH-9.2 empty and put the event in EVN-1.
        "" => message.get("EVN-1").unwrap_or_default().to_owned(),
        t => t.to_owned(),
    };
    let message_type = format!("{}^{}", header.message_code.trim(), trigger);
    let event = AdtEvent::from_trigger(&trigger)
        .filter(|_| header.message_code.trim().eq_ignore_ascii_case("ADT"))
        .ok_or_else(|| Hl7Error::UnsupportedMessageType { found: excerpt(&message_type) })?;
    let mut warnings = Vec::new();

    let msh = Located::find(message, "MSH").ok_or_else(|| missing_segment("MSH", &message_type))?;
    let sending_facility = msh.text(4, 1, 1, 1);
    let sending_application = msh.text(3, 1, 1, 1);
    let pid = Located::find(message, "PID").ok_or_else(|| missing_segment("PID", &message_type))?;

    let (identifiers, dropped) = pid.identifiers(3, sending_facility, &mut warnings);
    if identifiers.is_empty() {
        return Err(Hl7Error::NoUsableIdentifier { at: pid.at(3), dropped });
    }
    let mut person = PersonRecord { identifiers, ..PersonRecord::default() };
    if let Some(name) = pid.preferred(5, 7, "L") {
        person.family_name = attribute(sub(name, 1, 1));
        person.given_name = attribute(sub(name, 2, 1));
    }
    person.birth_date = pid.date(7, &mut warnings);
    person.gender = pid.gender(&mut warnings);
    person.address = pid.preferred(11, 7, "H").and_then(address);
    person.death_date = pid.date(29, &mut warnings);
    match (pid.text(30, 1, 1, 1).trim().to_ascii_uppercase().as_str(), &person.death_date) {
        ("Y", None) => {
            warnings.push("PID-30 says the patient died but PID-29 gives no date: death date not set".into())
        }
        ("N", None) => person.death_date = Some(AdtValue::Clear),
        _ => {}
    }

    let evn = Located::find(message, "EVN");
    let mut times = Vec::new();
    if let Some(evn) = &evn {
        times.push(evn.time(6, &mut warnings));
        times.push(evn.time(2, &mut warnings));
    }
    times.push(msh.time(7, &mut warnings));
    let valid_time = times.iter().flatten().next().map(|(_, t)| *t);

    let encounter = match event.encounter_kind() {
        None => None,
        Some(kind) => {
            let pv1 = Located::find(message, "PV1").ok_or_else(|| missing_segment("PV1", &message_type))?;
            let own = match kind {
                EncounterKind::Admission => pv1.time(44, &mut warnings),
                EncounterKind::Discharge => pv1.time(45, &mut warnings),
                EncounterKind::Transfer => None,
            };
            let (at, valid_time) = own.into_iter().chain(times.iter().flatten().cloned()).next().ok_or_else(|| {
                Hl7Error::MissingField {
                    at: pv1.at(if kind == EncounterKind::Discharge { 45 } else { 44 }),
                    what: "the event time (PV1-44/45, EVN-6, EVN-2 or MSH-7)",
                }
            })?;
            let ods = non_empty(pv1.text(3, 1, 4, 1)).or_else(|| non_empty(sending_facility));
            let facility = ods.map(|ods| FacilityRecord { ods: ods.to_owned(), name: ods.to_owned() });
            if facility.is_none() {
                warnings.push("neither PV1-3.4 nor MSH-4 names the hospital: the event has no location".into());
            }
            Some(EncounterRecord {
                kind,
                at,
                valid_time,
                ward: owned(pv1.text(3, 1, 1, 1)),
                room: owned(pv1.text(3, 1, 2, 1)),
                bed: owned(pv1.text(3, 1, 3, 1)),
                facility,
                admission_method: owned(pv1.text(4, 1, 1, 1)),
                discharge_destination: owned(pv1.text(37, 1, 1, 1)),
                outcome: owned(pv1.text(36, 1, 1, 1)),
                visit_number: owned(pv1.text(19, 1, 1, 1)),
            })
        }
    };

    let mut merge_from = Vec::new();
    if event == AdtEvent::A40 {
        let mrg = Located::find(message, "MRG").ok_or_else(|| missing_segment("MRG", &message_type))?;
        let (ids, dropped) = mrg.identifiers(1, sending_facility, &mut warnings);
        if ids.is_empty() {
            return Err(Hl7Error::NoUsableIdentifier { at: mrg.at(1), dropped });
        }
        merge_from = ids;
        if message.segments_named("MRG").nth(1).is_some() {
            warnings.push("only the first PID/MRG pair of an A40 is merged; send one pair a message".into());
        }
    }

    let council = council.map(str::to_owned).or_else(|| owned(sending_facility));
    let source = Source { council, system: owned(sending_application), batch: None, file: None };
    let idempotency_key =
        format!("hl7:{}:{}:{}", sending_application.trim(), sending_facility.trim(), header.control_id.trim());
    Ok(AdtRecord {
        event,
        message_type,
        control_id: header.control_id.trim().to_owned(),
        source,
        idempotency_key,
        row: None,
        valid_time,
        person,
        encounter,
        merge_from,
        warnings,
    })
}

/// How [`to_request`] names the entities it may create. Refs, whose ids the store assigns,
/// serve a caller that waits for each answer; ids chosen up front serve one that queues the
/// next message before this one is answered, so that the next can name what this one creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntities {
    pub person: Target,
    pub address: Target,
    pub hospital: Target,
}

impl NewEntities {
    /// The refs `person`, `address` and `hospital`.
    pub fn refs() -> Self {
        NewEntities {
            person: Target::Ref("person".into()),
            address: Target::Ref("address".into()),
            hospital: Target::Ref("hospital".into()),
        }
    }

    /// Fresh ids (see [`pole_store::new_entity_id`]).
    pub fn chosen() -> Self {
        let id = || Target::Entity(pole_store::new_entity_id());
        NewEntities { person: id(), address: id(), hospital: id() }
    }
}

/// Which stored person the record's identifiers name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonMatch {
    /// The person of the first identifier that resolves (the NHS number when there is one).
    pub target: Option<EntityId>,
    /// Identifiers nobody holds yet: added to the person.
    pub unresolved: Vec<Identifier>,
    /// Identifiers held by another person than `target`: a linkage conflict for a human,
    /// never moved silently.
    pub conflicts: Vec<(Identifier, EntityId)>,
}

pub fn resolve_person(identifiers: &[Identifier], resolve: &impl Fn(&Identifier) -> Option<EntityId>) -> PersonMatch {
    let mut found = PersonMatch::default();
    for identifier in identifiers {
        match (resolve(identifier), &found.target) {
            (None, _) => found.unresolved.push(identifier.clone()),
            (Some(id), None) => found.target = Some(id),
            (Some(id), Some(target)) if id == *target => {}
            (Some(id), Some(_)) => found.conflicts.push((identifier.clone(), id)),
        }
    }
    found
}

/// One transaction for one message: the person created (no identifier resolves) or updated
/// with only what the message carries, the hospital event linked to the person and the
/// hospital, and for A40 the prior person merged into the surviving one.
///
/// The request depends on what `resolve` finds, so a message sent again after it was applied
/// maps to another request under the same idempotency key, and the store answers
/// `Rejection::IdempotencyKeyReused`: a caller acknowledging messages treats that as
/// "already applied" (AA), which is what a repeated MSH-10 must get. `actor` and `role` are
/// placeholders (`hl7`, `ingest`) for the caller to replace with its principal's.
///
/// `addresses` are the home addresses the resolved person is linked to now (empty for a new
/// person): the home address is single-valued, so a different one moves the link (see
/// [`address_decision`]) and the same one changes nothing. `new` names the person, home
/// address and hospital the request creates, when it creates them.
pub fn to_request(
    record: &AdtRecord,
    resolve: impl Fn(&Identifier) -> Option<EntityId>,
    addresses: &[CurrentAddress],
    new: &NewEntities,
) -> TransactionRequest {
    let mut changes = Vec::new();
    let row = record.row;
    let at = |mut change: ChangeRequest, valid: Option<Timestamp>| {
        change.row = row;
        change.valid_time = valid;
        change
    };
    let vt = record.valid_time;
    let person = &record.person;
    let found = resolve_person(&person.identifiers, &resolve);
    let merge = resolve_person(&record.merge_from, &resolve);
    // A40: every prior id the survivor lacks moves to it. The store's identifier index
    // leaves merged entities out, so without this a later message naming the prior id
    // would find nobody and create the person a third time.
    let moved: Vec<&Identifier> = record
        .merge_from
        .iter()
        .filter(|id| !person.identifiers.contains(id) && (found.target.is_none() || resolve(id) != found.target))
        .collect();

    let (person_target, created) = match &found.target {
        None => {
            let mut create = ChangeRequest::create("person", "person");
            for (name, value) in person.attributes() {
                if let Some(AdtValue::Set(v)) = value {
                    create = create.with(name, v.clone());
                }
            }
            for id in person.identifiers.iter().chain(moved.iter().copied()) {
                create = create.with_identifier(id.system.clone(), id.value.clone());
            }
            create.target = new.person.clone();
            changes.push(at(create, vt));
            (new.person.clone(), true)
        }
        Some(id) => {
            let mut update = ChangeRequest::update(Target::Entity(id.clone()));
            for (name, value) in person.attributes() {
                update = match value {
                    Some(AdtValue::Set(v)) => update.with(name, v.clone()),
                    Some(AdtValue::Clear) => unset(update, name),
                    None => update,
                };
            }
            for id in found.unresolved.iter().chain(moved.iter().copied()) {
                update = update.with_identifier(id.system.clone(), id.value.clone());
            }
            if !is_empty_update(&update) {
                changes.push(at(update, vt));
            }
            (Target::Entity(id.clone()), false)
        }
    };

    if let Some(address) = &person.address {
        // Only the messages whose purpose is to state the person's details move an existing
        // person's address: an admission's PID-11 is often stale.
        let decision = if created {
            AddressDecision::Move { unlink: Vec::new(), link_new: true }
        } else if record.event.states_demographics() {
            address_decision(address, vt, addresses)
        } else {
            AddressDecision::Keep
        };
        if let AddressDecision::Move { unlink, link_new } = decision {
            for old in unlink {
                // Ended at the message's valid time: read valid at an earlier time, the
                // person still lives at the old address.
                let change = ChangeRequest {
                    target: person_target.clone(),
                    expected_version: None,
                    valid_time: None,
                    row: None,
                    op: OpRequest::Unlink { role: "resides_at".into(), to: Target::Entity(old) },
                };
                changes.push(at(change, vt));
            }
            if link_new {
                let mut create = ChangeRequest::create("address", "address");
                create.target = new.address.clone();
                for (name, value) in address.attributes() {
                    if let Some(v) = value {
                        create = create.with(name, v.clone());
                    }
                }
                changes.push(at(create, vt));
                let link =
                    ChangeRequest::link(person_target.clone(), "resides_at", new.address.clone()).link_period(vt, None);
                changes.push(at(link, vt));
            }
        }
    }

    if let Some(encounter) = &record.encounter {
        let mut event = ChangeRequest::create("event", encounter.kind.entity_type())
            .with(encounter.kind.time_attribute(), encounter.at.clone());
        // The schema gives discharges no ward: the ward left is the last transfer's.
        if let (Some(ward), EncounterKind::Admission | EncounterKind::Transfer) = (&encounter.ward, encounter.kind) {
            event = event.with("ward", ward.clone());
        }
        match encounter.kind {
            EncounterKind::Admission => {
                if let Some(m) = &encounter.admission_method {
                    event = event.with("admission_method", m.clone());
                }
            }
            EncounterKind::Discharge => {
                if let Some(d) = &encounter.discharge_destination {
                    event = event.with("discharge_destination", d.clone());
                }
                if let Some(o) = &encounter.outcome {
                    event = event.with("outcome", o.clone());
                }
            }
            EncounterKind::Transfer => {}
        }
        let when = Some(encounter.valid_time);
        changes.push(at(event, when));
        changes.push(at(ChangeRequest::link(Target::Ref("event".into()), "subject", person_target.clone()), when));
        if let Some(facility) = &encounter.facility {
            let ods = Identifier::new("ods", facility.ods.clone());
            let hospital = match resolve(&ods) {
                Some(id) => Target::Entity(id),
                None => {
                    let mut create = ChangeRequest::create("hospital", "hospital")
                        .with("name", facility.name.clone())
                        .with_identifier("ods", facility.ods.clone());
                    create.target = new.hospital.clone();
                    changes.push(at(create, None));
                    new.hospital.clone()
                }
            };
            changes.push(at(ChangeRequest::link(Target::Ref("event".into()), "occurred_at", hospital), when));
        }
    }

    let mut merged = Vec::new();
    if let Some(prior) = &merge.target {
        merged.push(prior.clone());
    }
    merged.extend(merge.conflicts.iter().map(|(_, id)| id.clone()));
    for prior in merged {
        if Target::Entity(prior.clone()) == person_target || found.target.as_ref() == Some(&prior) {
            continue;
        }
        if changes.iter().any(|c| c.target == Target::Entity(prior.clone()) && matches!(c.op, OpRequest::Merge { .. }))
        {
            continue;
        }
        let change = ChangeRequest {
            target: Target::Entity(prior),
            expected_version: None,
            valid_time: None,
            row: None,
            op: OpRequest::Merge { into: person_target.clone() },
        };
        changes.push(at(change, vt));
    }

    TransactionRequest {
        actor: "hl7".into(),
        role: "ingest".into(),
        source: record.source.clone(),
        idempotency_key: Some(record.idempotency_key.clone()),
        reason: Some(format!("HL7 {} {}", record.message_type, record.control_id)),
        changes,
    }
}

fn unset(mut change: ChangeRequest, name: &str) -> ChangeRequest {
    if let OpRequest::Update { unset, .. } = &mut change.op {
        unset.push(name.to_owned());
    }
    change
}

fn is_empty_update(change: &ChangeRequest) -> bool {
    matches!(&change.op, OpRequest::Update { set, unset, add_identifiers, remove_identifiers }
        if set.is_empty() && unset.is_empty() && add_identifiers.is_empty() && remove_identifiers.is_empty())
}

fn missing_segment(segment: &'static str, message_type: &str) -> Hl7Error {
    Hl7Error::MissingSegment { segment, message_type: excerpt(message_type) }
}

/// HL7's explicit null `""` clears; empty means "not sent".
fn attribute(text: &str) -> Option<AdtValue> {
    match text.trim() {
        "" => None,
        "\"\"" => Some(AdtValue::Clear),
        t => Some(AdtValue::Set(t.to_owned())),
    }
}

fn non_empty(text: &str) -> Option<&str> {
    let t = text.trim();
    (!t.is_empty() && t != "\"\"").then_some(t)
}

fn owned(text: &str) -> Option<String> {
    non_empty(text).map(str::to_owned)
}

fn sub(rep: &Repetition, component: usize, subcomponent: usize) -> &str {
    rep.component(component).and_then(|c| c.subcomponent(subcomponent)).unwrap_or_default()
}

fn address(rep: &Repetition) -> Option<AddressRecord> {
    let postcode = non_empty(sub(rep, 5, 1)).map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase());
    let record = AddressRecord {
        line1: owned(sub(rep, 1, 1)),
        line2: owned(sub(rep, 2, 1)),
        town: owned(sub(rep, 3, 1)),
        postcode,
    };
    (record != AddressRecord::default()).then_some(record)
}

/// A segment with its position, so every warning and error says where.
struct Located<'a> {
    index: usize,
    segment: &'a Segment,
}

impl<'a> Located<'a> {
    fn find(message: &'a Message, name: &str) -> Option<Located<'a>> {
        message
            .segments()
            .iter()
            .enumerate()
            .find(|(_, s)| s.name() == name)
            .map(|(i, segment)| Located { index: i + 1, segment })
    }

    fn at(&self, field: usize) -> Location {
        Location { segment_index: self.index, segment: self.segment.name().to_owned(), field }
    }

    fn field(&self, n: usize) -> Option<&'a Field> {
        self.segment.field(n)
    }

    fn text(&self, field: usize, rep: usize, component: usize, subcomponent: usize) -> &'a str {
        self.field(field)
            .and_then(|f| f.repetition(rep))
            .and_then(|r| r.component(component))
            .and_then(|c| c.subcomponent(subcomponent))
            .unwrap_or_default()
    }

    /// The repetition whose type component says `wanted`, else the first non-empty one.
    fn preferred(&self, field: usize, type_component: usize, wanted: &str) -> Option<&'a Repetition> {
        let reps = self.field(field)?.repetitions();
        reps.iter()
            .find(|r| sub(r, type_component, 1).trim().eq_ignore_ascii_case(wanted))
            .or_else(|| reps.iter().find(|r| !r.is_empty()))
    }

    fn time(&self, field: usize, warnings: &mut Vec<String>) -> Option<(String, Timestamp)> {
        let text = non_empty(self.text(field, 1, 1, 1))?;
        let parsed = Dtm::parse(text).ok().and_then(|d| Some((d.rfc3339()?, d.timestamp()?)));
        if parsed.is_none() {
            warnings.push(format!(
                "{}: {:?} is not a date/time to the day or finer: ignored",
                self.at(field),
                excerpt(text)
            ));
        }
        parsed
    }

    fn date(&self, field: usize, warnings: &mut Vec<String>) -> Option<AdtValue> {
        let text = self.text(field, 1, 1, 1).trim();
        match attribute(text)? {
            AdtValue::Clear => Some(AdtValue::Clear),
            AdtValue::Set(_) => match Dtm::parse(text) {
                Ok(d) => match d.date() {
                    Some(date) => Some(AdtValue::Set(date)),
                    None => {
                        warnings.push(format!("{}: {text:?} gives no day: not set", self.at(field)));
                        None
                    }
                },
                Err(reason) => {
                    warnings.push(format!("{}: {:?} {reason}: not set", self.at(field), excerpt(text)));
                    None
                }
            },
        }
    }

    fn gender(&self, warnings: &mut Vec<String>) -> Option<AdtValue> {
        let text = self.text(8, 1, 1, 1).trim();
        match attribute(text)? {
            AdtValue::Clear => Some(AdtValue::Clear),
            AdtValue::Set(_) => {
                let code = match text.to_ascii_uppercase().as_str() {
                    "M" => "1",
                    "F" => "2",
                    "U" => "0",
                    "O" => "9",
                    _ => {
                        warnings.push(format!("{}: sex {:?} is not M, F, U or O: not set", self.at(8), excerpt(text)));
                        return None;
                    }
                };
                Some(AdtValue::Set(code.into()))
            }
        }
    }

    /// A CX list (PID-3, MRG-1): NHS numbers (type NH, or authority NHS) validated, others
    /// as the assigning authority's record numbers. Answers the identifiers and what was dropped.
    fn identifiers(
        &self,
        field: usize,
        default_authority: &str,
        warnings: &mut Vec<String>,
    ) -> (Vec<Identifier>, Vec<String>) {
        let mut nhs = Vec::new();
        let mut local = Vec::new();
        let mut dropped = Vec::new();
        let reps = self.field(field).map(Field::repetitions).unwrap_or_default();
        for (i, rep) in reps.iter().enumerate() {
            let value = sub(rep, 1, 1).trim();
            if value.is_empty() || value == "\"\"" {
                continue;
            }
            let where_ = format!("{}-{}[{}]", self.segment.name(), field, i + 1);
            let authority = non_empty(sub(rep, 4, 1)).or_else(|| non_empty(sub(rep, 4, 2)));
            let id_type = sub(rep, 5, 1).trim();
            let is_nhs = id_type.eq_ignore_ascii_case("NH")
                || id_type.eq_ignore_ascii_case("NHS")
                || authority.is_some_and(|a| a.eq_ignore_ascii_case("NHS"));
            if is_nhs {
                match normalise_nhs_number(value) {
                    Ok(n) => nhs.push(Identifier::new("nhs-number", n)),
                    Err(e) => {
                        let why = format!("{where_}: NHS number {:?} dropped: {e}", excerpt(value));
                        warnings.push(why.clone());
                        dropped.push(why);
                    }
                }
                continue;
            }
            let authority = authority.map(system_segment).filter(|a| !a.is_empty());
            let authority = authority.or_else(|| Some(system_segment(default_authority)).filter(|a| !a.is_empty()));
            let Some(authority) = authority else {
                let why = format!(
                    "{where_}: {:?} has no assigning authority (CX-4) and MSH-4 is empty: dropped",
                    excerpt(value)
                );
                warnings.push(why.clone());
                dropped.push(why);
                continue;
            };
            let identifier = Identifier::new(format!("hospital:{authority}:mrn"), value);
            match identifier.check_shape() {
                Ok(()) => local.push(identifier),
                Err(e) => {
                    let why = format!("{where_}: {:?} dropped: {e}", excerpt(value));
                    warnings.push(why.clone());
                    dropped.push(why);
                }
            }
        }
        let mut all: Vec<Identifier> = Vec::with_capacity(nhs.len() + local.len());
        for id in nhs.into_iter().chain(local) {
            if !all.contains(&id) {
                all.push(id);
            }
        }
        (all, dropped)
    }
}

/// An assigning authority as one `:`-free segment of an identifier system.
fn system_segment(text: &str) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .take(64)
        .collect();
    cleaned.trim_matches('-').to_owned()
}
