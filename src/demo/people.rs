//! People and where they live: new clients with their first contact, carers, addresses and
//! moves, NHS numbers (recorded, missing, mistyped, traced later), name corrections, deaths,
//! and the same person recorded again by a second council.

use chrono::{Datelike, NaiveDate};
use pole_model::Identifier;

use crate::demo::codes::PRIMARY_SUPPORT_REASONS;
use crate::demo::followups::FollowUp;
use crate::demo::names::{ethnicity_codes, family_names, given_names, Heritage, BLOCKS, STREETS, STREET_SUFFIXES};
use crate::demo::places::COUNCILS;
use crate::demo::sim::{add_days, age_on, Sim};
use crate::demo::tx::{at, date_value, text, Attrs, Handle, Tx};
use crate::demo::world::{Home, Identity, OnCommit, PersonEdit, PersonRec, Profile};

const POSTCODE_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// How a client's NHS number reaches the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NhsEntry {
    Recorded,
    Missing,
    /// Keyed with a wrong check digit: the store refuses the whole transaction.
    Mistyped,
}

impl Sim {
    /// A new person's identity, aged within `ages` today.
    pub(crate) fn new_identity(
        &mut self,
        c: usize,
        heritage: Option<Heritage>,
        ages: (i32, i32),
        female: bool,
    ) -> Identity {
        let heritage = heritage.unwrap_or_else(|| self.weighted(COUNCILS[c].heritage));
        let age = self.range(i64::from(ages.0), i64::from(ages.1));
        let days_old = age * 365 + age / 4 + self.range(0, 364);
        let birth = add_days(self.today, -days_old);
        let given = self.pick(given_names(heritage, female, birth.year()));
        let family = self.pick(family_names(heritage));
        let ethnicity = self.weighted(ethnicity_codes(heritage));
        let nhs = self.next_nhs();
        Identity {
            given: given.to_owned(),
            family: family.to_owned(),
            birth,
            female,
            gender: if female { "2" } else { "1" },
            ethnicity,
            heritage,
            nhs,
        }
    }

    /// A client's identity: social care clients are mostly old, a working-age minority
    /// (learning disability, mental health) and a few over ninety.
    pub(crate) fn client_identity(&mut self, c: usize) -> Identity {
        let female = self.chance(0.6);
        let ages = match self.range(0, 99) {
            0..=29 => (18, 64),
            30..=54 => (65, 79),
            55..=93 => (80, 89),
            _ => (90, 100),
        };
        self.new_identity(c, None, ages, female)
    }

    pub(crate) fn postcode(&mut self, c: usize, town: usize) -> String {
        let town = &COUNCILS[c].towns[town];
        let district = self.pick(town.districts);
        let sector = self.range(1, 9);
        let a = char::from(self.pick(POSTCODE_LETTERS));
        let b = char::from(self.pick(POSTCODE_LETTERS));
        format!("{}{district} {sector}{a}{b}", town.area)
    }

    /// Creates a home address in the council's area.
    pub(crate) fn create_address(&mut self, c: usize, tx: &mut Tx, valid: NaiveDate) -> Handle {
        let def = &COUNCILS[c];
        let town_idx = self.range(0, def.towns.len() as i64 - 1) as usize;
        let town = &def.towns[town_idx];
        let street = format!("{} {}", self.pick(STREETS), self.pick(STREET_SUFFIXES));
        let mut set: Attrs = Vec::new();
        if self.chance(0.8) {
            let number = self.range(1, 180);
            set.push(("line1", text(format!("{number} {street}"))));
            if !town.localities.is_empty() && self.chance(0.5) {
                set.push(("line2", text(self.pick(town.localities))));
            }
        } else {
            let flat = self.range(1, 60);
            set.push(("line1", text(format!("Flat {flat}, {}", self.pick(BLOCKS)))));
            set.push(("line2", text(street)));
        }
        set.push(("town", text(town.name)));
        let postcode = self.postcode(c, town_idx);
        set.push(("postcode", text(postcode)));
        let mut identifiers = Vec::new();
        if def.records_uprn && self.chance(0.9) {
            identifiers.push(Identifier::new("uprn", self.next_uprn()));
        }
        tx.stats.addresses += 1;
        tx.create("a", "address", Some(at(valid)), set, identifiers)
    }

    /// A plausible misspelling of a name, as a typing slip produces.
    fn misspell(&mut self, name: &str) -> String {
        let chars: Vec<char> = name.chars().collect();
        if chars.len() < 4 {
            return format!("{name}e");
        }
        let i = self.range(1, chars.len() as i64 - 2) as usize;
        let mut out = chars.clone();
        match self.range(0, 2) {
            0 => out.swap(i, i + 1),
            1 => out.insert(i, chars[i]),
            _ => {
                out.remove(i);
            }
        }
        let spelt: String = out.into_iter().collect();
        if spelt == name {
            format!("{name}s")
        } else {
            spelt
        }
    }
}

pub(crate) fn person_attrs(identity: &Identity, family: &str, ethnicity: bool) -> Attrs {
    let mut set: Attrs = vec![
        ("given_name", text(identity.given.clone())),
        ("family_name", text(family)),
        ("birth_date", date_value(identity.birth)),
        ("gender", text(identity.gender)),
    ];
    if ethnicity {
        set.push(("ethnicity", text(identity.ethnicity)));
    }
    set
}

impl Sim {
    /// One client's bundle, as a council's case-management system exports a new case: the
    /// person, their address, possibly a carer, the contact and what followed it. With
    /// `duplicate_of`, the person is someone another council already recorded.
    pub(crate) fn client_bundle(&mut self, c: usize, tx: &mut Tx, duplicate_of: Option<Profile>) {
        let def = &COUNCILS[c];
        tx.next_row();
        let contact_date = self.days_before(self.today, 0, 14);
        let known_since = contact_date;
        let duplicate = duplicate_of.is_some();
        let identity = match duplicate_of {
            Some(profile) => profile.identity,
            None => self.client_identity(c),
        };
        let age = age_on(identity.birth, known_since);
        let nhs = if duplicate {
            // A second council often lacks the number the first one had.
            if self.chance(0.25) {
                NhsEntry::Missing
            } else {
                NhsEntry::Recorded
            }
        } else if self.chance(def.invalid_nhs) {
            NhsEntry::Mistyped
        } else if self.chance(def.missing_nhs) {
            NhsEntry::Missing
        } else {
            NhsEntry::Recorded
        };
        let typo = !duplicate && self.chance(0.02);
        let family = if typo { self.misspell(&identity.family) } else { identity.family.clone() };
        let ethnicity = self.chance(0.9);
        let mut set = person_attrs(&identity, &family, ethnicity);
        let support_reason = if self.chance(0.7) {
            let reason = self.support_reason(age);
            set.push(("primary_support_reason", text(reason)));
            Some(reason)
        } else {
            None
        };
        let mut identifiers = vec![Identifier::new(format!("council:{}:client", def.code), self.next_client_id(c))];
        match nhs {
            NhsEntry::Recorded => identifiers.push(Identifier::new("nhs-number", identity.nhs.clone())),
            NhsEntry::Mistyped => {
                let wrong = self.corrupt_nhs(&identity.nhs);
                identifiers.push(Identifier::new("nhs-number", wrong));
                tx.bad_nhs.push(tx.len());
                tx.submitted.nhs_numbers_invalid_submitted += 1;
            }
            NhsEntry::Missing => tx.stats.nhs_numbers_missing += 1,
        }
        let person = tx.create("p", "person", Some(at(known_since)), set, identifiers);
        tx.stats.people += 1;
        tx.stats.clients += 1;
        if duplicate {
            tx.stats.duplicates_across_councils += 1;
        }

        let years_here = self.range(0, i64::from((age - 18).clamp(0, 40)));
        let moved_in = self.days_before(known_since, 30 + years_here * 365, 60 + years_here * 365);
        let address = self.create_address(c, tx, known_since);
        let valid = Some(at(known_since));
        tx.link_period((&person, "resides_at", &address), valid, Some(at(moved_in)), None);
        let home = Home { place: address.clone(), from: moved_in, care_home: false };

        let carer = if self.chance(if age >= 60 { 0.35 } else { 0.2 }) {
            Some(self.add_carer(c, tx, &person, &identity, &home, known_since))
        } else {
            None
        };
        let serial = self.world.councils[c].people.reserve();
        self.first_contact(c, tx, (&person, serial), contact_date);

        if typo {
            let due = self.days_after(known_since, 7, 90);
            let item =
                FollowUp::CorrectName { person: person.clone(), family: identity.family.clone(), since: known_since };
            tx.remember(OnCommit::Schedule { council: c, due, item });
        }
        let death_risk = match age {
            90.. => 0.3,
            85..=89 => 0.2,
            65..=84 => 0.06,
            _ => 0.01,
        };
        if self.chance(death_risk) {
            let due = self.days_after(known_since, 30, 1500);
            tx.remember(OnCommit::Schedule {
                council: c,
                due,
                item: FollowUp::Death { person: person.clone(), serial },
            });
        }
        if nhs == NhsEntry::Recorded && !duplicate {
            tx.remember(OnCommit::Profile(Box::new(Profile { identity: identity.clone(), council: c })));
        }
        let rec = PersonRec {
            id: person,
            identity,
            nhs_recorded: nhs == NhsEntry::Recorded,
            ethnicity_recorded: ethnicity,
            support_reason,
            known_since,
            home: Some(home),
            carer,
            concerns: 0,
            has_mrn: false,
            deceased: false,
            opted_out: false,
        };
        tx.remember(OnCommit::Person { council: c, serial, rec: Box::new(rec) });
    }

    pub(crate) fn support_reason(&mut self, age: i32) -> &'static str {
        loop {
            let reason = self.weighted(PRIMARY_SUPPORT_REASONS);
            // Learning disability support is overwhelmingly a working-age reason.
            if age < 65 || reason != "LEARNING_DISABILITY" || self.chance(0.1) {
                return reason;
            }
        }
    }

    /// A family carer of `client`: a spouse or an adult child (a parent, for a young client),
    /// often living with them; sometimes with a carer's assessment of their own.
    fn add_carer(
        &mut self,
        c: usize,
        tx: &mut Tx,
        client: &Handle,
        of: &Identity,
        home: &Home,
        known_since: NaiveDate,
    ) -> Handle {
        let def = &COUNCILS[c];
        let age = age_on(of.birth, known_since);
        let (ages, female, lives_with) = if age >= 60 && self.chance(0.55) {
            (((age - 5).max(50), (age + 4).min(98)), !of.female, true)
        } else if age < 40 {
            (((age + 22).max(45), (age + 35).min(85)), self.chance(0.7), true)
        } else {
            (((age - 38).max(25), (age - 22).max(25)), self.chance(0.65), self.chance(0.35))
        };
        let mut identity = self.new_identity(c, Some(of.heritage), (ages.0.min(ages.1), ages.1), female);
        if self.chance(0.7) {
            identity.family = of.family.clone();
        }
        let ethnicity = self.chance(0.6);
        let set = person_attrs(&identity, &identity.family, ethnicity);
        let mut identifiers = Vec::new();
        if self.chance(0.5) {
            identifiers.push(Identifier::new(format!("council:{}:client", def.code), self.next_client_id(c)));
        }
        if self.chance(1.0 - def.missing_nhs * 1.5) {
            identifiers.push(Identifier::new("nhs-number", identity.nhs.clone()));
        } else {
            tx.stats.nhs_numbers_missing += 1;
        }
        let valid = Some(at(known_since));
        let carer = tx.create("p", "person", valid, set, identifiers);
        tx.stats.people += 1;
        tx.stats.carers += 1;
        tx.link(&carer, "carer_of", client, valid);
        if lives_with {
            tx.link_period((&carer, "resides_at", &home.place), valid, Some(at(home.from)), None);
        }
        if self.chance(0.3) {
            let start = self.date_between(known_since, self.today);
            let assessment = tx.create(
                "e",
                "assessment",
                Some(at(start)),
                vec![("assessment_type", text("Carer's assessment")), ("start_date", date_value(start))],
                vec![Identifier::new(format!("council:{}:event", def.code), self.next_event_id(c, "ASM"))],
            );
            tx.stats.assessments += 1;
            tx.link(&assessment, "subject", &carer, Some(at(start)));
            let due = self.days_after(start, 14, 90);
            let item = FollowUp::EndAssessment { assessment, person: carer.clone(), serial: None, start, carer: true };
            tx.remember(OnCommit::Schedule { council: c, due, item });
        }
        carer
    }

    /// A batch of changes to known clients' records: moves, NHS numbers found by tracing,
    /// ethnicity recorded later, changed support needs, objections to data use.
    pub(crate) fn maintenance_batch(&mut self, c: usize, tx: &mut Tx, budget: usize) {
        let size = (self.range(5, 30) as usize).min(budget.max(5));
        // Some rows change nothing (the value is already recorded): try a few more than needed.
        for _ in 0..size * 3 {
            if tx.len() >= size {
                break;
            }
            let Some((serial, rec)) =
                self.world.councils[c].people.random_where(&mut self.rng, |p| !p.deceased).map(|(s, p)| (s, p.clone()))
            else {
                return;
            };
            if !tx.claim("record", c, serial) {
                continue;
            }
            tx.next_row();
            let date = self.days_before(self.today, 0, 20).max(rec.known_since);
            let valid = Some(at(date));
            match self.range(0, 99) {
                0..=24 => self.move_home(c, tx, serial, &rec),
                25..=49 if !rec.nhs_recorded => {
                    tx.add_identifier(&rec.id, valid, Identifier::new("nhs-number", rec.identity.nhs.clone()));
                    tx.stats.nhs_numbers_traced += 1;
                    tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::NhsRecorded });
                }
                50..=64 if !rec.ethnicity_recorded => {
                    tx.update(&rec.id, valid, vec![("ethnicity", text(rec.identity.ethnicity))]);
                    tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::EthnicityRecorded });
                }
                65..=96 => {
                    let age = age_on(rec.identity.birth, date);
                    let reason = self.support_reason(age);
                    if Some(reason) != rec.support_reason {
                        tx.update(&rec.id, valid, vec![("primary_support_reason", text(reason))]);
                    }
                }
                97..=99 if !rec.opted_out => {
                    tx.update(&rec.id, valid, vec![("opted_out", true.into())]);
                    tx.stats.opt_outs += 1;
                    tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::OptedOut });
                }
                _ => {}
            }
        }
    }

    /// Moves a client to a new address in the council's area, closing the old address's
    /// period. Some systems close it in place, others delete the row and insert it again.
    fn move_home(&mut self, c: usize, tx: &mut Tx, serial: u64, rec: &PersonRec) {
        let Some(home) = rec.home.as_ref().filter(|h| !h.care_home) else {
            return;
        };
        // People rarely move again within six months; early in a run the pool is small and
        // would otherwise move the same few people every few days.
        let earliest = add_days(home.from, 180).max(add_days(rec.known_since, 1));
        if earliest > self.today {
            return;
        }
        let date = self.date_between(earliest.max(add_days(self.today, -20)), self.today);
        let valid = Some(at(date));
        if self.chance(0.3) {
            tx.unlink(&rec.id, "resides_at", &home.place, valid);
        }
        tx.link_period((&rec.id, "resides_at", &home.place), valid, Some(at(home.from)), Some(at(date)));
        let address = self.create_address(c, tx, date);
        tx.link_period((&rec.id, "resides_at", &address), valid, Some(at(date)), None);
        tx.stats.moves += 1;
        let home = Home { place: address, from: date, care_home: false };
        tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::Home(home) });
    }

    /// Moves a client into a care home from `date` (a residential or nursing placement).
    pub(crate) fn move_into_care_home(
        &mut self,
        c: usize,
        tx: &mut Tx,
        serial: u64,
        setting: &Handle,
        date: NaiveDate,
    ) {
        let Some(rec) = self.world.councils[c].people.get(serial).cloned() else {
            return;
        };
        if !tx.claim("home", c, serial) {
            return;
        }
        let valid = Some(at(date));
        if let Some(home) = rec.home.as_ref() {
            if home.care_home || home.from >= date {
                return;
            }
            tx.link_period((&rec.id, "resides_at", &home.place), valid, Some(at(home.from)), Some(at(date)));
        }
        tx.link_period((&rec.id, "resides_at", setting), valid, Some(at(date)), None);
        tx.stats.moves += 1;
        let home = Home { place: setting.clone(), from: date, care_home: true };
        tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::Home(home) });
    }

    /// The same person, already known to another council, turns up in this council's
    /// records (placed out of area, or moved): a separate `person` to be linked later.
    pub(crate) fn duplicate_bundle(&mut self, c: usize, tx: &mut Tx) {
        let Some(profile) = self.world.profiles.random_where(&mut self.rng, |p| p.council != c).map(|(_, p)| p.clone())
        else {
            return;
        };
        self.client_bundle(c, tx, Some(profile));
    }

    pub(crate) fn correct_name(&mut self, tx: &mut Tx, person: &Handle, family: &str, since: NaiveDate) {
        tx.next_row();
        // The correction holds from the start: the name was always this one.
        tx.update(person, Some(at(since)), vec![("family_name", text(family))]);
        tx.stats.name_corrections += 1;
    }

    /// Records a death: the person's date of death and a death event.
    pub(crate) fn record_death(&mut self, c: usize, tx: &mut Tx, person: &Handle, serial: u64, date: NaiveDate) {
        if self.world.councils[c].people.get(serial).is_some_and(|p| p.deceased) || !tx.claim("death", c, serial) {
            return;
        }
        tx.next_row();
        let valid = Some(at(date));
        tx.update(person, valid, vec![("death_date", date_value(date))]);
        let death = tx.create("e", "death", valid, vec![("death_date", date_value(date))], Vec::new());
        tx.link(&death, "subject", person, valid);
        tx.stats.deaths += 1;
        tx.remember(OnCommit::Edit { council: c, serial, edit: PersonEdit::Died });
    }
}
