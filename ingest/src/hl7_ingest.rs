//! HL7 v2 into the store: the file path (`ingest FILE --format hl7`) and the one-message
//! step it shares with the MLLP listener of `serve --mllp`.
//!
//! Unlike a CSV file, whose rows are committed a chunk at a time, every HL7 message is its
//! own transaction, committed in file (or arrival) order: a message is an event a sending
//! system has already acted on, its MSH-10 control id is what a resend repeats, and the
//! idempotency key built from it must name exactly one transaction. A message goes through
//! three steps:
//! [`read_message`] parses and maps it (no store), [`plan`] resolves it against the store
//! (people and hospitals by identifier, an existing person's home addresses) and builds its
//! transaction, [`submit`] queues the transaction and [`InFlight::wait`] says what became of
//! it ([`MessageOutcome`]). [`process_message`] runs them back to back for the MLLP listener,
//! which answers an ACK; the file path turns each outcome into a report row.
//!
//! Rule: an outcome that reads as applied (AA, an accepted row) is only ever produced after
//! the transaction's wait returned `Ok`, that is after the journal was synced.
//!
//! ## Pipelining the file path
//!
//! Waiting for each message before planning the next costs one journal sync a message. The
//! file path keeps up to [`WINDOW`] messages in flight instead, so the writer's group commit
//! shares a sync among them; messages are still submitted, hence sequenced, in file order,
//! and reported in file order as each one's wait returns.
//!
//! The danger is a plan made from a store that an in-flight message is about to change. A
//! plan reads three things: who holds each identifier the message names, and, for a
//! message stating an existing person's details, that person's current home addresses.
//! Those change only when a transaction (a) gives an identifier to an entity (creates a
//! person or hospital, or adds an identifier to a person), (b) merges people, or (c) moves a
//! person's home address. Each in-flight message therefore carries a footprint: the
//! identifiers its plan found nobody holding, split into those whose holder it creates
//! (`Plan::creates`, with the id it chose for that entity) and those it adds to an existing
//! person (`Plan::claims`); the home address of a person it creates; the person whose
//! address it moves; and whether it merges. Then:
//!
//! 1. Before a message is planned, if any identifier it names is claimed by an in-flight
//!    message, or any in-flight message merges, the window drains (every in-flight message
//!    is waited for and reported).
//! 2. An identifier the store does not know but an in-flight message creates the holder of
//!    resolves to that holder's chosen id, and a person created in flight has the home
//!    address its creating message gives it (`InFlightCreations`). The message's request
//!    must then name that entity (checked; otherwise the window drains and it is planned
//!    again), so the store refuses it if the creation did not happen: refused for that
//!    reason, it is planned again from the store once everything before it is answered.
//!    This is what lets an admission follow the registration of its patient without a
//!    sync between them.
//! 3. After it is planned, if it read the addresses of a person whose address an in-flight
//!    message moves, the window drains and the message is planned again.
//! 4. An A40 is planned on an empty window (rule 1) and waited for before the next message.
//!
//! Why that is enough: an identifier held by an entity before the window started is not
//! released or moved by any HL7 transaction except a merge (rule 1 and 4 keep merges alone),
//! so its look-up is current; an identifier nobody held can gain a holder only through an
//! in-flight message whose plan also found nobody holding it, and so claimed it (rule 1) or
//! creates its holder, which later plans resolve to (rule 2). The addresses a plan reads
//! change only through a message that creates the person (rule 2) or moves them (rule 3).
//! Every other effect of an in-flight message (attribute updates, new events, links to
//! them) is applied by the writer in submission order and computed there against the state
//! of the time, so the plan does not depend on it. A refused in-flight message only made
//! the rule wait when it need not have, except a creation another plan read, which rule 2
//! recovers from. A repeated control id inside the window names identifiers its first copy
//! claimed (or resolves the same entities), and the store answers it by its idempotency key
//! either way: reported as already applied.

use std::collections::{HashMap, HashSet, VecDeque};

use pole_model::{EntityId, EntityState, Identifier, Operation, Source, Timestamp};
use pole_store::{
    ChangeRequest, Committed, DryRun, OpRequest, PendingCommit, ReadAt, Rejection, Store, Target, TransactionRequest,
};

use crate::hl7::{
    self, AckCode, AckError, AddressDecision, AddressRecord, AdtEvent, AdtRecord, CurrentAddress, Hl7Error, Message,
};
use crate::report::{Issue, Report, RowReport, Severity, Status};
use crate::{IngestError, Options, Result};

/// The report's profile name for HL7: mapping is fixed by the ADT events, not by a profile.
pub const PROFILE: &str = "hl7-adt";

/// What the report says about messages rejected while others are applied.
pub const POLICY: &str = "Each HL7 message is its own transaction, applied in file order: rejected messages are \
                          listed with the segment and field at fault and not stored; every other message is \
                          stored. A message whose control id (MSH-10) was applied before is reported as already \
                          applied and changes nothing, so resending a file is safe.";

/// Where a message comes from and how to apply it.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The contributing council; `None` makes the sending facility (MSH-4) the source.
    pub council: Option<&'a str>,
    /// The file the message came from, for provenance.
    pub file: Option<&'a str>,
    /// The message's 1-based position in its file or connection, for provenance.
    pub row: u64,
    /// Who applies it (the transaction's actor): the token's subject over HTTP, the
    /// command line's or the MLLP listener's name otherwise.
    pub actor: &'a str,
    /// The role it applies it in (the transaction's role): the token's role over HTTP.
    pub role: &'a str,
    /// Map and resolve without committing.
    pub dry_run: bool,
    /// The operations the submitter may make: a message whose transaction asks for another
    /// (an A40's merge sent with a council's token) is refused, AE.
    pub operations: &'a [Operation],
}

/// What became of one message.
#[derive(Debug, Clone)]
pub enum MessageOutcome {
    /// Not readable as an HL7 message (no MSH, bad delimiters, no control id...): AR.
    Unreadable(Hl7Error),
    /// Readable, but a message type this build does not map: AR, as HL7 answers a message
    /// type it does not take (resending it will not help; another receiver may).
    Unsupported(Hl7Error),
    /// Readable, but its content cannot be mapped (no usable patient identifier, a required
    /// segment or field missing): AE.
    Unmappable(Hl7Error),
    /// Mapped, but the store refused the transaction (a schema rule): AE.
    Refused(Rejection),
    /// Mapped, but its transaction asks for an operation the submitter may not make (a
    /// merge with a council's token: merges are decided nationally): AE.
    Forbidden { operation: Operation },
    /// Durably committed (`changes` may be 0 when the store already held everything).
    Committed(Committed),
    /// The control id was applied before (seq of that transaction): nothing changed, AA.
    AlreadyApplied { seq: u64 },
    /// Dry run: the transaction that would be committed has this many changes.
    Planned { changes: usize },
}

impl MessageOutcome {
    /// MSA-1 for this outcome.
    pub fn ack_code(&self) -> AckCode {
        match self {
            MessageOutcome::Unreadable(_) | MessageOutcome::Unsupported(_) => AckCode::Reject,
            MessageOutcome::Unmappable(_) | MessageOutcome::Refused(_) | MessageOutcome::Forbidden { .. } => {
                AckCode::Error
            }
            MessageOutcome::Committed(_) | MessageOutcome::AlreadyApplied { .. } | MessageOutcome::Planned { .. } => {
                AckCode::Accept
            }
        }
    }

    /// The ERR segment and MSA-3 for this outcome, when it is not an acceptance.
    pub fn ack_error(&self) -> Option<AckError> {
        match self {
            MessageOutcome::Unreadable(e) | MessageOutcome::Unsupported(e) | MessageOutcome::Unmappable(e) => {
                Some(AckError::from(e))
            }
            MessageOutcome::Refused(rejection) => {
                Some(AckError::application(format!("the store refused the message: {rejection}")))
            }
            MessageOutcome::Forbidden { operation } => Some(AckError::application(forbidden_reason(*operation))),
            _ => None,
        }
    }
}

fn forbidden_reason(operation: Operation) -> String {
    format!(
        "the message asks for a {operation}, which this submitter may not make: {operation} is decided nationally, \
         not by a council's token"
    )
}

/// One message processed.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The parsed message, for the ACK; `None` when it could not be parsed.
    pub message: Option<Message>,
    /// MSH-10 as sent (empty when unreadable).
    pub control_id: String,
    /// What was dropped or doubtful, each naming its field where it can.
    pub warnings: Vec<String>,
    pub outcome: MessageOutcome,
}

impl Processed {
    /// The acknowledgement of this message (unframed), echoing what of its header could be
    /// read. `bytes` is the message as received, for when it did not parse; `control_id` is
    /// the ACK's own MSH-10 and `at` its MSH-7.
    pub fn ack(&self, bytes: &[u8], control_id: &str, at: Timestamp) -> String {
        self.ack_as(self.outcome.ack_code(), self.outcome.ack_error().as_ref(), bytes, control_id, at)
    }

    /// [`Processed::ack`] with another MSA-1 and error than the outcome's own: for a caller
    /// that knows more than the outcome says (the MLLP listener, when the message's access
    /// record could not be written).
    pub fn ack_as(
        &self,
        code: AckCode,
        error: Option<&AckError>,
        bytes: &[u8],
        control_id: &str,
        at: Timestamp,
    ) -> String {
        match &self.message {
            Some(message) => hl7::build_ack(message, code, error, control_id, at),
            None => hl7::build_ack_for_bytes(bytes, code, error, control_id, at),
        }
    }
}

/// Reads, maps, resolves and (unless dry run) commits one message, waiting until it is
/// durable. An `Err` is the store failing (not the message): the caller must not acknowledge
/// the message as applied. The MLLP listener's step; the file path runs the same steps
/// ([`read_message`], [`plan`], [`submit`]) with several messages in flight.
pub fn process_message(store: &Store, text: &str, context: &MessageContext<'_>) -> pole_store::Result<Processed> {
    let mapped = match read_message(text, context) {
        Read::Done(processed) => return Ok(*processed),
        Read::Mapped(mapped) => *mapped,
    };
    let _resolving = crate::resolving();
    plan_and_commit(store, mapped, context)
}

/// Plans a mapped message against the store alone (nothing in flight) and, unless this is a
/// dry run, commits it and waits until it is durable. The caller holds `crate::resolving`.
fn plan_and_commit(store: &Store, mapped: Mapped, context: &MessageContext<'_>) -> pole_store::Result<Processed> {
    if context.dry_run {
        return judge(&mut store.dry_run(), mapped, context);
    }
    let plan = plan(store, &mapped, context, &InFlightCreations::default())?;
    if let Some(operation) = plan.forbidden {
        return Ok(mapped.processed(plan.warnings, MessageOutcome::Forbidden { operation }));
    }
    submit(store, mapped, plan)?.wait()
}

/// A dry run of one message: planned against the store and what the messages judged
/// before it in `dry_run` would have made, then judged as the store would commit it.
fn judge(dry_run: &mut DryRun<'_>, mapped: Mapped, context: &MessageContext<'_>) -> pole_store::Result<Processed> {
    let plan = plan(&*dry_run, &mapped, context, &InFlightCreations::default())?;
    if let Some(operation) = plan.forbidden {
        return Ok(mapped.processed(plan.warnings, MessageOutcome::Forbidden { operation }));
    }
    let outcome = match dry_run.judge(&plan.request)? {
        Ok(judged) => match judged.replay_of {
            Some(seq) => MessageOutcome::AlreadyApplied { seq },
            None => MessageOutcome::Planned { changes: judged.changes },
        },
        Err(Rejection::IdempotencyKeyReused { seq, .. }) => MessageOutcome::AlreadyApplied { seq },
        Err(rejection) => MessageOutcome::Refused(rejection),
    };
    Ok(mapped.processed(plan.warnings, outcome))
}

/// What planning a message reads: the store, or a dry run over it.
pub trait PlanReads {
    /// The active records of `contributor` (the message's source) holding an identifier:
    /// a sender's messages resolve to its own records only.
    fn holders(&self, identifier: &Identifier, contributor: Option<&str>) -> pole_store::Result<Vec<EntityId>>;
    /// The entity now, its identifiable values opened.
    fn entity_now(&self, id: &EntityId) -> pole_store::Result<Option<EntityState>>;
}

impl PlanReads for Store {
    fn holders(&self, identifier: &Identifier, contributor: Option<&str>) -> pole_store::Result<Vec<EntityId>> {
        self.find_by_identifier_of(identifier, contributor)
    }

    fn entity_now(&self, id: &EntityId) -> pole_store::Result<Option<EntityState>> {
        self.entity(id, ReadAt::NOW)
    }
}

impl PlanReads for DryRun<'_> {
    fn holders(&self, identifier: &Identifier, contributor: Option<&str>) -> pole_store::Result<Vec<EntityId>> {
        self.find_by_identifier_of(identifier, contributor)
    }

    fn entity_now(&self, id: &EntityId) -> pole_store::Result<Option<EntityState>> {
        self.entity(id)
    }
}

/// A message read and mapped, before the store is asked anything.
#[derive(Debug)]
pub struct Mapped {
    message: Message,
    control_id: String,
    record: AdtRecord,
}

impl Mapped {
    /// Every identifier resolution will look up: the person's (PID-3), the merged person's
    /// (MRG-1) and the hospital's ODS code, without duplicates.
    pub fn identifiers(&self) -> Vec<Identifier> {
        let record = &self.record;
        let mut wanted: Vec<Identifier> = Vec::new();
        let facility = record.encounter.as_ref().and_then(|e| e.facility.as_ref());
        let ods = facility.map(|f| Identifier::new("ods", f.ods.clone()));
        for identifier in record.person.identifiers.iter().chain(&record.merge_from).cloned().chain(ods) {
            if !wanted.contains(&identifier) {
                wanted.push(identifier);
            }
        }
        wanted
    }

    /// Whether the message merges people (A40).
    pub fn merges(&self) -> bool {
        self.record.event == AdtEvent::A40
    }

    fn processed(self, warnings: Vec<String>, outcome: MessageOutcome) -> Processed {
        Processed { message: Some(self.message), control_id: self.control_id, warnings, outcome }
    }
}

/// What reading a message gave: an outcome already (it cannot be mapped), or a mapping.
#[derive(Debug)]
pub enum Read {
    Done(Box<Processed>),
    Mapped(Box<Mapped>),
}

/// Parses and maps one message; touches no store.
pub fn read_message(text: &str, context: &MessageContext<'_>) -> Read {
    let message = match Message::parse(text) {
        Ok(message) => message,
        Err(error) => {
            let control_id = Message::parse_structure(text).map(|m| m.header().control_id).unwrap_or_default();
            let processed = Processed {
                message: None,
                control_id,
                warnings: Vec::new(),
                outcome: MessageOutcome::Unreadable(error),
            };
            return Read::Done(Box::new(processed));
        }
    };
    let control_id = message.header().control_id.trim().to_owned();
    let outcome = match hl7::map_adt(&message, context.council) {
        Ok(record) => {
            return Read::Mapped(Box::new(Mapped { message, control_id, record: record.at_row(context.row) }));
        }
        Err(error @ Hl7Error::UnsupportedMessageType { .. }) => MessageOutcome::Unsupported(error),
        Err(error) => MessageOutcome::Unmappable(error),
    };
    Read::Done(Box::new(Processed { message: Some(message), control_id, warnings: Vec::new(), outcome }))
}

/// A mapped message resolved against the store: its transaction, and what the plan read
/// that another message could change (the pipelining rule in [`ingest_hl7`] uses both).
#[derive(Debug)]
pub struct Plan {
    pub request: TransactionRequest,
    pub warnings: Vec<String>,
    /// Identifiers nobody held when resolved that this transaction adds to an existing
    /// person, so until it is applied a look-up of them is stale.
    pub claims: Vec<Identifier>,
    /// Identifiers nobody held when resolved whose holder this transaction creates, by the
    /// id it chose for it: a message queued behind it may name that holder.
    pub creates: Vec<(Identifier, EntityId)>,
    /// The person this transaction creates and the home address it gives them.
    pub creates_addresses: Option<(EntityId, Vec<CurrentAddress>)>,
    /// Entities an in-flight message creates that this plan resolved an identifier to. The
    /// request names each one, so the store refuses it if that creation did not happen.
    pub depends_on: Vec<EntityId>,
    /// The stored person whose current home addresses the plan read.
    pub address_of: Option<EntityId>,
    /// Whether the transaction moves that person's home address.
    pub moves_address: bool,
    /// An operation the transaction asks for that the submitter may not make: the message
    /// is refused, never submitted.
    pub forbidden: Option<Operation>,
}

impl Plan {
    /// Whether the request names every in-flight creation the plan read (see `depends_on`).
    fn names_what_it_depends_on(&self) -> bool {
        self.depends_on.iter().all(|id| self.request.changes.iter().any(|change| names(change, id)))
    }
}

/// Whether a change targets the entity or links, unlinks or merges it.
fn names(change: &ChangeRequest, id: &EntityId) -> bool {
    let is = |target: &Target| matches!(target, Target::Entity(e) if e == id);
    is(&change.target)
        || match &change.op {
            OpRequest::Link { to, .. } | OpRequest::Unlink { to, .. } => is(to),
            OpRequest::Merge { into } => is(into),
            _ => false,
        }
}

/// What the messages in flight will have created once applied: who will hold each
/// identifier they create the holder of, and the home addresses of the people they create.
/// A plan made now reads these where the store does not know the identifier yet.
#[derive(Debug, Default)]
pub struct InFlightCreations {
    holders: HashMap<Identifier, EntityId>,
    addresses: HashMap<EntityId, Vec<CurrentAddress>>,
}

impl InFlightCreations {
    fn add(&mut self, plan_creates: &[(Identifier, EntityId)], addresses: Option<(EntityId, Vec<CurrentAddress>)>) {
        for (identifier, id) in plan_creates {
            self.holders.insert(identifier.clone(), id.clone());
        }
        if let Some((person, current)) = addresses {
            self.addresses.insert(person, current);
        }
    }

    fn remove(&mut self, plan_creates: &[(Identifier, EntityId)], person: Option<&EntityId>) {
        for (identifier, id) in plan_creates {
            if self.holders.get(identifier) == Some(id) {
                self.holders.remove(identifier);
            }
        }
        if let Some(person) = person {
            self.addresses.remove(person);
        }
    }
}

/// Resolves a mapped message against the store as it is now (people and hospitals by
/// identifier, an existing person's home addresses), and what `in_flight` will create
/// where the store does not know an identifier, and builds its transaction. Reads only.
pub fn plan(
    store: &(impl PlanReads + ?Sized),
    mapped: &Mapped,
    context: &MessageContext<'_>,
    in_flight: &InFlightCreations,
) -> pole_store::Result<Plan> {
    let record = &mapped.record;
    let mut warnings = record.warnings.clone();
    let (known, depends_on) = resolve_all(store, in_flight, mapped.identifiers(), record, &mut warnings)?;
    let resolve = |id: &Identifier| known.iter().find(|(k, _)| k == id).and_then(|(_, found)| found.clone());
    let unheld: Vec<Identifier> = known.iter().filter(|(_, found)| found.is_none()).map(|(id, _)| id.clone()).collect();
    let person = hl7::resolve_person(&record.person.identifiers, &resolve).target;
    let (mut addresses, mut address_of, mut moves_address) = (Vec::new(), None, false);
    if let (Some(person), Some(address), true) =
        (person.clone(), &record.person.address, record.event.states_demographics())
    {
        addresses = match in_flight.addresses.get(&person) {
            Some(created) => created.clone(),
            None => current_addresses(store, &person)?,
        };
        match hl7::address_decision(address, record.valid_time, &addresses) {
            AddressDecision::Keep => {}
            AddressDecision::Move { .. } => moves_address = true,
            AddressDecision::Stale => warnings.push(
                "PID-11: the person has lived at another address since after this message's time: \
                 the address is not moved"
                    .into(),
            ),
        }
        address_of = Some(person);
    }
    let new = hl7::NewEntities::chosen();
    let mut request = hl7::to_request(record, resolve, &addresses, &new);
    // Both replace `to_request`'s placeholders: the journal names who wrote the message
    // and in which role, not the adapter.
    request.actor = context.actor.to_owned();
    request.role = context.role.to_owned();
    request.source = Source {
        file: context.file.map(str::to_owned),
        batch: Some(format!("HL7 {} {}", record.message_type, record.control_id)),
        ..request.source
    };
    let (creates, claims, creates_addresses) = created_by(&request, &new, unheld, record);
    let forbidden = request.operations().into_iter().find(|op| !context.operations.contains(op));
    Ok(Plan { request, warnings, claims, creates, creates_addresses, depends_on, address_of, moves_address, forbidden })
}

/// Splits the identifiers nobody held into those whose holder the request creates (with
/// its id) and those it adds to an existing entity, and says which home address a person
/// it creates gets. Only with a valid time: the link's start is then known here.
#[allow(clippy::type_complexity)]
fn created_by(
    request: &TransactionRequest,
    new: &hl7::NewEntities,
    unheld: Vec<Identifier>,
    record: &AdtRecord,
) -> (Vec<(Identifier, EntityId)>, Vec<Identifier>, Option<(EntityId, Vec<CurrentAddress>)>) {
    let created_with = |target: &Target| {
        request.changes.iter().find_map(|change| match (&change.op, &change.target) {
            (OpRequest::Create { identifiers, .. }, t) if t == target => Some(identifiers.as_slice()),
            _ => None,
        })
    };
    let (mut creates, mut claims) = (Vec::new(), Vec::new());
    for identifier in unheld {
        let holder = [&new.person, &new.hospital]
            .into_iter()
            .find(|t| record.valid_time.is_some() && created_with(t).is_some_and(|ids| ids.contains(&identifier)));
        match holder {
            Some(Target::Entity(id)) => creates.push((identifier, id.clone())),
            _ => claims.push(identifier),
        }
    }
    let addresses = match (&new.person, &new.address, &record.person.address, record.valid_time) {
        (Target::Entity(person), Target::Entity(address), Some(text), Some(since))
            if created_with(&new.person).is_some() && created_with(&new.address).is_some() =>
        {
            let current = CurrentAddress { id: address.clone(), address: text.clone(), since: Some(since) };
            Some((person.clone(), vec![current]))
        }
        (Target::Entity(person), _, _, Some(_)) if created_with(&new.person).is_some() => {
            Some((person.clone(), Vec::new()))
        }
        _ => None,
    };
    (creates, claims, addresses)
}

/// The `address` entities a person's `resides_at` links lead to now. Care settings are left
/// out: PID-11 is a home address and does not replace a placement another source recorded.
fn current_addresses(store: &(impl PlanReads + ?Sized), person: &EntityId) -> pole_store::Result<Vec<CurrentAddress>> {
    let Some(state) = store.entity_now(person)? else { return Ok(Vec::new()) };
    let mut current = Vec::new();
    for link in state.links.iter().filter(|l| l.role == "resides_at") {
        let Some(address) = store.entity_now(&link.to)? else { continue };
        if address.entity_type != "address" {
            continue;
        }
        let text = |name: &str| address.attribute(name).and_then(|v| v.as_str()).map(str::to_owned);
        let record = AddressRecord {
            line1: text("line1"),
            line2: text("line2"),
            town: text("town"),
            postcode: text("postcode"),
        };
        current.push(CurrentAddress { id: link.to.clone(), address: record, since: link.valid_from });
    }
    Ok(current)
}

/// Queues a planned message's transaction without waiting for it.
pub fn submit(store: &Store, mapped: Mapped, plan: Plan) -> pole_store::Result<InFlight> {
    let pending = store.submit(plan.request)?;
    Ok(InFlight { pending, mapped, warnings: plan.warnings })
}

/// A message whose transaction is queued.
#[derive(Debug)]
pub struct InFlight {
    pending: PendingCommit,
    mapped: Mapped,
    warnings: Vec<String>,
}

impl InFlight {
    /// Waits until the transaction is durable (or refused) and says what became of it.
    pub fn wait(self) -> pole_store::Result<Processed> {
        let (mapped, warnings, outcome) = self.outcome()?;
        Ok(mapped.processed(warnings, outcome))
    }

    /// As [`InFlight::wait`], keeping the mapping apart, for planning the message again.
    fn outcome(self) -> pole_store::Result<(Mapped, Vec<String>, MessageOutcome)> {
        let outcome = match self.pending.wait()? {
            Ok(committed) if committed.replayed => MessageOutcome::AlreadyApplied { seq: committed.seq },
            Ok(committed) => MessageOutcome::Committed(committed),
            // The request depends on what the store held when the message was mapped, so a
            // resend maps to another request under the same key: that is "already applied".
            Err(Rejection::IdempotencyKeyReused { seq, .. }) => MessageOutcome::AlreadyApplied { seq },
            Err(rejection) => MessageOutcome::Refused(rejection),
        };
        Ok((self.mapped, self.warnings, outcome))
    }
}

/// Looks up every identifier `to_request` will ask about, so that a store failure fails the
/// message instead of reading as "nobody holds it" (which would create a duplicate).
/// Identifiers held by another person than the message's, and identifiers held by several
/// entities, are warned about: linkage conflicts are for a human, never moved silently.
///
/// An identifier the store does not know but an in-flight message creates the holder of
/// resolves to that holder, which the second list names.
#[allow(clippy::type_complexity)]
fn resolve_all(
    store: &(impl PlanReads + ?Sized),
    in_flight: &InFlightCreations,
    wanted: Vec<Identifier>,
    record: &AdtRecord,
    warnings: &mut Vec<String>,
) -> pole_store::Result<(Vec<(Identifier, Option<EntityId>)>, Vec<EntityId>)> {
    let mut known: Vec<(Identifier, Option<EntityId>)> = Vec::with_capacity(wanted.len());
    let mut depends_on: Vec<EntityId> = Vec::new();
    let contributor = record.source.council.as_deref();
    for identifier in wanted {
        let mut found = store.holders(&identifier, contributor)?;
        if let (true, Some(holder)) = (found.is_empty(), in_flight.holders.get(&identifier)) {
            if !depends_on.contains(holder) {
                depends_on.push(holder.clone());
            }
            found.push(holder.clone());
        }
        if found.len() > 1 {
            warnings.push(format!(
                "identifier {} is held by {} entities; the first ({}) is used",
                identifier.system,
                found.len(),
                found[0]
            ));
        }
        known.push((identifier, found.into_iter().next()));
    }
    let lookup = |id: &Identifier| known.iter().find(|(k, _)| k == id).and_then(|(_, f)| f.clone());
    let found = hl7::resolve_person(&record.person.identifiers, &lookup);
    for (identifier, other) in &found.conflicts {
        warnings.push(format!(
            "PID-3: identifier {} names another person ({other}) than the message's other identifiers: \
             left where it is, for a human to resolve",
            identifier.system
        ));
    }
    Ok((known, depends_on))
}

/// Ingests an HL7 v2 file held in memory: single messages or FHS/BHS batches, each message
/// committed as its own transaction in file order, one report row per message.
/// `options.council` empty means "not given": each message's sending facility (MSH-4) is
/// then its source. `options.profile` is not used. An `Err` is a failure of the run (a bad
/// council code, the store failing); everything about the file's content is in the report.
pub fn ingest_hl7(store: &Store, bytes: &[u8], options: &Options<'_>, progress: &mut dyn FnMut(u64)) -> Result<Report> {
    let utf8 = std::str::from_utf8(bytes).is_ok();
    let text = hl7::decode_text(bytes);
    let segments = hl7::segment_lines(&text).map(Ok);
    ingest_segments(store, segments, Encoding { utf8, bom: bytes.starts_with(BOM) }, options, progress)
}

/// Ingests an HL7 v2 file from disk as [`ingest_hl7`] does, streamed: read once to tell
/// UTF-8 from Latin-1, then a segment at a time, holding only the messages in flight.
pub fn ingest_hl7_file(
    store: &Store,
    path: &std::path::Path,
    options: &Options<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let read_error = |source| IngestError::Read { path: path.to_owned(), source };
    let open = || std::fs::File::open(path).map(std::io::BufReader::new);
    let utf8 = open().and_then(crate::text::is_utf8).map_err(read_error)?;
    let mut input = open().map_err(read_error)?;
    let bom = std::io::BufRead::fill_buf(&mut input).map_err(read_error)?.starts_with(BOM);
    let segments = hl7::SegmentReader::new(input, utf8);
    ingest_segments(store, segments, Encoding { utf8, bom }, options, progress)
}

const BOM: &[u8] = b"\xef\xbb\xbf";

/// How the file's bytes read as text.
#[derive(Debug, Clone, Copy)]
struct Encoding {
    utf8: bool,
    bom: bool,
}

/// The file path over segments, from memory or a stream.
fn ingest_segments<S: AsRef<str>>(
    store: &Store,
    segments: impl Iterator<Item = std::io::Result<S>>,
    encoding: Encoding,
    options: &Options<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let council = match options.council.trim() {
        "" => None,
        code if pole_model::is_council_code(code) => Some(code),
        code => return Err(IngestError::BadCouncil(code.to_owned())),
    };
    let mut report =
        Report::new(options.file_name, options.format.as_str(), council.unwrap_or("(MSH-4)"), PROFILE, options.dry_run);
    report.policy = POLICY;
    report.byte_order_mark = encoding.bom;
    report.encoding = if encoding.utf8 { "UTF-8" } else { "ISO-8859-1" };

    // The whole file: its window's rule covers its own messages, not another ingest's.
    let _resolving = crate::resolving();
    let origin = Origin {
        store,
        council,
        file: options.file_name,
        actor: options.actor,
        role: options.role,
        dry_run: options.dry_run,
        operations: options.operations,
    };
    let mut window = Window::new(origin, progress);
    let mut splitter = hl7::Splitter::default();
    let mut read_failure = None;
    let mut segments = segments.fuse();
    loop {
        let batch_message = match segments.next() {
            Some(Ok(segment)) => match splitter.segment(segment.as_ref()) {
                Some(message) => message,
                None => continue,
            },
            Some(Err(e)) => {
                read_failure = Some(e);
                break;
            }
            None => break,
        };
        ingest_message(&batch_message, &mut window, &mut report)?;
    }
    match read_failure {
        // The message being read when the input failed may be cut short: it is not applied.
        Some(e) => {
            window.drain(&mut report)?;
            report.file_problems.push(format!(
                "reading the file failed after message {}: {e}; no message after it was read",
                report.rows_read
            ));
            report.status = Status::Incomplete;
            return Ok(report);
        }
        None => match splitter.finish() {
            Ok((last, envelope)) => {
                if let Some(batch_message) = last {
                    ingest_message(&batch_message, &mut window, &mut report)?;
                }
                report.file_problems.extend(envelope.issues.iter().map(ToString::to_string));
            }
            Err(error) => {
                report.file_problems.push(format!("not an HL7 v2 file: {error}"));
                report.status = Status::Rejected;
                return Ok(report);
            }
        },
    }
    window.drain(&mut report)?;
    if report.rows_read == 0 {
        report.file_problems.push("the file holds no messages (no MSH segment)".into());
    }
    let (changed, accepted) = (window.changed, window.accepted);
    report.status = match (options.dry_run, changed, accepted) {
        (true, _, _) => Status::DryRun,
        (false, true, _) => Status::Committed,
        (false, false, true) => Status::Unchanged,
        (false, false, false) => Status::NothingAccepted,
    };
    Ok(report)
}

/// One message of the file path: planned under the window's rule and submitted, or
/// reported at once when it cannot be.
fn ingest_message(batch_message: &hl7::BatchMessage, window: &mut Window<'_>, report: &mut Report) -> Result<()> {
    let row = batch_message.index as u64;
    let line = batch_message.segment_index as u64;
    let size = batch_message.text.len() as u64;
    let store = window.origin.store;
    let context = window.origin.context(row);
    let mapped = match read_message(&batch_message.text, &context) {
        Read::Done(processed) => return window.push(row, line, size, Slot::Done(processed), report),
        Read::Mapped(mapped) => *mapped,
    };
    if let Some(dry_run) = window.dry_run.as_mut() {
        let processed = judge(dry_run, mapped, &context)?;
        return window.push(row, line, size, Slot::Done(Box::new(processed)), report);
    }
    // Messages from different senders (a file without a council, its MSH-4 varying) are
    // never in flight together: each resolves to its own sender's records, so what one
    // creates is nothing another may resolve to.
    let sender = mapped.record.source.council.clone();
    if window.sender.as_ref().is_some_and(|s| *s != sender) {
        window.drain(report)?;
    }
    window.sender = Some(sender);
    // The rule of the module comment: resolve only what no in-flight message can change.
    let merges = mapped.merges();
    if merges || window.merges > 0 || mapped.identifiers().iter().any(|id| window.claimed.contains_key(id)) {
        window.drain(report)?;
    }
    let mut planned = plan(store, &mapped, &context, &window.creations)?;
    let moved = planned.address_of.as_ref().is_some_and(|person| window.moving.contains_key(person));
    if moved || !planned.names_what_it_depends_on() {
        window.drain(report)?;
        planned = plan(store, &mapped, &context, &window.creations)?;
    }
    if let Some(operation) = planned.forbidden {
        let processed = mapped.processed(planned.warnings, MessageOutcome::Forbidden { operation });
        return window.push(row, line, size, Slot::Done(Box::new(processed)), report);
    }
    let footprint = Footprint {
        claims: std::mem::take(&mut planned.claims),
        creates: std::mem::take(&mut planned.creates),
        creates_addresses: planned.creates_addresses.take(),
        depends_on: std::mem::take(&mut planned.depends_on),
        moves: planned.address_of.clone().filter(|_| planned.moves_address),
        merges,
    };
    let flight = submit(store, mapped, planned)?;
    window.push(row, line, size, Slot::Waiting(Box::new(flight), footprint), report)?;
    if merges {
        window.drain(report)?;
    }
    Ok(())
}

/// How many messages the file path keeps in flight: enough for group commit to share one
/// journal sync among many transactions and for planning to run while groups are synced and
/// applied (BENCHMARKS.md, log: 1,024 is faster than 256, 2,048 no faster),
/// few enough that the messages held stay a few megabytes and a store failure leaves
/// little unreported.
pub const WINDOW: usize = 1024;

/// What an in-flight message may change that a later message's plan could have read, and
/// what its own plan read from the messages before it.
#[derive(Debug)]
struct Footprint {
    claims: Vec<Identifier>,
    creates: Vec<(Identifier, EntityId)>,
    creates_addresses: Option<(EntityId, Vec<CurrentAddress>)>,
    depends_on: Vec<EntityId>,
    moves: Option<EntityId>,
    merges: bool,
}

impl Footprint {
    fn person_created(&self) -> Option<&EntityId> {
        self.creates_addresses.as_ref().map(|(person, _)| person)
    }
}

/// One message of the window, in file order.
#[derive(Debug)]
enum Slot {
    Done(Box<Processed>),
    Waiting(Box<InFlight>, Footprint),
}

/// Where the file's messages come from and how they are applied.
struct Origin<'a> {
    store: &'a Store,
    council: Option<&'a str>,
    file: &'a str,
    actor: &'a str,
    role: &'a str,
    dry_run: bool,
    operations: &'a [Operation],
}

impl<'a> Origin<'a> {
    fn context(&self, row: u64) -> MessageContext<'a> {
        MessageContext {
            council: self.council,
            file: Some(self.file),
            row,
            actor: self.actor,
            role: self.role,
            dry_run: self.dry_run,
            operations: self.operations,
        }
    }
}

/// The messages submitted and not yet reported, oldest first, with the union of their
/// footprints (counted, so a footprint leaves the union when its own message is reported).
///
/// A message planned from an in-flight message's creations names them, so if that message
/// is refused the store refuses this one too: it is then planned again, from the store,
/// once every message in flight has been answered (see [`Window::replan_after_refusal`]).
struct Window<'a> {
    origin: Origin<'a>,
    /// In a dry run, the store's dry run of the messages before.
    dry_run: Option<DryRun<'a>>,
    slots: VecDeque<(u64, u64, u64, Slot)>,
    claimed: HashMap<Identifier, usize>,
    creations: InFlightCreations,
    moving: HashMap<EntityId, usize>,
    merges: usize,
    /// The source of the messages in flight, once one was planned.
    sender: Option<Option<String>>,
    /// Entities an in-flight message was to create and did not (refused or already applied).
    not_created: HashSet<EntityId>,
    changed: bool,
    /// A message was accepted (applied, already applied, or planned in a dry run).
    accepted: bool,
    reported_bytes: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<'a> Window<'a> {
    fn new(origin: Origin<'a>, progress: &'a mut dyn FnMut(u64)) -> Self {
        Window {
            dry_run: origin.dry_run.then(|| origin.store.dry_run()),
            origin,
            slots: VecDeque::new(),
            claimed: HashMap::new(),
            creations: InFlightCreations::default(),
            sender: None,
            moving: HashMap::new(),
            merges: 0,
            not_created: HashSet::new(),
            changed: false,
            accepted: false,
            reported_bytes: 0,
            progress,
        }
    }

    /// Adds a message at the back; reports the oldest when the window is full.
    fn push(&mut self, row: u64, line: u64, size: u64, slot: Slot, report: &mut Report) -> Result<()> {
        if let Slot::Waiting(_, footprint) = &slot {
            for id in &footprint.claims {
                *self.claimed.entry(id.clone()).or_default() += 1;
            }
            self.creations.add(&footprint.creates, footprint.creates_addresses.clone());
            if let Some(person) = &footprint.moves {
                *self.moving.entry(person.clone()).or_default() += 1;
            }
            self.merges += usize::from(footprint.merges);
        }
        self.slots.push_back((row, line, size, slot));
        while self.slots.len() > WINDOW {
            self.report_oldest(report)?;
        }
        Ok(())
    }

    /// Waits for every message in flight and reports them, in file order.
    fn drain(&mut self, report: &mut Report) -> Result<()> {
        while !self.slots.is_empty() {
            self.report_oldest(report)?;
        }
        // Nothing in flight can depend on a creation any more.
        self.not_created.clear();
        Ok(())
    }

    /// Waits for one in-flight message and takes its footprint out of the union. A message
    /// refused because a creation it named did not happen comes back as `Err` with its
    /// mapping, to be planned again.
    fn settle(&mut self, flight: InFlight, footprint: &Footprint) -> Result<std::result::Result<Processed, Mapped>> {
        let (mapped, warnings, outcome) = flight.outcome()?;
        for id in &footprint.claims {
            release(&mut self.claimed, id);
        }
        self.creations.remove(&footprint.creates, footprint.person_created());
        if let Some(person) = &footprint.moves {
            release(&mut self.moving, person);
        }
        self.merges -= usize::from(footprint.merges);
        if !matches!(outcome, MessageOutcome::Committed(_)) {
            // A person created is among them: it holds every identifier the message names.
            self.not_created.extend(footprint.creates.iter().map(|(_, id)| id.clone()));
        }
        let lost_dependency = footprint.depends_on.iter().any(|id| self.not_created.contains(id));
        if matches!(outcome, MessageOutcome::Refused(_)) && lost_dependency {
            return Ok(Err(mapped));
        }
        Ok(Ok(mapped.processed(warnings, outcome)))
    }

    /// Waits for the oldest message (only then can it read as applied) and reports it.
    fn report_oldest(&mut self, report: &mut Report) -> Result<()> {
        let Some((row, line, size, slot)) = self.slots.pop_front() else { return Ok(()) };
        let processed = match slot {
            Slot::Done(processed) => *processed,
            Slot::Waiting(flight, footprint) => match self.settle(*flight, &footprint)? {
                Ok(processed) => processed,
                Err(mapped) => self.replan_after_refusal(row, mapped)?,
            },
        };
        let mut row_report = RowReport::new(row, line);
        self.changed |= report_row(&mut row_report, &processed, &mut report.changes);
        self.accepted |= !row_report.is_rejected();
        report.add(row_report);
        self.reported_bytes += size;
        (self.progress)(self.reported_bytes);
        Ok(())
    }

    /// A message (the oldest) was refused because a message before it did not create what
    /// it named. Every message still in flight is waited for (they were queued before this
    /// one is queued again, and may be refused the same way), then this one and each such
    /// other, in file order, is planned from the store and committed one at a time, so that
    /// each plan reads a store that holds everything queued before it.
    fn replan_after_refusal(&mut self, row: u64, mapped: Mapped) -> Result<Processed> {
        let mut settled = Vec::with_capacity(self.slots.len());
        for (row, line, size, slot) in std::mem::take(&mut self.slots) {
            let answer = match slot {
                Slot::Waiting(flight, footprint) => self.settle(*flight, &footprint)?,
                Slot::Done(processed) => Ok(*processed),
            };
            settled.push((row, line, size, answer));
        }
        let processed = self.commit_alone(row, mapped)?;
        for (row, line, size, answer) in settled {
            let processed = match answer {
                Ok(processed) => processed,
                Err(mapped) => self.commit_alone(row, mapped)?,
            };
            self.slots.push_back((row, line, size, Slot::Done(Box::new(processed))));
        }
        Ok(processed)
    }

    /// Plans a message from the store alone, commits it and waits for it.
    fn commit_alone(&self, row: u64, mapped: Mapped) -> Result<Processed> {
        Ok(plan_and_commit(self.origin.store, mapped, &self.origin.context(row))?)
    }
}

/// Takes one count off a key, removing it at zero.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// Fills one report row from a processed message; true when it changed the store.
fn report_row(row: &mut RowReport, processed: &Processed, changes: &mut usize) -> bool {
    let warn = |row: &mut RowReport| {
        for warning in &processed.warnings {
            row.warn(field_named_in(warning), "", warning.clone());
        }
    };
    match &processed.outcome {
        MessageOutcome::Unreadable(error) | MessageOutcome::Unsupported(error) | MessageOutcome::Unmappable(error) => {
            row.error(&error_field(error), &error_value(error), error.to_string());
            false
        }
        MessageOutcome::Refused(rejection) => {
            row.error("", &processed.control_id, format!("the store refused the message: {rejection}"));
            false
        }
        MessageOutcome::Forbidden { operation } => {
            row.error("MSH-9", &processed.control_id, forbidden_reason(*operation));
            false
        }
        MessageOutcome::Committed(committed) => {
            warn(row);
            *changes += committed.changes;
            committed.changes > 0
        }
        MessageOutcome::AlreadyApplied { seq } => {
            // A note, not a warning: the message was accepted (before), and a resend is
            // exactly what the sender should do when unsure. The outcome stays `accepted`.
            row.issues.push(Issue {
                severity: Severity::Warning,
                column: "MSH-10".into(),
                value: processed.control_id.clone(),
                reason: format!("already applied (seq {seq}): nothing changed"),
            });
            false
        }
        MessageOutcome::Planned { changes: planned } => {
            warn(row);
            *changes += planned;
            false
        }
    }
}

/// The segment and field an error names, as `PID-3`, for the report's column.
fn error_field(error: &Hl7Error) -> String {
    if let Some(at) = error.location() {
        return format!("{}-{}", at.segment, at.field);
    }
    match error {
        Hl7Error::MissingSegment { segment, .. } => (*segment).to_owned(),
        Hl7Error::UnsupportedMessageType { .. } => "MSH-9".into(),
        Hl7Error::UnsupportedVersion { .. } => "MSH-12".into(),
        Hl7Error::MissingMsh { .. } | Hl7Error::TruncatedMsh { .. } => "MSH".into(),
        Hl7Error::BadEncodingCharacters { .. } => "MSH-2".into(),
        Hl7Error::BadSegmentName { segment_index, .. } => format!("segment {segment_index}"),
        _ => String::new(),
    }
}

/// The offending text an error quotes, for the report's value.
fn error_value(error: &Hl7Error) -> String {
    match error {
        Hl7Error::MissingMsh { found }
        | Hl7Error::TruncatedMsh { found }
        | Hl7Error::BadEncodingCharacters { found, .. }
        | Hl7Error::BadSegmentName { found, .. }
        | Hl7Error::BadEscape { found, .. }
        | Hl7Error::UnsupportedVersion { found }
        | Hl7Error::UnsupportedMessageType { found }
        | Hl7Error::BadValue { found, .. } => found.clone(),
        _ => String::new(),
    }
}

/// The first `SEG-n` field reference in a warning (`PID-7`), or empty when it names none.
fn field_named_in(text: &str) -> &str {
    let bytes = text.as_bytes();
    for start in 0..bytes.len() {
        let name = bytes.get(start..start + 3);
        let starts_word = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let is_name = name.is_some_and(|n| {
            n[0].is_ascii_uppercase() && n.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        if !(starts_word && is_name && bytes.get(start + 3) == Some(&b'-')) {
            continue;
        }
        let digits = bytes[start + 4..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            // ASCII throughout, so these are character boundaries.
            return text.get(start..start + 4 + digits).unwrap_or_default();
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_references_are_found_in_warnings() {
        assert_eq!(field_named_in("segment 3 (PID), field PID-7: \"1940\" gives no day: not set"), "PID-7");
        assert_eq!(field_named_in("PID-30 says the patient died"), "PID-30");
        assert_eq!(field_named_in("neither PV1-3.4 nor MSH-4 names the hospital"), "PV1-3");
        assert_eq!(field_named_in("no field here, not even XPID-3 or PID-"), "");
        assert_eq!(field_named_in("é PID-8 é"), "PID-8");
    }

    #[test]
    fn outcomes_map_to_ack_codes() {
        let unreadable = MessageOutcome::Unreadable(Hl7Error::Empty);
        assert_eq!(unreadable.ack_code(), AckCode::Reject);
        assert!(unreadable.ack_error().is_some());
        let refused = MessageOutcome::Refused(Rejection::Transaction { reason: "no".into() });
        assert_eq!(refused.ack_code(), AckCode::Error);
        assert_eq!(MessageOutcome::AlreadyApplied { seq: 3 }.ack_code(), AckCode::Accept);
        assert!(MessageOutcome::AlreadyApplied { seq: 3 }.ack_error().is_none());
    }
}
