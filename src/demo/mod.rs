//! A seeded, reproducible generator of synthetic adult social care data for England, used to
//! demonstrate and load-test the store.
//!
//! It plays six councils submitting client-level data from their case-management systems
//! after a national load of reference data (care providers, CQC-registered care settings,
//! hospitals): new clients with their addresses, carers, contacts, referrals and
//! assessments; services and reviews; safeguarding concerns with their allegations; hospital
//! admissions and discharges; and the later updates that give entities several versions.
//! It plants the defects real submissions have, and counts each in [`DemoStats`]: missing
//! and mistyped NHS numbers, local codes instead of national ones, the same person recorded
//! by two councils, and batches re-keyed from paper months late.
//!
//! The generator emits one [`TransactionRequest`] at a time and is told what became of it:
//! [`DemoGenerator::committed`] with the ids the store assigned to its local refs, or
//! [`DemoGenerator::rejected`]. Later transactions refer to committed entities by id. The
//! same seed and the same assigned ids give the same requests; memory stays bounded however
//! many changes are asked for, because only small pools of recent entities are kept.
//!
//! Dates come from a simulated clock that runs from April 2020 to March 2026 as the run
//! progresses, never from the machine's clock, so a seed always gives the same data and
//! every valid time lies in the past.

mod care;
mod codes;
mod followups;
mod hospital;
mod names;
mod people;
mod places;
mod pools;
mod reference;
mod safeguarding;
mod sim;
mod stats;
mod tx;
mod world;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::Days;
use pole_model::{EntityId, Source};
use pole_store::{OpRequest, Rejection, TransactionRequest};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::demo::places::COUNCILS;
use crate::demo::reference::ReferencePlan;
use crate::demo::sim::{Sim, END, START};
use crate::demo::tx::{Claim, Meta, Tx};
use crate::demo::world::{OnCommit, World};

pub use crate::demo::stats::DemoStats;

/// The councils the demo submits for, as `(code, name)`.
pub fn councils() -> impl Iterator<Item = (&'static str, &'static str)> {
    COUNCILS.iter().map(|def| (def.code, def.name))
}

/// How much to generate and from which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoConfig {
    /// The number of changes to emit, approximately (the last transaction may overshoot).
    pub changes: u64,
    pub seed: u64,
}

/// Kinds of transaction a council sends, after the reference load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    NewClients,
    Safeguarding,
    Updates,
    Hospital,
    Maintenance,
    Duplicate,
    LateRekey,
    Registration,
}

/// The last emitted transaction, waiting for its outcome.
#[derive(Debug)]
struct Pending {
    on_commit: Vec<OnCommit>,
    stats: DemoStats,
    /// Kept only when the transaction carries deliberately invalid NHS numbers, to resubmit
    /// it without them once the store refuses it.
    resubmittable: Option<(TransactionRequest, Vec<usize>)>,
    claims: BTreeSet<Claim>,
}

/// The demo data generator. See the module documentation.
#[derive(Debug)]
pub struct DemoGenerator {
    config: DemoConfig,
    sim: Sim,
    plan: ReferencePlan,
    stats: DemoStats,
    emitted: u64,
    transactions: u64,
    /// Transactions emitted and not yet answered, oldest first: the store answers in the
    /// order it was handed them, so a caller may keep several in flight.
    pending: VecDeque<Pending>,
    resubmission: Option<(TransactionRequest, Pending)>,
    /// Claims of the pending transactions: the world changes they make are only known once
    /// they commit, so no later transaction may make a conflicting change meanwhile.
    in_flight: BTreeSet<Claim>,
}

/// Outcomes never reported beyond this many leave their entities unknown (a dry run).
const MAX_PENDING: usize = 4096;

impl DemoGenerator {
    pub fn new(config: DemoConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let salt = rand::Rng::gen::<u64>(&mut rng);
        let stats = DemoStats { councils: COUNCILS.len() as u64, ..DemoStats::default() };
        DemoGenerator {
            config,
            sim: Sim { rng, world: World::new(salt), today: START },
            plan: ReferencePlan::new(config.changes),
            stats,
            emitted: 0,
            transactions: 0,
            pending: VecDeque::new(),
            resubmission: None,
            in_flight: BTreeSet::new(),
        }
    }

    /// The next transaction, or None once about `config.changes` changes have been emitted.
    pub fn next_transaction(&mut self) -> Option<TransactionRequest> {
        if let Some((request, pending)) = self.resubmission.take() {
            self.emitted += request.changes.len() as u64;
            self.stats.transactions += 1;
            self.pending.push_back(pending);
            return Some(request);
        }
        // An outcome never reported leaves its entities unknown: forget them.
        while self.pending.len() >= MAX_PENDING {
            if let Some(forgotten) = self.pending.pop_front() {
                self.release(&forgotten);
            }
        }
        if self.emitted >= self.config.changes {
            return None;
        }
        self.sim.today = self.clock();
        let tx = match self.sim.reference_batch(&mut self.plan) {
            Some(tx) => tx,
            None => self.council_transaction(),
        };
        Some(self.emit(tx))
    }

    /// After a successful commit of the oldest unanswered transaction: the ids assigned to
    /// its refs (`Committed::refs`).
    pub fn committed(&mut self, refs: &BTreeMap<String, EntityId>) {
        let Some(pending) = self.pending.pop_front() else {
            return;
        };
        self.release(&pending);
        for item in pending.on_commit {
            self.sim.world.apply(item, refs);
        }
        self.stats.add(&pending.stats);
        self.stats.transactions_committed += 1;
    }

    /// After the store refused the oldest unanswered transaction: the generator records it
    /// and (for the deliberate invalid-NHS-number defect) emits a corrected resubmission next.
    pub fn rejected(&mut self, rejection: &Rejection) {
        self.stats.transactions_rejected += 1;
        let Some(mut pending) = self.pending.pop_front() else {
            return;
        };
        let planned = matches!(rejection, Rejection::Invalid { .. });
        match pending.resubmittable.take() {
            Some((mut request, bad)) if planned => {
                for &index in &bad {
                    if let Some(OpRequest::Create { identifiers, .. }) =
                        request.changes.get_mut(index).map(|c| &mut c.op)
                    {
                        identifiers.retain(|id| id.system != "nhs-number");
                    }
                }
                request.idempotency_key = request.idempotency_key.map(|key| format!("{key}-corrected"));
                request.reason =
                    Some("Corrected resubmission: NHS numbers failing the Modulus 11 check removed".into());
                pending.stats.nhs_numbers_missing += bad.len() as u64;
                self.stats.resubmissions += 1;
                self.resubmission = Some((request, pending));
            }
            _ => {
                self.release(&pending);
                self.stats.unexpected_rejections += 1;
                self.stats.last_unexpected_rejection = Some(rejection.to_string());
            }
        }
    }

    fn release(&mut self, pending: &Pending) {
        for claim in &pending.claims {
            self.in_flight.remove(claim);
        }
    }

    pub fn changes_emitted(&self) -> u64 {
        self.emitted
    }

    pub fn stats(&self) -> &DemoStats {
        &self.stats
    }

    /// The simulated submission date: START to END in proportion to the changes emitted.
    fn clock(&self) -> chrono::NaiveDate {
        let span = (END - START).num_days().max(0) as u64;
        let target = self.config.changes.max(1);
        let days = span * self.emitted.min(target) / target;
        START.checked_add_days(Days::new(days)).unwrap_or(END)
    }

    fn council_transaction(&mut self) -> Tx {
        let budget = self.config.changes.saturating_sub(self.emitted).min(1000) as usize;
        for _ in 0..20 {
            let c = self.pick_council();
            let activity = self.pick_activity(c);
            let mut tx = Tx::new(self.council_meta(c, activity));
            tx.hold(&self.in_flight);
            let sim = &mut self.sim;
            match activity {
                Activity::NewClients => {
                    for _ in 0..sim.weighted(&[(1, 70), (2, 20), (3, 10)]) {
                        sim.client_bundle(c, &mut tx, None);
                    }
                }
                Activity::Safeguarding => sim.safeguarding_batch(c, &mut tx),
                Activity::Updates => sim.update_batch(c, &mut tx, budget),
                Activity::Hospital => sim.hospital_batch(c, &mut tx),
                Activity::Maintenance => sim.maintenance_batch(c, &mut tx, budget),
                Activity::Duplicate => sim.duplicate_bundle(c, &mut tx),
                Activity::LateRekey => sim.late_batch(c, &mut tx),
                Activity::Registration => sim.registration_batch(c, &mut tx),
            }
            if tx.len() > 0 {
                return tx;
            }
        }
        // A new client's bundle is always possible, even before anything has committed.
        let mut tx = Tx::new(self.council_meta(0, Activity::NewClients));
        tx.hold(&self.in_flight);
        self.sim.client_bundle(0, &mut tx, None);
        tx
    }

    fn pick_council(&mut self) -> usize {
        let weights: Vec<(usize, u32)> = COUNCILS.iter().enumerate().map(|(i, d)| (i, d.weight)).collect();
        self.sim.weighted(&weights)
    }

    fn pick_activity(&mut self, c: usize) -> Activity {
        let state = &self.sim.world.councils[c];
        // Councils send activity files once there is a file's worth, or when it has waited.
        let updates_due = state.agenda.due_count(self.sim.today, 5) >= 5
            || state.agenda.has_due(self.sim.today.checked_sub_days(Days::new(30)).unwrap_or(START));
        let has_people = !state.people.is_empty();
        let weights = [
            (Activity::NewClients, 28),
            (Activity::Safeguarding, 9),
            (Activity::Updates, if updates_due { 40 } else { 0 }),
            (Activity::Hospital, if has_people { 6 } else { 0 }),
            (Activity::Maintenance, if has_people { 6 } else { 0 }),
            (Activity::Duplicate, if self.sim.world.profiles.is_empty() { 0 } else { 2 }),
            (Activity::LateRekey, COUNCILS[c].late_rekey),
            (Activity::Registration, 1),
        ];
        self.sim.weighted(&weights)
    }

    fn council_meta(&mut self, c: usize, activity: Activity) -> Meta {
        let def = &COUNCILS[c];
        let today = self.sim.today;
        let day = today.format("%Y%m%d");
        let (file, reason) = match activity {
            Activity::NewClients | Activity::Duplicate => (format!("new_clients_{day}.csv"), None),
            Activity::Safeguarding => (format!("safeguarding_{}.txt", today.format("%Y-%m")), None),
            Activity::Updates => (format!("activity_{day}.csv"), None),
            Activity::Hospital => (format!("adt_{}_{day}.hl7", def.hospitals.first().map_or("RXX", |h| h.ods)), None),
            Activity::Maintenance => (format!("client_updates_{day}.csv"), None),
            Activity::LateRekey => (
                format!("safeguarding_rekeyed_{day}.xlsx"),
                Some("Safeguarding records re-keyed from paper files held in arrears".to_owned()),
            ),
            Activity::Registration => (format!("cqc_changes_{day}.csv"), None),
        };
        if activity == Activity::Registration {
            return Meta { council: None, role: "admin", system: "CQC care directory".into(), file, reason };
        }
        Meta { council: Some(c), role: "council", system: def.system.into(), file, reason }
    }

    fn emit(&mut self, mut tx: Tx) -> TransactionRequest {
        let claims = tx.take_claims();
        self.in_flight.extend(claims.iter().copied());
        self.transactions += 1;
        let batch = match tx.meta.council {
            Some(c) => {
                let state = &mut self.sim.world.councils[c];
                state.batch_no += 1;
                format!("{}-{:06}", COUNCILS[c].code, state.batch_no)
            }
            None => format!("ref-{:06}", self.sim.world.reference_no),
        };
        let request = TransactionRequest {
            actor: "demo".into(),
            role: tx.meta.role.into(),
            source: Source {
                council: tx.meta.council.map(|c| COUNCILS[c].code.to_owned()),
                system: Some(tx.meta.system),
                batch: Some(batch),
                file: Some(tx.meta.file),
            },
            idempotency_key: Some(format!("demo-{}-{}-{}", self.config.seed, self.config.changes, self.transactions)),
            reason: tx.meta.reason,
            changes: tx.changes,
        };
        self.emitted += request.changes.len() as u64;
        self.stats.transactions += 1;
        self.stats.add(&tx.submitted);
        let resubmittable = (!tx.bad_nhs.is_empty()).then(|| (request.clone(), tx.bad_nhs));
        self.pending.push_back(Pending { on_commit: tx.on_commit, stats: tx.stats, resubmittable, claims });
        request
    }
}
