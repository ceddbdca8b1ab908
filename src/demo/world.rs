//! What the generator remembers between transactions: small pools of recent people, care
//! settings and providers, the follow-ups each council has pending, and the counters its
//! identifiers are numbered from. Everything here is bounded.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use pole_model::EntityId;

use crate::demo::followups::FollowUp;
use crate::demo::names::Heritage;
use crate::demo::places::COUNCILS;
use crate::demo::pools::{Agenda, Recent};
use crate::demo::tx::{resolve_opt, Handle};

const PEOPLE_PER_COUNCIL: usize = 2048;
const SETTINGS_PER_COUNCIL: usize = 512;
const FOLLOW_UPS_PER_COUNCIL: usize = 6000;
const CONCLUDED_PER_COUNCIL: usize = 256;
const PROVIDERS: usize = 1024;
const PROFILES: usize = 2048;

/// Who a person is, independently of any council's record of them: what a second council
/// would record about the same person.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub given: String,
    pub family: String,
    pub birth: NaiveDate,
    pub female: bool,
    /// National gender code.
    pub gender: &'static str,
    pub ethnicity: &'static str,
    pub heritage: Heritage,
    /// The person's real NHS number, whether or not a council recorded it.
    pub nhs: String,
}

/// Where a person lives from a date: an address or, after a placement, a care home.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    pub place: Handle,
    pub from: NaiveDate,
    pub care_home: bool,
}

/// A council's client (or a client's carer) as the generator remembers them.
#[derive(Debug, Clone)]
pub(crate) struct PersonRec {
    pub id: Handle,
    pub identity: Identity,
    pub nhs_recorded: bool,
    pub ethnicity_recorded: bool,
    pub support_reason: Option<&'static str>,
    /// The valid time of the person's create: nothing about them is dated earlier.
    pub known_since: NaiveDate,
    pub home: Option<Home>,
    pub carer: Option<Handle>,
    pub concerns: u32,
    pub has_mrn: bool,
    pub deceased: bool,
    pub opted_out: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct SettingRec {
    pub id: Handle,
    pub provider: Option<Handle>,
    /// The care setting's `setting_type` (a location of risk code).
    pub setting_type: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct ConcludedRec {
    pub concern: Handle,
    pub initiated: NaiveDate,
    pub concluded: NaiveDate,
}

/// A person known to one council, who may later be recorded again by another.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub identity: Identity,
    pub council: usize,
}

/// A change to a remembered person, applied once the transaction that made it commits.
#[derive(Debug, Clone)]
pub(crate) enum PersonEdit {
    Home(Home),
    Concern,
    Died,
    NhsRecorded,
    EthnicityRecorded,
    OptedOut,
    Mrn,
}

/// What to remember about a transaction's entities once it commits.
#[derive(Debug, Clone)]
pub(crate) enum OnCommit {
    Provider(Handle),
    Setting { council: usize, rec: SettingRec },
    SettingProvider { council: usize, serial: u64, provider: Handle },
    Hospital { council: usize, id: Handle },
    Person { council: usize, serial: u64, rec: Box<PersonRec> },
    Edit { council: usize, serial: u64, edit: PersonEdit },
    Profile(Box<Profile>),
    Schedule { council: usize, due: NaiveDate, item: FollowUp },
    Concluded { council: usize, rec: ConcludedRec },
}

#[derive(Debug)]
pub(crate) struct CouncilState {
    pub people: Recent<PersonRec>,
    pub settings: Recent<SettingRec>,
    pub hospitals: Vec<Handle>,
    pub agenda: Agenda<FollowUp>,
    pub concluded: Recent<ConcludedRec>,
    pub client_no: u64,
    pub referral_no: u64,
    pub event_no: u64,
    pub batch_no: u64,
}

#[derive(Debug)]
pub(crate) struct World {
    pub councils: Vec<CouncilState>,
    pub providers: Recent<Handle>,
    pub profiles: Recent<Profile>,
    /// Varies the identifier numbering by seed.
    pub salt: u64,
    pub nhs_no: u64,
    pub cqc_no: u64,
    pub uprn_no: u64,
    pub mrn_no: u64,
    pub reference_no: u64,
}

impl World {
    pub(crate) fn new(salt: u64) -> Self {
        let councils = COUNCILS
            .iter()
            .map(|def| CouncilState {
                people: Recent::new(PEOPLE_PER_COUNCIL),
                settings: Recent::new(SETTINGS_PER_COUNCIL),
                hospitals: Vec::new(),
                agenda: Agenda::new(FOLLOW_UPS_PER_COUNCIL),
                concluded: Recent::new(CONCLUDED_PER_COUNCIL),
                client_no: def.client_base,
                referral_no: 0,
                event_no: 0,
                batch_no: 0,
            })
            .collect();
        World {
            councils,
            providers: Recent::new(PROVIDERS),
            profiles: Recent::new(PROFILES),
            salt,
            nhs_no: 0,
            cqc_no: 0,
            uprn_no: 0,
            mrn_no: 0,
            reference_no: 0,
        }
    }

    /// Records a committed transaction's entities; anything whose ref the store did not
    /// name is forgotten rather than guessed.
    pub(crate) fn apply(&mut self, item: OnCommit, refs: &BTreeMap<String, EntityId>) {
        match item {
            OnCommit::Provider(mut id) => {
                if id.resolve(refs) {
                    self.providers.push(id);
                }
            }
            OnCommit::Setting { council, mut rec } => {
                if rec.id.resolve(refs) && resolve_opt(&mut rec.provider, refs) {
                    self.councils[council].settings.push(rec);
                }
            }
            OnCommit::SettingProvider { council, serial, mut provider } => {
                if provider.resolve(refs) {
                    if let Some(rec) = self.councils[council].settings.get_mut(serial) {
                        rec.provider = Some(provider);
                    }
                }
            }
            OnCommit::Hospital { council, mut id } => {
                if id.resolve(refs) {
                    self.councils[council].hospitals.push(id);
                }
            }
            OnCommit::Person { council, serial, mut rec } => {
                let resolved = rec.id.resolve(refs)
                    && resolve_opt(&mut rec.carer, refs)
                    && rec.home.as_mut().is_none_or(|h| h.place.resolve(refs));
                if resolved {
                    self.councils[council].people.insert(serial, *rec);
                }
            }
            OnCommit::Edit { council, serial, edit } => self.edit_person(council, serial, edit, refs),
            OnCommit::Profile(profile) => {
                self.profiles.push(*profile);
            }
            OnCommit::Schedule { council, due, mut item } => {
                if item.resolve(refs) {
                    self.councils[council].agenda.schedule(due, item);
                }
            }
            OnCommit::Concluded { council, mut rec } => {
                if rec.concern.resolve(refs) {
                    self.councils[council].concluded.push(rec);
                }
            }
        }
    }

    fn edit_person(&mut self, council: usize, serial: u64, edit: PersonEdit, refs: &BTreeMap<String, EntityId>) {
        let Some(person) = self.councils[council].people.get_mut(serial) else {
            return;
        };
        match edit {
            PersonEdit::Home(mut home) => {
                if home.place.resolve(refs) {
                    person.home = Some(home);
                }
            }
            PersonEdit::Concern => person.concerns += 1,
            PersonEdit::Died => person.deceased = true,
            PersonEdit::NhsRecorded => person.nhs_recorded = true,
            PersonEdit::EthnicityRecorded => person.ethnicity_recorded = true,
            PersonEdit::OptedOut => person.opted_out = true,
            PersonEdit::Mrn => person.has_mrn = true,
        }
    }
}
