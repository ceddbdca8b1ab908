//! Hospital episodes of known clients: admissions from a hospital's feed, and later
//! transfers, discharges with their destination, discharge notifications to the council and,
//! for some, a death in hospital.

use chrono::{NaiveDate, NaiveDateTime};
use pole_model::Identifier;

use crate::demo::followups::FollowUp;
use crate::demo::places::COUNCILS;
use crate::demo::sim::{add_days, Sim};
use crate::demo::tx::{at, at_time, date_value, datetime_value, text, Attrs, Handle, Tx};
use crate::demo::world::{OnCommit, PersonEdit};

const METHODS: &[(&str, u32)] = &[
    ("Emergency - A&E", 60),
    ("Emergency - GP referral", 15),
    ("Elective", 18),
    ("Transfer from another hospital", 7),
];

const WARDS: &[&str] = &[
    "Acute Medical Unit",
    "Ward 7B",
    "Ward 12",
    "Elderly Care Ward 3",
    "Orthopaedic Ward",
    "Stroke Unit",
    "Respiratory Ward",
    "Frailty Unit",
];

const DESTINATIONS: &[(&str, u32)] = &[
    ("Usual place of residence", 55),
    ("Usual place of residence with new care package", 15),
    ("Care home (temporary)", 8),
    ("Care home (permanent)", 6),
    ("Intermediate care bed", 10),
    ("Died", 6),
];

const DISCHARGE_OUTCOMES: &[&str] = &[
    "Discharged as planned",
    "Delayed transfer of care - awaiting care package",
    "Delayed transfer of care - awaiting care home placement",
    "Self-discharge",
];

const NOTIFICATION_OUTCOMES: &[&str] =
    &["Assessment arranged", "Care package restarted", "No social care needs identified", "Referred to reablement"];

impl Sim {
    /// A day's admissions feed: known clients admitted to the council's hospitals.
    pub(crate) fn hospital_batch(&mut self, c: usize, tx: &mut Tx) {
        let hospitals = self.world.councils[c].hospitals.clone();
        if hospitals.is_empty() {
            return;
        }
        let ods_of = |hospital: &Handle| {
            let position = hospitals.iter().position(|h| h == hospital).unwrap_or(0);
            COUNCILS[c].hospitals.get(position).map_or("RXX", |h| h.ods)
        };
        for _ in 0..self.range(2, 6) {
            let admitted_on = self.days_before(self.today, 0, 3);
            let Some((serial, rec)) = self.world.councils[c]
                .people
                .random_where(&mut self.rng, |p| !p.deceased && p.known_since <= admitted_on)
                .map(|(s, p)| (s, p.clone()))
            else {
                return;
            };
            if !tx.claim("admission", c, serial) {
                continue;
            }
            tx.next_row();
            let hospital = hospitals[self.range(0, hospitals.len() as i64 - 1) as usize].clone();
            let admitted = self.time_on(admitted_on, 0, 23);
            let valid = Some(at_time(admitted));
            let admission = tx.create(
                "e",
                "hospital_admission",
                valid,
                vec![
                    ("admitted_at", datetime_value(admitted)),
                    ("admission_method", text(self.weighted(METHODS))),
                    ("ward", text(self.pick(WARDS))),
                ],
                Vec::new(),
            );
            tx.stats.hospital_admissions += 1;
            tx.link(&admission, "subject", &rec.id, valid);
            tx.link(&admission, "occurred_at", &hospital, valid);
            if !rec.has_mrn && self.chance(0.4) {
                let system = format!("hospital:{}:mrn", ods_of(&hospital));
                tx.add_identifier(&rec.id, valid, Identifier::new(system, self.next_mrn()));
                tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::Mrn });
            }
            let stay = 1 + (self.rng_unit().powi(2) * 40.0) as i64;
            let due = add_days(admitted_on, stay);
            let item = FollowUp::Discharge { admission, person: rec.id.clone(), serial, hospital, admitted };
            tx.remember(OnCommit::Schedule { council: c, due, item });
        }
    }

    fn rng_unit(&mut self) -> f64 {
        self.range(0, 1_000_000) as f64 / 1_000_000.0
    }

    /// The end of a hospital stay: perhaps a transfer first, then discharge (or death), and
    /// often a discharge notification to the council.
    pub(crate) fn discharge(
        &mut self,
        c: usize,
        tx: &mut Tx,
        (admission, person, serial, hospital): (&Handle, &Handle, u64, &Handle),
        admitted: NaiveDateTime,
        on: NaiveDate,
    ) {
        tx.next_row();
        let discharged = self.time_on(on, 10, 20);
        if self.chance(0.1) && (discharged - admitted).num_hours() > 48 {
            let transferred = self.time_on(add_days(admitted.date(), 1), 8, 20);
            let valid = Some(at_time(transferred));
            let transfer = tx.create(
                "e",
                "hospital_transfer",
                valid,
                vec![("transferred_at", datetime_value(transferred)), ("ward", text(self.pick(WARDS)))],
                Vec::new(),
            );
            tx.link(&transfer, "subject", person, valid);
            tx.link(&transfer, "occurred_at", hospital, valid);
            tx.link(&transfer, "resulting_from", admission, valid);
        }
        let destination = self.weighted(DESTINATIONS);
        let mut set: Attrs =
            vec![("discharged_at", datetime_value(discharged)), ("discharge_destination", text(destination))];
        if self.chance(0.85) {
            set.push(("outcome", text(self.pick(DISCHARGE_OUTCOMES))));
        }
        let valid = Some(at_time(discharged));
        let discharge = tx.create("e", "hospital_discharge", valid, set, Vec::new());
        tx.stats.hospital_discharges += 1;
        tx.link(&discharge, "subject", person, valid);
        tx.link(&discharge, "occurred_at", hospital, valid);
        tx.link(&discharge, "resulting_from", admission, valid);
        if destination == "Died" {
            self.record_death(c, tx, person, serial, on);
            return;
        }
        if self.chance(0.35) {
            let notified = self.date_between(add_days(on, -3).max(admitted.date()), on);
            let mut set: Attrs = vec![
                ("notification_date", date_value(notified)),
                ("notification_type", text("Discharge notice (Care Act 2014 Schedule 3)")),
            ];
            // Discharge notifications with no outcome are one of the pilot's checks.
            if self.chance(0.7) {
                set.push(("outcome", text(self.pick(NOTIFICATION_OUTCOMES))));
            }
            let valid = Some(at(notified));
            let notification = tx.create("e", "notification", valid, set, Vec::new());
            tx.stats.notifications += 1;
            tx.link(&notification, "subject", person, valid);
            tx.link(&notification, "resulting_from", admission, valid);
        }
        if destination == "Usual place of residence with new care package" {
            self.start_service(c, tx, person, Some(serial), on);
        }
    }
}
