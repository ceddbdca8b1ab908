//! National reference data: care providers and their CQC-registered care settings, and
//! hospitals. Loaded first, by an administrator rather than a council, and later amended
//! now and then (a new home registers, a provider takes over another's home).
//!
//! Reference data carries no valid time: it is true from when the store learns it.

use pole_model::Identifier;

use crate::demo::names::{CARE_WORDS, PROVIDER_SUFFIXES};
use crate::demo::places::COUNCILS;
use crate::demo::sim::Sim;
use crate::demo::tx::{text, Handle, Meta, Tx};
use crate::demo::world::{OnCommit, SettingRec};

const SETTING_TYPES: &[(&str, u32)] =
    &[("CARE_HOME_RESIDENTIAL", 40), ("CARE_HOME_NURSING", 25), ("COMMUNITY_SERVICE", 35)];

const ORGANISATION_TYPES: &[(&str, u32)] = &[
    ("Care home provider", 40),
    ("Home care provider", 30),
    ("Care home and home care provider", 15),
    ("Supported living provider", 10),
    ("Day service provider", 5),
];

/// How much reference data to load before the councils' submissions start, scaled to the
/// size of the run so that a small run is not all reference data.
#[derive(Debug)]
pub(crate) struct ReferencePlan {
    providers_left: u64,
    settings_left: Vec<u64>,
    hospitals_loaded: bool,
}

impl ReferencePlan {
    pub(crate) fn new(changes: u64) -> Self {
        let providers = (changes / 4000).clamp(6, 300);
        let settings = COUNCILS.iter().map(|def| (changes / 20_000 * u64::from(def.weight)).clamp(4, 150)).collect();
        ReferencePlan { providers_left: providers, settings_left: settings, hospitals_loaded: false }
    }
}

impl Sim {
    fn admin_meta(&mut self, system: &str, file_stem: &str) -> Meta {
        self.world.reference_no += 1;
        Meta {
            council: None,
            role: "admin",
            system: system.to_owned(),
            file: format!("{file_stem}_{}.csv", self.today.format("%Y%m%d")),
            reason: None,
        }
    }

    /// The next transaction of the initial reference load, or `None` once it is loaded.
    pub(crate) fn reference_batch(&mut self, plan: &mut ReferencePlan) -> Option<Tx> {
        if plan.providers_left > 0 {
            let meta = self.admin_meta("CQC care directory", "cqc_providers");
            let mut tx = Tx::new(meta);
            let n = plan.providers_left.min(40);
            plan.providers_left -= n;
            for _ in 0..n {
                self.create_provider(&mut tx);
            }
            return Some(tx);
        }
        if let Some(c) = plan.settings_left.iter().position(|n| *n > 0) {
            let meta = self.admin_meta("CQC care directory", "cqc_locations");
            let mut tx = Tx::new(meta);
            let n = plan.settings_left[c].min(25);
            plan.settings_left[c] -= n;
            for _ in 0..n {
                let provider = self.skewed_provider();
                self.create_setting(c, &mut tx, provider);
            }
            return Some(tx);
        }
        if !plan.hospitals_loaded {
            plan.hospitals_loaded = true;
            let meta = self.admin_meta("NHS ODS", "ods_sites");
            let mut tx = Tx::new(meta);
            for (c, def) in COUNCILS.iter().enumerate() {
                for hospital in def.hospitals {
                    tx.next_row();
                    let set = vec![("name", text(hospital.name)), ("postcode", text(hospital.postcode))];
                    let id = tx.create("h", "hospital", None, set, vec![Identifier::new("ods", hospital.ods)]);
                    tx.stats.hospitals += 1;
                    tx.remember(OnCommit::Hospital { council: c, id });
                }
            }
            return Some(tx);
        }
        None
    }

    /// A provider from the pool, favouring the earliest: a few national chains run many
    /// homes, which is what makes the cross-council provider view worth having.
    fn skewed_provider(&mut self) -> Option<Handle> {
        for _ in 0..4 {
            let (serial, provider) = self.world.providers.random(&mut self.rng).map(|(s, p)| (s, p.clone()))?;
            if serial < 8 || self.chance(0.35) {
                return Some(provider);
            }
        }
        self.world.providers.random(&mut self.rng).map(|(_, p)| p.clone())
    }

    fn create_provider(&mut self, tx: &mut Tx) -> Handle {
        tx.next_row();
        let name = format!("{} {}", self.pick(CARE_WORDS), self.pick(PROVIDER_SUFFIXES));
        let kind = self.weighted(ORGANISATION_TYPES);
        let cqc = self.next_cqc_provider();
        let set = vec![("name", text(name)), ("organisation_type", text(kind))];
        let provider = tx.create("o", "organisation", None, set, vec![Identifier::new("cqc-provider", cqc)]);
        tx.stats.providers += 1;
        tx.remember(OnCommit::Provider(provider.clone()));
        provider
    }

    fn setting_name(&mut self, c: usize, setting_type: &str) -> String {
        let word = self.pick(CARE_WORDS);
        let towns = COUNCILS[c].towns;
        let town = towns[self.range(0, towns.len() as i64 - 1) as usize].name;
        match setting_type {
            "CARE_HOME_NURSING" => {
                let suffix = self.pick(&["Nursing Home", "Care Centre", "Park Nursing Home", "House Nursing Home"]);
                format!("{word} {suffix}")
            }
            "CARE_HOME_RESIDENTIAL" => {
                let suffix = self.pick(&["House", "Lodge", "Court", "Residential Home", "Manor", "Grange"]);
                format!("{word} {suffix}")
            }
            _ => {
                let form =
                    self.pick(&["Homecare - {town}", "Day Centre", "Supported Living - {town}", "Home Support {town}"]);
                format!("{word} {}", form.replace("{town}", town))
            }
        }
    }

    fn create_setting(&mut self, c: usize, tx: &mut Tx, provider: Option<Handle>) {
        tx.next_row();
        let setting_type = self.weighted(SETTING_TYPES);
        let name = self.setting_name(c, setting_type);
        let towns = COUNCILS[c].towns;
        let town = self.range(0, towns.len() as i64 - 1) as usize;
        let postcode = self.postcode(c, town);
        let set = vec![("name", text(name)), ("setting_type", text(setting_type)), ("postcode", text(postcode))];
        let cqc = self.next_cqc_location();
        let id = tx.create("l", "care_setting", None, set, vec![Identifier::new("cqc-location", cqc)]);
        tx.stats.care_settings += 1;
        if let Some(provider) = &provider {
            tx.link(&id, "operated_by", provider, None);
        }
        tx.remember(OnCommit::Setting { council: c, rec: SettingRec { id, provider, setting_type } });
    }

    /// A file of amendments to the register.
    pub(crate) fn registration_batch(&mut self, c: usize, tx: &mut Tx) {
        for _ in 0..self.range(2, 4) {
            self.amend_register(c, tx);
        }
    }

    /// New settings (sometimes of a new provider), or a home taken over by another provider
    /// and perhaps renamed.
    fn amend_register(&mut self, c: usize, tx: &mut Tx) {
        let takeover = if self.chance(0.4) {
            self.world.councils[c]
                .settings
                .random_where(&mut self.rng, |s| s.provider.is_some())
                .map(|(serial, s)| (serial, s.clone()))
        } else {
            None
        };
        // One takeover per home per file: its operator is only known again after the commit.
        if let Some((serial, setting)) = takeover.filter(|(serial, _)| tx.claim("setting", c, *serial)) {
            let new_provider = if self.chance(0.5) { self.skewed_provider() } else { None };
            let new_provider = match new_provider {
                Some(p) if Some(&p) != setting.provider.as_ref() => p,
                _ => self.create_provider(tx),
            };
            tx.next_row();
            if let Some(old) = &setting.provider {
                tx.unlink(&setting.id, "operated_by", old, None);
            }
            tx.link(&setting.id, "operated_by", &new_provider, None);
            if self.chance(0.5) {
                let name = self.setting_name(c, setting.setting_type);
                tx.update(&setting.id, None, vec![("name", text(name))]);
            }
            tx.remember(OnCommit::SettingProvider { council: c, serial, provider: new_provider });
            return;
        }
        let provider = if self.chance(0.3) { Some(self.create_provider(tx)) } else { self.skewed_provider() };
        for _ in 0..self.range(1, 3) {
            self.create_setting(c, tx, provider.clone());
        }
    }
}
