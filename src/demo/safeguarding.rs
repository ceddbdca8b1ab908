//! Safeguarding: concerns about a client with one to four allegations each (type, source and
//! location of risk, where it happened, who is alleged to be responsible), their conclusion
//! months later, and the paper backlog one council re-keys in arrears.

use chrono::{Datelike, NaiveDate};
use pole_model::Identifier;

use crate::demo::codes::{client_group_for, local_form, Coded, CONCLUSIONS};
use crate::demo::followups::FollowUp;
use crate::demo::people::person_attrs;
use crate::demo::places::{Dialect, COUNCILS};
use crate::demo::sim::{add_days, age_on, Sim};
use crate::demo::tx::{at, date_value, text, Attrs, Handle, Tx};
use crate::demo::world::{ConcludedRec, Home, OnCommit, PersonEdit, PersonRec};

/// Where an allegation happened, which decides the location of risk and the `occurred_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Home,
    HomeCare,
    CareHome,
    CommunityService,
    Hospital,
    Public,
}

/// Who was alleged to be responsible and what they are typically alleged to have done.
struct Scenario {
    source: &'static str,
    types: &'static [(&'static str, u32)],
    place: Place,
    weight: u32,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        source: "KNOWN_FAMILY",
        types: &[("FINANCIAL", 35), ("PSYCHOLOGICAL", 25), ("PHYSICAL", 25), ("NEGLECT", 15)],
        place: Place::Home,
        weight: 28,
    },
    Scenario {
        source: "SOCIAL_CARE",
        types: &[
            ("NEGLECT", 45),
            ("PHYSICAL", 22),
            ("PSYCHOLOGICAL", 10),
            ("INSTITUTIONAL", 13),
            ("SEXUAL", 4),
            ("DISCRIMINATORY", 6),
        ],
        place: Place::CareHome,
        weight: 25,
    },
    Scenario {
        source: "SOCIAL_CARE",
        types: &[("NEGLECT", 50), ("FINANCIAL", 20), ("PHYSICAL", 15), ("PSYCHOLOGICAL", 15)],
        place: Place::HomeCare,
        weight: 12,
    },
    Scenario {
        source: "SOCIAL_CARE",
        types: &[("PHYSICAL", 40), ("PSYCHOLOGICAL", 30), ("NEGLECT", 30)],
        place: Place::CommunityService,
        weight: 4,
    },
    Scenario {
        source: "KNOWN",
        types: &[("FINANCIAL", 50), ("PSYCHOLOGICAL", 25), ("PHYSICAL", 20), ("SEXUAL", 5)],
        place: Place::Home,
        weight: 10,
    },
    Scenario {
        source: "UNKNOWN",
        types: &[("FINANCIAL", 55), ("PHYSICAL", 30), ("SEXUAL", 10), ("DISCRIMINATORY", 5)],
        place: Place::Public,
        weight: 8,
    },
    Scenario { source: "UNKNOWN", types: &[("FINANCIAL", 1)], place: Place::Home, weight: 5 },
    Scenario {
        source: "KNOWN_PRIMARY_HEALTHCARE",
        types: &[("NEGLECT", 80), ("PSYCHOLOGICAL", 20)],
        place: Place::Home,
        weight: 4,
    },
    Scenario { source: "KNOWN", types: &[("PHYSICAL", 60), ("NEGLECT", 40)], place: Place::Hospital, weight: 4 },
];

/// What the allegation says happened, fitting who and where.
fn descriptions(type_of_risk: &str, scenario: &Scenario) -> &'static [&'static str] {
    let paid_care = scenario.source == "SOCIAL_CARE";
    match (type_of_risk, scenario.place) {
        ("PHYSICAL", Place::Public) => &["Assaulted in the street", "Pushed over at a bus stop"],
        ("PHYSICAL", Place::Hospital) => &["Struck by another patient on the ward"],
        ("PHYSICAL", _) if paid_care => &[
            "Unexplained bruising to upper arms noticed during personal care",
            "Rough handling during transfers",
            "Restrained without authorisation",
        ],
        ("PHYSICAL", _) => &[
            "Unexplained bruising noticed by district nurse",
            "Alleged to have been pushed and fallen",
            "Slapped during an argument",
        ],
        ("FINANCIAL", _) if paid_care => &["Cash missing from room", "Bank card used by a care worker"],
        ("FINANCIAL", Place::Public) => {
            &["Befriended and persuaded to hand over savings", "Victim of a telephone scam"]
        }
        ("FINANCIAL", _) if scenario.source == "UNKNOWN" => {
            &["Doorstep trader charged for roof repairs not done", "Victim of a telephone scam"]
        }
        ("FINANCIAL", _) => &[
            "Money withdrawn from bank account without consent",
            "Pension collected and not passed on",
            "Pressured to sign over property",
        ],
        ("PSYCHOLOGICAL", _) if paid_care => &["Belittled and mocked by staff", "Threatened with being moved out"],
        ("PSYCHOLOGICAL", _) => &["Shouted at and threatened", "Prevented from seeing friends and family"],
        ("NEGLECT", Place::HomeCare) => {
            &["Missed home care visits", "Medication not given as prescribed", "Care workers leaving visits early"]
        }
        ("NEGLECT", Place::CareHome | Place::CommunityService | Place::Hospital) => &[
            "Pressure sores not reported",
            "Not supported to eat at mealtimes",
            "Medication not given as prescribed",
            "Left in soiled clothing",
        ],
        ("NEGLECT", _) if scenario.source == "KNOWN_PRIMARY_HEALTHCARE" => {
            &["District nurse visits missed", "Leg ulcer dressings not changed"]
        }
        ("NEGLECT", _) => &["Left without food or drink", "Home found in unsanitary condition"],
        ("SEXUAL", _) => &["Inappropriate touching alleged", "Unwanted sexual comments"],
        ("DISCRIMINATORY", _) => &["Racist remarks", "Harassment because of disability"],
        _ => &[
            "Rigid routines: residents got up before 6am",
            "Call bells not answered for long periods",
            "Poor infection control across the home",
        ],
    }
}

const REPORTERS: &[(&str, u32)] = &[
    ("Social care staff", 25),
    ("Health staff", 20),
    ("Family member", 15),
    ("Police", 10),
    ("Care provider", 15),
    ("Self", 5),
    ("Friend or neighbour", 5),
    ("Other", 5),
];

const ACTIONS: &[&str] = &[
    "Action taken and risk removed",
    "Action taken and risk reduced",
    "Action taken and risk remains",
    "No action taken",
];

const INTERIM_ACTIONS: &[&str] = &[
    "Interim protection plan agreed",
    "Strategy meeting held; interim safeguards in place",
    "Police informed; protection plan pending",
];

const ACHIEVED: &[&str] = &["Fully achieved", "Partially achieved", "Not achieved"];

const MEETINGS: &[&str] = &[
    "Attended all meetings",
    "Attended some meetings",
    "Represented by advocate",
    "Represented by family",
    "Declined to attend",
    "Not invited",
];

const DECISIONS: &[&str] =
    &["Fully involved", "Partly involved", "Not involved - lacked capacity", "Declined involvement"];

const YNU: &[(&str, u32)] = &[("Y", 45), ("N", 45), ("U", 10)];

fn age_band(age: i32) -> &'static str {
    match age {
        ..=64 => "18-64",
        65..=74 => "65-74",
        75..=84 => "75-84",
        85..=89 => "85-89",
        _ => "90 or over",
    }
}

impl Sim {
    /// A coded value in the council's dialect: a local code when it sends one.
    fn coded(&mut self, c: usize, tx: &mut Tx, attribute: Coded, national: &'static str) -> &'static str {
        let def = &COUNCILS[c];
        if def.dialect == Dialect::National || !self.chance(def.local_code_rate) {
            return national;
        }
        match local_form(def.dialect, attribute, national) {
            Some(local) => {
                tx.stats.local_codes_used += 1;
                local
            }
            None => national,
        }
    }

    /// A safeguarding file: one or two concerns raised recently.
    pub(crate) fn safeguarding_batch(&mut self, c: usize, tx: &mut Tx) {
        for _ in 0..self.range(1, 2) {
            let initiated = self.days_before(self.today, 0, 21);
            self.concern(c, tx, initiated, false);
        }
    }

    /// A batch re-keyed from paper months after the events, as one council in the proof of
    /// concept did about five months in arrears; it also carries notes that predate
    /// conclusions already recorded, so their valid time is earlier than a recorded update.
    pub(crate) fn late_batch(&mut self, c: usize, tx: &mut Tx) {
        for _ in 0..self.range(2, 6) {
            let initiated = self.days_before(self.today, 90, 210);
            self.concern(c, tx, initiated, true);
        }
        for _ in 0..self.range(1, 3) {
            // Each paper note is keyed once: the concern leaves the pool.
            let concluded = &mut self.world.councils[c].concluded;
            let Some(rec) = concluded.random(&mut self.rng).map(|(serial, _)| serial).and_then(|s| concluded.take(s))
            else {
                break;
            };
            let span = (rec.concluded - rec.initiated).num_days();
            if span < 2 {
                continue;
            }
            tx.next_row();
            let noted = add_days(rec.initiated, self.range(1, span - 1));
            let action = self.pick(INTERIM_ACTIONS);
            tx.update(&rec.concern, Some(at(noted)), vec![("action_and_result", text(action))]);
            tx.stats.out_of_order_updates += 1;
        }
        tx.stats.late_recorded_changes += tx.len() as u64;
    }

    /// The client a concern is about: a known client, or someone new to the council.
    fn concern_subject(&mut self, c: usize, tx: &mut Tx, earliest: NaiveDate) -> (u64, PersonRec, bool) {
        let known = self.chance(0.55).then(|| {
            self.world.councils[c]
                .people
                .random_where(&mut self.rng, |p| !p.deceased && p.known_since <= earliest)
                .map(|(s, p)| (s, p.clone()))
        });
        if let Some(Some((serial, rec))) = known {
            return (serial, rec, true);
        }
        let def = &COUNCILS[c];
        let identity = self.client_identity(c);
        let ethnicity = self.chance(0.85);
        let set = person_attrs(&identity, &identity.family, ethnicity);
        let mut identifiers = Vec::new();
        if self.chance(0.8) {
            identifiers.push(Identifier::new(format!("council:{}:client", def.code), self.next_client_id(c)));
        }
        let nhs_recorded = !self.chance(def.missing_nhs);
        if nhs_recorded {
            identifiers.push(Identifier::new("nhs-number", identity.nhs.clone()));
        } else {
            tx.stats.nhs_numbers_missing += 1;
        }
        let person = tx.create("p", "person", Some(at(earliest)), set, identifiers);
        tx.stats.people += 1;
        tx.stats.clients += 1;
        let address = self.create_address(c, tx, earliest);
        let moved_in = self.days_before(earliest, 200, 9000).max(add_days(identity.birth, 18 * 366));
        tx.link_period((&person, "resides_at", &address), Some(at(earliest)), Some(at(moved_in)), None);
        let serial = self.world.councils[c].people.reserve();
        let rec = PersonRec {
            id: person,
            identity,
            nhs_recorded,
            ethnicity_recorded: ethnicity,
            support_reason: None,
            known_since: earliest,
            home: Some(Home { place: address, from: moved_in, care_home: false }),
            carer: None,
            concerns: 0,
            has_mrn: false,
            deceased: false,
            opted_out: false,
        };
        (serial, rec, false)
    }

    fn concern(&mut self, c: usize, tx: &mut Tx, initiated: NaiveDate, late: bool) {
        let def = &COUNCILS[c];
        tx.next_row();
        let with_contact = self.chance(0.75);
        let contact_date = if with_contact { self.days_before(initiated, 0, 3) } else { initiated };
        let (serial, rec, known) = self.concern_subject(c, tx, contact_date);
        let person = rec.id.clone();
        let reporter = self.weighted(REPORTERS);
        let contact = with_contact.then(|| {
            let valid = Some(at(contact_date));
            let contact = tx.create(
                "e",
                "contact",
                valid,
                vec![
                    ("contact_date", date_value(contact_date)),
                    ("contact_source", text(reporter)),
                    ("outcome", text("Safeguarding concern raised")),
                ],
                vec![Identifier::new(format!("council:{}:event", def.code), self.next_event_id(c, "CON"))],
            );
            tx.link(&contact, "subject", &person, valid);
            tx.stats.contacts += 1;
            contact
        });

        let age = age_on(rec.identity.birth, initiated);
        let group = client_group_for(rec.support_reason, age);
        let group = self.coded(c, tx, Coded::PrimaryClientGroup, group);
        let repeat = if rec.concerns > 0 {
            "Y"
        } else if self.chance(0.9) {
            "N"
        } else {
            "U"
        };
        let mut set: Attrs = vec![
            ("date_initiated", date_value(initiated)),
            (
                "known_to_council",
                text(if known {
                    "Y"
                } else if self.chance(0.85) {
                    "N"
                } else {
                    "U"
                }),
            ),
            ("client_age_band", text(age_band(age))),
            ("primary_client_group", text(group)),
            ("consent_to_investigation", text(self.weighted(YNU))),
            ("repeat_referral", text(repeat)),
            ("risk_reported_by", text(reporter)),
            ("lacking_capacity", text(self.weighted(&[("Y", 30), ("N", 55), ("U", 15)]))),
            ("advocate_support", text(self.weighted(&[("Y", 20), ("N", 70), ("U", 10)]))),
        ];
        let expressed = self.weighted(&[("Y", 60), ("N", 30), ("U", 10)]);
        set.push(("desired_outcome_expressed", text(expressed)));
        let conclusion_date = self.days_after(initiated, 14, 150);
        let concluded_on_paper = late && conclusion_date <= self.today;
        if concluded_on_paper {
            set.extend(self.conclusion_attrs(c, tx, conclusion_date, expressed == "Y"));
        }
        let mut identifiers =
            vec![Identifier::new(format!("council:{}:referral", def.code), self.next_safeguarding_id(c, initiated))];
        let scenario = self.scenario();
        let setting = self.scenario_setting(c, scenario.place);
        if setting.is_some() && self.chance(0.3) {
            let cqc_ref = format!("SR{}", self.range(100_000, 999_999));
            identifiers.push(Identifier::new("cqc-safeguarding-referral", cqc_ref));
        }
        let valid = Some(at(initiated));
        let concern = tx.create("e", "safeguarding_concern", valid, set, identifiers);
        tx.stats.safeguarding_concerns += 1;
        tx.link(&concern, "subject", &person, valid);
        // Concerns not resulting from a contact are one of the pilot's data-quality checks.
        if let Some(contact) = &contact {
            tx.link(&concern, "resulting_from", contact, valid);
        }
        self.allegations(c, tx, (&concern, &rec), scenario, setting, initiated);

        if known {
            tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::Concern });
        } else {
            let mut rec = rec;
            rec.concerns = 1;
            tx.remember(OnCommit::Person { council: c, serial, rec: Box::new(rec) });
        }
        if !concluded_on_paper && self.chance(0.92) {
            let item = FollowUp::Conclude { concern, initiated };
            tx.remember(OnCommit::Schedule { council: c, due: conclusion_date, item });
        }
    }

    fn scenario(&mut self) -> &'static Scenario {
        let options: Vec<(usize, u32)> = SCENARIOS.iter().enumerate().map(|(i, s)| (i, s.weight)).collect();
        &SCENARIOS[self.weighted(&options)]
    }

    /// The care setting (and its operator) where a scenario happens, if the council has one.
    fn scenario_setting(&mut self, c: usize, place: Place) -> Option<(Handle, Option<Handle>, &'static str)> {
        let wanted: &[&str] = match place {
            Place::CareHome => &["CARE_HOME_NURSING", "CARE_HOME_RESIDENTIAL"],
            Place::HomeCare | Place::CommunityService => &["COMMUNITY_SERVICE"],
            _ => return None,
        };
        self.world.councils[c]
            .settings
            .random_where(&mut self.rng, |s| wanted.contains(&s.setting_type))
            .map(|(_, s)| (s.id.clone(), s.provider.clone(), s.setting_type))
    }

    fn allegations(
        &mut self,
        c: usize,
        tx: &mut Tx,
        (concern, client): (&Handle, &PersonRec),
        scenario: &Scenario,
        setting: Option<(Handle, Option<Handle>, &'static str)>,
        initiated: NaiveDate,
    ) {
        let valid = Some(at(initiated));
        let mut place = scenario.place;
        // A client living in a care home is harmed there, not at a home address.
        if place == Place::Home && client.home.as_ref().is_some_and(|h| h.care_home) {
            place = Place::CareHome;
        }
        let (location, occurred_at): (&'static str, Option<Handle>) = match place {
            Place::Home | Place::HomeCare => ("OWN_HOME", client.home.as_ref().map(|h| h.place.clone())),
            Place::CareHome if scenario.place == Place::Home => {
                ("CARE_HOME", client.home.as_ref().map(|h| h.place.clone()))
            }
            Place::CareHome => match &setting {
                Some((id, _, setting_type)) => (*setting_type, Some(id.clone())),
                None => ("CARE_HOME", None),
            },
            Place::CommunityService => ("COMMUNITY_SERVICE", setting.as_ref().map(|s| s.0.clone())),
            Place::Hospital => {
                let count = self.world.councils[c].hospitals.len() as i64;
                let pick = self.range(0, count - 1) as usize;
                ("HOSPITAL_ACUTE", self.world.councils[c].hospitals.get(pick).cloned())
            }
            Place::Public => (if self.chance(0.6) { "PUBLIC_PLACE" } else { "COMMUNITY" }, None),
        };
        let perpetrator = self.perpetrator(c, tx, scenario, client, setting.as_ref(), initiated);

        let count = self.weighted(&[(1, 60), (2, 25), (3, 10), (4, 5)]);
        let mut used: Vec<&str> = Vec::new();
        for n in 0..count {
            let type_of_risk = self.weighted(scenario.types);
            if n > 0 && used.contains(&type_of_risk) {
                continue;
            }
            used.push(type_of_risk);
            if n > 0 {
                tx.next_row();
            }
            let mut set: Attrs = Vec::new();
            if self.chance(0.9) {
                set.push(("date_occurred", date_value(self.days_before(initiated, 0, 30))));
            }
            let coded_type = self.coded(c, tx, Coded::TypeOfRisk, type_of_risk);
            let coded_source = self.coded(c, tx, Coded::SourceOfRisk, scenario.source);
            let coded_location = self.coded(c, tx, Coded::LocationOfRisk, location);
            set.push(("type_of_risk", text(coded_type)));
            set.push(("source_of_risk", text(coded_source)));
            set.push(("location_of_risk", text(coded_location)));
            let description = self.pick(descriptions(type_of_risk, scenario));
            set.push(("description", text(description)));
            let allegation = tx.create("e", "allegation", valid, set, Vec::new());
            tx.stats.allegations += 1;
            tx.link(&allegation, "part_of", concern, valid);
            if let Some(place) = &occurred_at {
                tx.link(&allegation, "occurred_at", place, valid);
            }
            if let Some(who) = &perpetrator {
                tx.link(&allegation, "alleged_perpetrator", who, valid);
            }
        }
    }

    /// The person or organisation alleged to be responsible, when known and recorded.
    fn perpetrator(
        &mut self,
        c: usize,
        tx: &mut Tx,
        scenario: &Scenario,
        client: &PersonRec,
        setting: Option<&(Handle, Option<Handle>, &'static str)>,
        initiated: NaiveDate,
    ) -> Option<Handle> {
        match scenario.source {
            "SOCIAL_CARE" if self.chance(0.8) => setting.and_then(|s| s.1.clone()),
            "KNOWN_FAMILY" => match &client.carer {
                Some(carer) if self.chance(0.5) => Some(carer.clone()),
                _ if self.chance(0.75) => {
                    Some(self.create_perpetrator(c, tx, Some(&client.identity.family), client, initiated))
                }
                _ => None,
            },
            "KNOWN" if scenario.place != Place::Hospital && self.chance(0.6) => {
                Some(self.create_perpetrator(c, tx, None, client, initiated))
            }
            _ => None,
        }
    }

    /// A person alleged to be a source of risk: often only partly identified, with an
    /// estimated age rather than a date of birth.
    fn create_perpetrator(
        &mut self,
        c: usize,
        tx: &mut Tx,
        family: Option<&str>,
        client: &PersonRec,
        initiated: NaiveDate,
    ) -> Handle {
        let female = self.chance(0.35);
        let mut identity = self.new_identity(c, Some(client.identity.heritage), (20, 70), female);
        if let Some(family) = family {
            identity.family = family.to_owned();
        }
        let mut set: Attrs = vec![
            ("given_name", text(identity.given.clone())),
            ("family_name", text(identity.family.clone())),
            ("gender", text(identity.gender)),
        ];
        match self.range(0, 2) {
            0 => set.push(("birth_date", date_value(identity.birth))),
            1 => {
                set.push(("birth_date", date_value(identity.birth.with_day0(0).unwrap_or(identity.birth))));
                set.push(("birth_date_estimated", true.into()));
            }
            _ => {}
        }
        let person = tx.create("p", "person", Some(at(initiated)), set, Vec::new());
        tx.stats.people += 1;
        tx.stats.alleged_perpetrators += 1;
        person
    }

    fn conclusion_attrs(&mut self, c: usize, tx: &mut Tx, date: NaiveDate, outcome_expressed: bool) -> Attrs {
        let conclusion = self.weighted(CONCLUSIONS);
        let conclusion = self.coded(c, tx, Coded::Conclusion, conclusion);
        let mut set: Attrs = vec![
            ("conclusion", text(conclusion)),
            ("conclusion_date", date_value(date)),
            ("action_and_result", text(self.pick(ACTIONS))),
            ("involvement_in_meetings", text(self.pick(MEETINGS))),
            ("involvement_in_decisions", text(self.pick(DECISIONS))),
        ];
        if outcome_expressed {
            set.push(("desired_outcome_achieved", text(self.pick(ACHIEVED))));
        }
        if self.chance(0.01) {
            set.push(("serious_case_review", text("Y")));
            set.push(("serious_case_review_reason", text("Serious harm; concern about how agencies worked together")));
        } else if self.chance(0.8) {
            set.push(("serious_case_review", text("N")));
        }
        set
    }

    /// A concern is concluded, sometimes after a recorded strategy discussion.
    pub(crate) fn conclude(&mut self, c: usize, tx: &mut Tx, concern: &Handle, initiated: NaiveDate, date: NaiveDate) {
        tx.next_row();
        if self.chance(0.3) {
            let held = self.date_between(initiated, date);
            let outcome = self.pick(&["Section 42 enquiry to proceed", "No further action", "Police to lead"]);
            let valid = Some(at(held));
            let discussion = tx.create(
                "e",
                "strategy_discussion",
                valid,
                vec![("discussion_date", date_value(held)), ("outcome", text(outcome))],
                Vec::new(),
            );
            tx.stats.strategy_discussions += 1;
            tx.link(&discussion, "part_of", concern, valid);
        }
        let expressed = self.chance(0.6);
        let set = self.conclusion_attrs(c, tx, date, expressed);
        tx.update(concern, Some(at(date)), set);
        let rec = ConcludedRec { concern: concern.clone(), initiated, concluded: date };
        tx.remember(OnCommit::Concluded { council: c, rec });
    }
}
