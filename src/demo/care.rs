//! The care pathway: contacts, referrals, assessments, services with their providers and
//! settings (and the budgets, packages and equipment that go with them), and reviews.

use chrono::NaiveDate;
use pole_model::Identifier;

use crate::demo::followups::FollowUp;
use crate::demo::places::COUNCILS;
use crate::demo::sim::{add_days, Sim};
use crate::demo::tx::{at, date_value, decimal, text, Attrs, Handle, Tx};
use crate::demo::world::OnCommit;

const CONTACT_SOURCES: &[(&str, u32)] = &[
    ("Self", 14),
    ("Family member or friend", 22),
    ("GP", 12),
    ("Hospital", 20),
    ("Police", 4),
    ("Housing", 5),
    ("Other council department", 6),
    ("Voluntary organisation", 5),
    ("Care provider", 8),
    ("Community health services", 4),
];

const CONTACT_OUTCOMES_WITHOUT_REFERRAL: &[&str] = &[
    "Information and advice",
    "Signposted to other services",
    "No further action",
    "Universal services",
    "Short-term support (reablement)",
];

const ASSESSMENT_OUTCOMES: &[(&str, bool, u32)] = &[
    ("Eligible needs - services provided", true, 55),
    ("Eligible needs - no services required", true, 10),
    ("Needs not eligible - information and advice", false, 25),
    ("Assessment ended - client withdrew", false, 5),
    ("Assessment ended - moved out of area", false, 2),
    ("Needs met by carer or family", false, 3),
];

/// Service types, the kind of care setting each is delivered in, and their weights.
const SERVICES: &[(&str, Option<&str>, u32)] = &[
    ("Home care", Some("COMMUNITY_SERVICE"), 34),
    ("Residential care", Some("CARE_HOME_RESIDENTIAL"), 11),
    ("Nursing care", Some("CARE_HOME_NURSING"), 7),
    ("Day care", Some("COMMUNITY_SERVICE"), 9),
    ("Reablement", Some("COMMUNITY_SERVICE"), 15),
    ("Direct payment", None, 12),
    ("Supported living", Some("COMMUNITY_SERVICE"), 5),
    ("Equipment", None, 7),
];

const EQUIPMENT: &[&str] = &[
    "Mobile hoist",
    "Commode",
    "Grab rails (pair)",
    "Pressure relieving mattress",
    "Profiling bed",
    "Perching stool",
    "Raised toilet seat",
    "Bath lift",
    "Key safe",
    "Pendant alarm (telecare)",
];

const REVIEW_OUTCOMES: &[&str] = &[
    "No change to support",
    "Support increased",
    "Support reduced",
    "Services ended - needs met",
    "Moved to residential care",
    "Direct payment agreed",
];

fn event_id(c: usize, value: String) -> Identifier {
    Identifier::new(format!("council:{}:event", COUNCILS[c].code), value)
}

impl Sim {
    /// A contact about `person` and, usually, the referral and assessment that follow it.
    pub(crate) fn first_contact(
        &mut self,
        c: usize,
        tx: &mut Tx,
        (person, serial): (&Handle, u64),
        contact_date: NaiveDate,
    ) {
        let source = self.weighted(CONTACT_SOURCES);
        let referred = self.chance(0.72);
        let outcome = if referred { "Referred for assessment" } else { self.pick(CONTACT_OUTCOMES_WITHOUT_REFERRAL) };
        let valid = Some(at(contact_date));
        let contact = tx.create(
            "e",
            "contact",
            valid,
            vec![
                ("contact_date", date_value(contact_date)),
                ("contact_source", text(source)),
                ("outcome", text(outcome)),
            ],
            vec![event_id(c, self.next_event_id(c, "CON"))],
        );
        tx.stats.contacts += 1;
        tx.link(&contact, "subject", person, valid);
        if !referred {
            return;
        }
        let referral_date = self.date_between(contact_date, add_days(contact_date, 7).min(self.today));
        let valid = Some(at(referral_date));
        let referral_id = self.next_event_id(c, "REF");
        let referral = tx.create(
            "e",
            "referral",
            valid,
            vec![("referral_date", date_value(referral_date)), ("referral_source", text(source))],
            vec![Identifier::new(format!("council:{}:referral", COUNCILS[c].code), referral_id)],
        );
        tx.stats.referrals += 1;
        tx.link(&referral, "subject", person, valid);
        tx.link(&referral, "resulting_from", &contact, valid);
        if !self.chance(0.85) {
            return;
        }
        let start = self.date_between(referral_date, add_days(referral_date, 28).min(self.today));
        let valid = Some(at(start));
        let kind = if source == "Hospital" && self.chance(0.5) {
            "Reablement assessment"
        } else {
            "Care Act needs assessment"
        };
        let assessment = tx.create(
            "e",
            "assessment",
            valid,
            vec![("assessment_type", text(kind)), ("start_date", date_value(start))],
            vec![event_id(c, self.next_event_id(c, "ASM"))],
        );
        tx.stats.assessments += 1;
        tx.link(&assessment, "subject", person, valid);
        tx.link(&assessment, "resulting_from", &referral, valid);
        let due = self.days_after(start, 7, 120);
        let item =
            FollowUp::EndAssessment { assessment, person: person.clone(), serial: Some(serial), start, carer: false };
        tx.remember(OnCommit::Schedule { council: c, due, item });
    }

    /// An assessment ends: sometimes without being authorised (a data-quality finding), and
    /// for eligible clients usually with a service starting.
    pub(crate) fn end_assessment(
        &mut self,
        c: usize,
        tx: &mut Tx,
        (assessment, person, serial): (&Handle, &Handle, Option<u64>),
        start: NaiveDate,
        end: NaiveDate,
        carer: bool,
    ) {
        tx.next_row();
        let (outcome, eligible) = {
            let options: Vec<((&str, bool), u32)> =
                ASSESSMENT_OUTCOMES.iter().map(|(o, e, w)| ((*o, *e), *w)).collect();
            self.weighted(&options)
        };
        let outcome = if carer {
            if eligible {
                "Carer support provided"
            } else {
                "Information and advice to carer"
            }
        } else {
            outcome
        };
        let mut set: Attrs =
            vec![("end_date", date_value(end.max(start))), ("eligible", eligible.into()), ("outcome", text(outcome))];
        if self.chance(0.88) {
            let authorised = self.date_between(end, add_days(end, 14).min(self.today).max(end));
            set.push(("authorised_date", date_value(authorised)));
        }
        tx.update(assessment, Some(at(end)), set);
        if eligible && !carer && self.chance(0.8) {
            let service_start = self.date_between(end, add_days(end, 21).min(self.today).max(end));
            self.start_service(c, tx, person, serial, service_start);
        }
    }

    /// A service for `person` from `start`, with its provider and setting, and the objects
    /// that fund or accompany it.
    pub(crate) fn start_service(
        &mut self,
        c: usize,
        tx: &mut Tx,
        person: &Handle,
        serial: Option<u64>,
        start: NaiveDate,
    ) {
        let options: Vec<((&str, Option<&str>), u32)> = SERVICES.iter().map(|(s, t, w)| ((*s, *t), *w)).collect();
        let (kind, setting_type) = self.weighted(&options);
        tx.next_row();
        let valid = Some(at(start));
        if kind == "Equipment" {
            let description = self.pick(EQUIPMENT);
            let equipment = tx.create(
                "o",
                "equipment",
                valid,
                vec![("description", text(description)), ("issued_date", date_value(start))],
                Vec::new(),
            );
            tx.link(&equipment, "subject", person, valid);
            return;
        }
        let setting = setting_type.and_then(|wanted| {
            self.world.councils[c]
                .settings
                .random_where(&mut self.rng, |s| s.setting_type == wanted)
                .map(|(serial, s)| (serial, s.clone()))
        });
        let planned = self.days_before(start, 0, 14);
        let mut set: Attrs = vec![("service_type", text(kind)), ("planned_start_date", date_value(planned))];
        // Services without an actual start date are one of the pilot's data-quality checks.
        if self.chance(0.95) {
            set.push(("start_date", date_value(start)));
        }
        let weekly_cost = match kind {
            "Home care" | "Reablement" | "Supported living" => {
                let hours = self.range(7, 70) as f64 / 2.0;
                set.push(("weekly_hours", decimal(hours)));
                hours * (18.0 + self.range(0, 700) as f64 / 100.0)
            }
            "Residential care" => 650.0 + self.range(0, 50_000) as f64 / 100.0,
            "Nursing care" => 850.0 + self.range(0, 60_000) as f64 / 100.0,
            "Day care" => 55.0 + self.range(0, 20_000) as f64 / 100.0,
            _ => 120.0 + self.range(0, 40_000) as f64 / 100.0,
        };
        set.push(("weekly_cost", decimal(weekly_cost)));
        let service = tx.create("s", "service", valid, set, vec![event_id(c, self.next_event_id(c, "SVC"))]);
        tx.stats.services += 1;
        tx.link(&service, "subject", person, valid);
        if let Some((_, rec)) = &setting {
            if let Some(provider) = &rec.provider {
                tx.link(&service, "provided_by", provider, valid);
            }
            tx.link(&service, "occurred_at", &rec.id, valid);
        }
        match kind {
            "Direct payment" => {
                let budget = tx.create(
                    "o",
                    "personal_budget",
                    valid,
                    vec![("amount", decimal(weekly_cost * 52.0)), ("start_date", date_value(start))],
                    Vec::new(),
                );
                tx.link(&budget, "subject", person, valid);
                tx.link(&budget, "funds", &service, valid);
            }
            "Home care" if self.chance(0.4) => {
                let package = tx.create(
                    "o",
                    "care_package",
                    valid,
                    vec![
                        ("service_type", text(kind)),
                        ("weekly_cost", decimal(weekly_cost)),
                        ("start_date", date_value(start)),
                    ],
                    Vec::new(),
                );
                tx.link(&package, "subject", person, valid);
                tx.link(&package, "funds", &service, valid);
            }
            "Residential care" | "Nursing care" => {
                if let (Some((_, rec)), Some(serial)) = (&setting, serial) {
                    self.move_into_care_home(c, tx, serial, &rec.id, start);
                }
            }
            _ => {}
        }
        self.schedule_service_follow_ups(c, tx, (&service, person), kind, start);
    }

    fn schedule_service_follow_ups(
        &mut self,
        c: usize,
        tx: &mut Tx,
        (service, person): (&Handle, &Handle),
        kind: &'static str,
        start: NaiveDate,
    ) {
        let ends = match kind {
            "Reablement" => Some(self.days_after(start, 35, 49)),
            "Residential care" | "Nursing care" => None,
            _ if self.chance(0.45) => Some(self.days_after(start, 60, 900)),
            _ => None,
        };
        if let Some(end) = ends {
            tx.remember(OnCommit::Schedule {
                council: c,
                due: end,
                item: FollowUp::EndService { service: service.clone() },
            });
        }
        let (review_kind, due) = match kind {
            "Reablement" => ("91-day reablement review", add_days(start, 91)),
            "Residential care" | "Nursing care" => ("Placement review", self.days_after(start, 28, 56)),
            _ => ("Six-week review", self.days_after(start, 42, 70)),
        };
        let item = FollowUp::Review { service: service.clone(), person: person.clone(), kind: review_kind, ends };
        tx.remember(OnCommit::Schedule { council: c, due, item });
    }

    pub(crate) fn end_service(&mut self, tx: &mut Tx, service: &Handle, end: NaiveDate) {
        tx.next_row();
        tx.update(service, Some(at(end)), vec![("end_date", date_value(end))]);
    }

    /// A review falls due: most are completed around the due date, some late, some never.
    pub(crate) fn review(
        &mut self,
        c: usize,
        tx: &mut Tx,
        (service, person): (&Handle, &Handle),
        kind: &'static str,
        due: NaiveDate,
        ends: Option<NaiveDate>,
    ) {
        // Reablement is reviewed after it ends; anything else is not reviewed once ended.
        if ends.is_some_and(|end| end < due) && kind != "91-day reablement review" {
            return;
        }
        tx.next_row();
        let mut set: Attrs = vec![("review_type", text(kind)), ("due_date", date_value(due))];
        let completed = self.chance(0.75);
        let mut valid = due;
        if completed {
            let done = self.date_between(add_days(due, -14), add_days(due, 30).min(self.today).max(due));
            valid = done.min(due);
            set.push(("completed_date", date_value(done)));
            set.push(("outcome", text(self.pick(REVIEW_OUTCOMES))));
        }
        let review = tx.create("e", "review", Some(at(valid)), set, vec![event_id(c, self.next_event_id(c, "REV"))]);
        tx.stats.reviews += 1;
        tx.link(&review, "subject", person, Some(at(valid)));
        tx.link(&review, "resulting_from", service, Some(at(valid)));
        if !completed && self.chance(0.5) {
            let when = self.days_after(due, 30, 120);
            tx.remember(OnCommit::Schedule { council: c, due: when, item: FollowUp::CompleteReview { review } });
        } else if completed && ends.is_none() && kind != "91-day reablement review" && self.chance(0.7) {
            let next = self.days_after(due, 330, 400);
            let item =
                FollowUp::Review { service: service.clone(), person: person.clone(), kind: "Annual review", ends };
            tx.remember(OnCommit::Schedule { council: c, due: next, item });
        }
    }

    pub(crate) fn complete_review(&mut self, tx: &mut Tx, review: &Handle, done: NaiveDate) {
        tx.next_row();
        let outcome = self.pick(REVIEW_OUTCOMES);
        tx.update(review, Some(at(done)), vec![("completed_date", date_value(done)), ("outcome", text(outcome))]);
    }
}
