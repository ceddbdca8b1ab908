//! The `safeguarding` reader: one row of the case-level safeguarding data set (one row per
//! allegation) becomes the client (a person, by council client id or dummy id, linked by
//! NHS number when one is given), the safeguarding concern (by council referral id), the
//! allegation (part of the concern, with type, source and location of risk), the CQC
//! provider (an organisation) and location (a care setting, operated by the provider) where
//! it happened, and the client's home postcode (an address they reside at).
//!
//! Natural keys when the file lacks them (the proof of concept's shape): a concern without a
//! Council Safeguarding Referral Identifier is keyed by the client and the Date Referral
//! Initiated (`~CLIENT~YYYY-MM-DD`); an allegation, which has no identifier of its own, is
//! keyed by its concern and its position among that concern's rows in the file
//! (`REFERRAL/allegation/N`, system `council:CODE:event`). Re-ingesting the file, or a
//! corrected one with the rows in the same order, finds the same entities.
//!
//! What rejects a row (nothing of it is stored): a missing client identifier or Date
//! Referral Initiated, a date that does not parse, lies in the future or before the
//! client's birth, a value outside a strict code list (gender, ethnicity, yes/no columns),
//! an identifier of the wrong shape, a Local Authority Identifier other than the council's,
//! and a referral already given to another client. What warns (the row is stored): a local
//! code of a non-strict list no mapping covers (kept verbatim), levels that disagree in a
//! split cell, an NHS number failing Modulus 11, a postcode or CQC id of the wrong shape
//! (those values are left out), an age that disagrees with the date of birth, an incident
//! after the referral, a conclusion before it.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest as _, Sha256};

use chrono::NaiveDate;
use pole_model::{Identifier, SchemaRegistry, Timestamp, ValueType};
use serde_json::Value;

use crate::commit::{EntityPlan, LinkPlan, LinkedMatch, RowPlan};
use crate::error::{IngestError, Result};
use crate::profile::{normalise, Profile};
use crate::report::RowReport;
use crate::validate;

/// The 32 columns of the proof of concept's submission template, in order.
pub const COLUMNS: [&str; 32] = [
    "Local Authority Identifier",
    "DUMMY Council Client Identifier",
    "Known to Council",
    "INDICATOR FOR Client NHS Number",
    "INDICATOR FOR Client Date of Birth",
    "INDICATOR FOR Client Postcode",
    "Client Gender",
    "Client Age at Start of Referral",
    "Primary Client Group",
    "Client Ethnicity",
    "Date Referral Initiated",
    "Consent to Investigation",
    "Repeat Referral",
    "Date Incident Occurred",
    "Type of Risk",
    "Risk Reported by",
    "Source of Risk",
    "Location of Risk",
    "CQC Provider Identifier",
    "CQC Location Identifier",
    "CQC Location Postcode",
    "Action and Result",
    "Conclusion",
    "Conclusion Date",
    "Lacking Capacity",
    "Advocate Support",
    "Desired Outcome Expressed",
    "Desired Outcome Achieved",
    "Client Involvement in Safeguarding Meetings",
    "Client Involvement in Decision Making",
    "Serious Case Review",
    "Serious Case Review Reason",
];

/// The identifiable columns a mandated collection would carry (section 7.9), and the
/// names of the CQC location and provider some councils added.
pub const IDENTIFIABLE: [&str; 8] = [
    "Client NHS Number",
    "Client Date of Birth",
    "Client Postcode",
    "Council Client Identifier",
    "Council Safeguarding Referral Identifier",
    "CQC Safeguarding Referral Identifier",
    "CQC Provider Name",
    "CQC Location Name",
];

/// Columns checked but not stored: the schema has no attribute for them.
const NOT_STORED: [&str; 3] =
    ["INDICATOR FOR Client NHS Number", "INDICATOR FOR Client Date of Birth", "INDICATOR FOR Client Postcode"];

/// Every column this reader knows.
pub fn known_columns() -> Vec<&'static str> {
    COLUMNS.iter().chain(IDENTIFIABLE.iter()).copied().collect()
}

/// What a column is stored as, for the report's column list.
pub fn column_note(column: &str) -> Option<String> {
    if NOT_STORED.contains(&column) {
        return Some("checked (yes/no) but not stored: the schema has no attribute for it".into());
    }
    let stored = match column {
        "Local Authority Identifier" => "checked against --council",
        "DUMMY Council Client Identifier" => "person identifier council:CODE:dummy-client",
        "Council Client Identifier" => "person identifier council:CODE:client",
        "Client NHS Number" => "person identifier nhs-number",
        "Council Safeguarding Referral Identifier" => "safeguarding_concern identifier council:CODE:referral",
        "CQC Safeguarding Referral Identifier" => "safeguarding_concern identifier cqc-safeguarding-referral",
        "CQC Provider Identifier" => "organisation identifier cqc-provider",
        "CQC Location Identifier" => "care_setting identifier cqc-location",
        "Client Postcode" => "address postcode (person resides_at)",
        "Client Age at Start of Referral" => "safeguarding_concern client_age_band",
        _ => return None,
    };
    Some(stored.into())
}

/// The coded columns and the attributes they are stored in, for `mapping suggest` to name
/// the column whose value map would map a value held in the store.
const CODED: [(&str, &str, &str); 14] = [
    ("Client Gender", "person", "gender"),
    ("Client Ethnicity", "person", "ethnicity"),
    ("Known to Council", "safeguarding_concern", "known_to_council"),
    ("Consent to Investigation", "safeguarding_concern", "consent_to_investigation"),
    ("Repeat Referral", "safeguarding_concern", "repeat_referral"),
    ("Lacking Capacity", "safeguarding_concern", "lacking_capacity"),
    ("Advocate Support", "safeguarding_concern", "advocate_support"),
    ("Desired Outcome Expressed", "safeguarding_concern", "desired_outcome_expressed"),
    ("Primary Client Group", "safeguarding_concern", "primary_client_group"),
    ("Conclusion", "safeguarding_concern", "conclusion"),
    ("Serious Case Review", "safeguarding_concern", "serious_case_review"),
    ("Type of Risk", "allegation", "type_of_risk"),
    ("Source of Risk", "allegation", "source_of_risk"),
    ("Location of Risk", "allegation", "location_of_risk"),
];

/// The column of the data set stored in `attribute` of `entity_type`.
pub fn column_for_attribute(entity_type: &str, attribute: &str) -> Option<&'static str> {
    CODED.iter().find(|(_, t, a)| *t == entity_type && *a == attribute).map(|(c, _, _)| *c)
}

/// A column the file must have (or the profile must default), with an alternative.
const REQUIRED: [&[&str]; 3] = [
    &["Council Client Identifier", "DUMMY Council Client Identifier"],
    &["Date Referral Initiated"],
    &["Type of Risk"],
];

/// Reads rows of one file. Remembers, across rows, which client each referral belongs to
/// and how many allegations each has so far.
#[derive(Debug)]
pub struct Reader<'a> {
    profile: &'a Profile,
    schema: &'a SchemaRegistry,
    council: String,
    today: NaiveDate,
    /// Profile column → (index in the record, the submitter's name for it).
    index: BTreeMap<&'static str, (usize, String)>,
    missing: Vec<String>,
    /// Referrals seen so far in the file, by a digest of their identifier: the allegation
    /// ordinals must survive the whole file, and a large file has a million referrals.
    referrals: HashMap<u128, ReferralSeen>,
}

/// What the reader keeps of a referral seen earlier in the file: about 40 bytes.
#[derive(Debug, Clone, Copy)]
struct ReferralSeen {
    /// A digest of the client it belongs to.
    client: u64,
    first_row: u64,
    allegations: u64,
}

/// A 128-bit digest of `text`: collisions between a file's referrals are out of reach.
fn digest(text: &str) -> u128 {
    let hash = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(bytes)
}

/// A value of a row: the submitter's column name (for the report) and the trimmed text.
#[derive(Debug, Clone)]
struct Cell {
    column: String,
    value: String,
}

impl<'a> Reader<'a> {
    /// Prepares to read a file whose header is `header`. The schema must have what the
    /// data set is mapped to.
    pub fn new(
        profile: &'a Profile,
        schema: &'a SchemaRegistry,
        council: &str,
        header: &[String],
        today: NaiveDate,
    ) -> Result<Self> {
        for ty in ["person", "safeguarding_concern", "allegation", "organisation", "care_setting", "address"] {
            schema.type_def(ty).map_err(|_| IngestError::Schema(format!("type {ty:?}")))?;
        }
        let known = known_columns();
        let mut index = BTreeMap::new();
        for (idx, name) in header.iter().enumerate() {
            // `date_referral_initiated` (an XML element, a database export) names the
            // same column as `Date Referral Initiated`.
            let column =
                profile.column_for(name, &known).or_else(|| profile.column_for(&name.replace('_', " "), &known));
            if let Some(column) = column {
                index.entry(column).or_insert((idx, name.clone()));
            }
        }
        let missing = REQUIRED
            .iter()
            .filter(|alts| alts.iter().all(|c| !index.contains_key(c) && profile.default_for(c).is_none()))
            .map(|alts| alts.join(" or "))
            .collect();
        Ok(Reader { profile, schema, council: council.to_owned(), today, index, missing, referrals: HashMap::new() })
    }

    /// Required columns the header lacks: each row is rejected naming them.
    pub fn missing_columns(&self) -> &[String] {
        &self.missing
    }

    /// The profile column a header position is read as.
    pub fn read_as(&self, position: usize) -> Option<&'static str> {
        self.index.iter().find(|(_, (idx, _))| *idx == position).map(|(col, _)| *col)
    }

    fn cell(&self, fields: &[String], column: &str) -> Option<Cell> {
        let found = self.index.get(column).and_then(|(idx, name)| {
            let value = fields.get(*idx)?.trim();
            (!value.is_empty()).then(|| Cell { column: name.clone(), value: value.to_owned() })
        });
        found.or_else(|| {
            self.profile
                .default_for(column)
                .map(|value| Cell { column: format!("{column} (profile default)"), value: value.to_owned() })
        })
    }

    fn date(&self, fields: &[String], column: &str, report: &mut RowReport) -> Option<NaiveDate> {
        let cell = self.cell(fields, column)?;
        match self.profile.parse_date(&cell.value) {
            None => {
                let formats = self.profile.date_formats.join(", ");
                report.error(&cell.column, &cell.value, format!("not a date (formats read: YYYY-MM-DD, {formats})"));
                None
            }
            Some(date) => {
                if let Err(reason) = validate::not_future(date, self.today) {
                    report.error(&cell.column, &cell.value, reason);
                    return None;
                }
                Some(date)
            }
        }
    }

    /// A coded value for `attribute` of `entity_type`: mapped through the profile, checked
    /// against the attribute's list; outside a strict list rejects the row, outside a
    /// non-strict list is kept verbatim with a warning.
    fn code(
        &self,
        fields: &[String],
        column: &str,
        (entity_type, attribute): (&str, &str),
        report: &mut RowReport,
    ) -> Option<(String, bool)> {
        let cell = self.cell(fields, column)?;
        let def = self.schema.attribute(entity_type, attribute).ok()?;
        let list = def.code_list.as_deref().and_then(|l| self.schema.code_list(l))?;
        if def.value_type != ValueType::Code {
            return None;
        }
        let mapped = self.profile.map_cell(column, (&cell.column, &cell.value), list, def.strict, report)?;
        Some((mapped.code, mapped.known))
    }

    fn text(&self, fields: &[String], column: &str) -> Option<Value> {
        self.cell(fields, column).map(|c| Value::String(c.value))
    }

    fn identifier(&self, system: &str, cell: &Cell, report: &mut RowReport) -> Option<Identifier> {
        let checked = validate::identifier_value(system, &cell.value)
            .and_then(|id| self.schema.check_identifier(&id).map_err(|e| e.to_string()));
        match checked {
            Ok(id) => Some(id),
            Err(reason) => {
                report.error(&cell.column, &cell.value, reason);
                None
            }
        }
    }

    /// Reads one record. `None` when the row is rejected (the report says why).
    pub fn read(&mut self, row: u64, fields: &[String], report: &mut RowReport) -> Option<RowPlan> {
        if !self.missing.is_empty() {
            for missing in &self.missing {
                report.error(missing, "", "the file has no such column and the profile gives no default");
            }
            return None;
        }
        let council = self.council.clone();

        if let Some(la) = self.cell(fields, "Local Authority Identifier") {
            if normalise(&la.value) != normalise(&council) {
                report.error(&la.column, &la.value, format!("this file is ingested for council {council}"));
            }
        }

        // The client.
        let mut person_keys = Vec::new();
        let client_cell = self.cell(fields, "Council Client Identifier");
        let dummy_cell = self.cell(fields, "DUMMY Council Client Identifier");
        if let Some(cell) = &client_cell {
            person_keys.extend(self.identifier(&format!("council:{council}:client"), cell, report));
        }
        if let Some(cell) = &dummy_cell {
            person_keys.extend(self.identifier(&format!("council:{council}:dummy-client"), cell, report));
        }
        let client_key = client_cell.as_ref().or(dummy_cell.as_ref()).map(|c| c.value.clone());
        if client_key.is_none() {
            report.error(
                "Council Client Identifier",
                "",
                "a client identifier is required (Council Client Identifier or DUMMY Council Client Identifier)",
            );
        }
        if let Some(cell) = self.cell(fields, "Client NHS Number") {
            match validate::nhs_number(&cell.value) {
                Ok(nhs) => person_keys.push(Identifier::new("nhs-number", nhs)),
                Err(reason) => report.warn(&cell.column, &cell.value, format!("{reason}; not stored")),
            }
        }
        let birth = self.date(fields, "Client Date of Birth", report);

        // Dates.
        let initiated = self.date(fields, "Date Referral Initiated", report);
        if initiated.is_none() && self.cell(fields, "Date Referral Initiated").is_none() {
            report.error("Date Referral Initiated", "", "Date Referral Initiated is required");
        }
        let occurred = self.date(fields, "Date Incident Occurred", report);
        let concluded = self.date(fields, "Conclusion Date", report);
        for (column, date) in [
            ("Date Referral Initiated", initiated),
            ("Date Incident Occurred", occurred),
            ("Conclusion Date", concluded),
        ] {
            if let (Some(date), Some(cell)) = (date, self.cell(fields, column)) {
                if let Err(reason) = validate::not_before_birth(date, birth) {
                    report.error(&cell.column, &cell.value, reason);
                }
            }
        }
        if let (Some(occurred), Some(initiated), Some(cell)) =
            (occurred, initiated, self.cell(fields, "Date Incident Occurred"))
        {
            if occurred > initiated {
                report.warn(&cell.column, &cell.value, format!("after the Date Referral Initiated {initiated}"));
            }
        }
        if let (Some(concluded), Some(initiated), Some(cell)) =
            (concluded, initiated, self.cell(fields, "Conclusion Date"))
        {
            if concluded < initiated {
                report.warn(&cell.column, &cell.value, format!("before the Date Referral Initiated {initiated}"));
            }
        }

        // The client's attributes.
        let mut person_set = BTreeMap::new();
        if let Some((code, _)) = self.code(fields, "Client Gender", ("person", "gender"), report) {
            person_set.insert("gender".to_owned(), Value::String(code));
        }
        if let Some((code, _)) = self.code(fields, "Client Ethnicity", ("person", "ethnicity"), report) {
            person_set.insert("ethnicity".to_owned(), Value::String(code));
        }
        if let Some(birth) = birth {
            person_set.insert("birth_date".to_owned(), Value::String(birth.format("%Y-%m-%d").to_string()));
        }
        for column in NOT_STORED {
            // Checked so a submitter learns of a bad value; nothing stores it, so a bad one
            // only warns.
            if let (Some(cell), Some(list)) = (self.cell(fields, column), self.schema.code_list("yes_no_unknown")) {
                if !self.profile.map_code(column, &cell.value, list).known {
                    report.warn(&cell.column, &cell.value, "not yes, no or unknown (the column is not stored)");
                }
            }
        }
        let postcode = self.cell(fields, "Client Postcode").and_then(|cell| match validate::postcode(&cell.value) {
            Ok(p) => Some(p),
            Err(reason) => {
                report.warn(&cell.column, &cell.value, format!("{reason}; not stored"));
                None
            }
        });

        // The concern.
        let mut concern_set = BTreeMap::new();
        if let Some(initiated) = initiated {
            concern_set.insert("date_initiated".to_owned(), Value::String(initiated.format("%Y-%m-%d").to_string()));
        }
        let yes_no = [
            ("Known to Council", "known_to_council"),
            ("Consent to Investigation", "consent_to_investigation"),
            ("Repeat Referral", "repeat_referral"),
            ("Lacking Capacity", "lacking_capacity"),
            ("Advocate Support", "advocate_support"),
            ("Desired Outcome Expressed", "desired_outcome_expressed"),
            ("Primary Client Group", "primary_client_group"),
        ];
        for (column, attribute) in yes_no {
            if let Some((code, _)) = self.code(fields, column, ("safeguarding_concern", attribute), report) {
                concern_set.insert(attribute.to_owned(), Value::String(code));
            }
        }
        if let Some(value) = self.text(fields, "Risk Reported by") {
            concern_set.insert("risk_reported_by".to_owned(), value);
        }
        if let Some(cell) = self.cell(fields, "Client Age at Start of Referral") {
            match validate::age_band(&cell.value) {
                Ok(band) => {
                    concern_set.insert("client_age_band".to_owned(), Value::String(band.to_owned()));
                    if let (Some(birth), Some(initiated), Ok(age)) = (birth, initiated, cell.value.parse::<i64>()) {
                        let actual = validate::age_on(birth, initiated);
                        if actual != age {
                            report.warn(
                                &cell.column,
                                &cell.value,
                                format!("the date of birth gives {actual} at the Date Referral Initiated"),
                            );
                        }
                    }
                    if band == "under 18" {
                        report.warn(&cell.column, &cell.value, "under 18: adult safeguarding covers adults");
                    }
                }
                Err(reason) => {
                    report.warn(&cell.column, &cell.value, format!("{reason}; kept verbatim"));
                    concern_set.insert("client_age_band".to_owned(), Value::String(cell.value));
                }
            }
        } else if let (Some(birth), Some(initiated)) = (birth, initiated) {
            let band = validate::age_band(&validate::age_on(birth, initiated).to_string()).ok();
            if let Some(band) = band {
                concern_set.insert("client_age_band".to_owned(), Value::String(band.to_owned()));
            }
        }
        let mut outcome_set = BTreeMap::new();
        if let Some((code, _)) = self.code(fields, "Conclusion", ("safeguarding_concern", "conclusion"), report) {
            outcome_set.insert("conclusion".to_owned(), Value::String(code));
        }
        if let Some(concluded) = concluded {
            outcome_set.insert("conclusion_date".to_owned(), Value::String(concluded.format("%Y-%m-%d").to_string()));
        }
        if let Some((code, _)) =
            self.code(fields, "Serious Case Review", ("safeguarding_concern", "serious_case_review"), report)
        {
            outcome_set.insert("serious_case_review".to_owned(), Value::String(code));
        }
        for (column, attribute) in [
            ("Action and Result", "action_and_result"),
            ("Desired Outcome Achieved", "desired_outcome_achieved"),
            ("Client Involvement in Safeguarding Meetings", "involvement_in_meetings"),
            ("Client Involvement in Decision Making", "involvement_in_decisions"),
            ("Serious Case Review Reason", "serious_case_review_reason"),
        ] {
            if let Some(value) = self.text(fields, column) {
                outcome_set.insert(attribute.to_owned(), value);
            }
        }

        // The allegation.
        let mut allegation_set = BTreeMap::new();
        if let Some(occurred) = occurred {
            allegation_set.insert("date_occurred".to_owned(), Value::String(occurred.format("%Y-%m-%d").to_string()));
        }
        for (column, attribute) in [
            ("Type of Risk", "type_of_risk"),
            ("Source of Risk", "source_of_risk"),
            ("Location of Risk", "location_of_risk"),
        ] {
            if let Some((code, _)) = self.code(fields, column, ("allegation", attribute), report) {
                allegation_set.insert(attribute.to_owned(), Value::String(code));
            }
        }
        if !allegation_set.contains_key("type_of_risk") && self.cell(fields, "Type of Risk").is_none() {
            report.error("Type of Risk", "", "Type of Risk is required: each row is one allegation");
        }

        // Provider and location.
        let cqc = |column: &str, report: &mut RowReport| {
            self.cell(fields, column).and_then(|cell| match validate::cqc_id(&cell.value) {
                Ok(id) => Some(id),
                Err(reason) => {
                    report.warn(&cell.column, &cell.value, format!("{reason}; not stored or linked"));
                    None
                }
            })
        };
        let provider = cqc("CQC Provider Identifier", report);
        let location = cqc("CQC Location Identifier", report);
        let location_postcode =
            self.cell(fields, "CQC Location Postcode").and_then(|cell| match validate::postcode(&cell.value) {
                Ok(p) => Some(p),
                Err(reason) => {
                    report.warn(&cell.column, &cell.value, format!("{reason}; not stored"));
                    None
                }
            });

        // The referral's key and this allegation's position in it.
        let referral_cell = self.cell(fields, "Council Safeguarding Referral Identifier");
        let (Some(initiated), Some(client_key)) = (initiated, client_key) else { return None };
        let referral = match &referral_cell {
            Some(cell) => cell.value.clone(),
            None => format!("~{client_key}~{initiated}"),
        };
        let referral_column =
            referral_cell.as_ref().map_or("DUMMY Council Client Identifier".to_owned(), |c| c.column.clone());
        let referral_id = self.identifier(
            &format!("council:{council}:referral"),
            &Cell { column: referral_column.clone(), value: referral.clone() },
            report,
        );
        // Truncating the client's digest to 64 bits only risks missing this error, never
        // raising it wrongly.
        let client = digest(&client_key) as u64;
        let seen =
            self.referrals.entry(digest(&referral)).or_insert(ReferralSeen { client, first_row: row, allegations: 0 });
        if seen.client != client {
            report.error(
                &referral_column,
                &referral,
                format!("this referral belongs to another client (row {}), not {client_key}", seen.first_row),
            );
        }
        // Counted for rejected rows too, so that correcting a rejected row does not
        // renumber the allegations after it.
        seen.allegations += 1;
        let ordinal = seen.allegations;
        if report.is_rejected() {
            return None;
        }
        let referral_id = referral_id?;
        let allegation_id = self.identifier(
            &format!("council:{council}:event"),
            &Cell { column: referral_column, value: format!("{referral}/allegation/{ordinal}") },
            report,
        )?;

        let valid = Timestamp::from_date(initiated);
        let mut concern_keys = vec![referral_id];
        if let Some(cell) = self.cell(fields, "CQC Safeguarding Referral Identifier") {
            concern_keys.extend(self.identifier("cqc-safeguarding-referral", &cell, report));
        }
        let later_at = concluded.filter(|c| *c >= initiated).map_or(valid, Timestamp::from_date);
        let entity = |entity_type: &'static str, keys, set| EntityPlan {
            entity_type: entity_type.into(),
            keys,
            linked_match: None,
            valid,
            set,
            create_only: BTreeMap::new(),
            later: None,
        };
        let mut plan = RowPlan { row, entities: Vec::new(), links: Vec::new() };
        let link = |from, role: &'static str, to, single| LinkPlan { from, role: role.into(), to, valid, single };
        // Slots: 0 person, 1 concern, 2 allegation, then optional ones.
        plan.entities.push(entity("person", person_keys, person_set));
        let mut concern = entity("safeguarding_concern", concern_keys, concern_set);
        concern.later = Some((later_at, outcome_set));
        plan.entities.push(concern);
        plan.entities.push(entity("allegation", vec![allegation_id], allegation_set));
        plan.links.push(link(1, "subject", 0, true));
        plan.links.push(link(2, "part_of", 1, true));
        if let Some(postcode) = postcode {
            let mut address = entity("address", Vec::new(), BTreeMap::new());
            address.set.insert("postcode".to_owned(), Value::String(postcode.clone()));
            address.linked_match = Some(LinkedMatch {
                owner: 0,
                role: "resides_at",
                attribute: "postcode",
                value: Value::String(postcode),
            });
            plan.entities.push(address);
            // One home address, as HL7's PID-11 keeps it: a client who moved between rows
            // or submissions moves, from the row's date, rather than living at both.
            plan.links.push(link(0, "resides_at", plan.entities.len() - 1, true));
        }
        let provider_slot = provider.map(|id| {
            let mut org = entity("organisation", vec![Identifier::new("cqc-provider", id.clone())], BTreeMap::new());
            match self.text(fields, "CQC Provider Name") {
                Some(name) => _ = org.set.insert("name".to_owned(), name),
                // `name` is required; a placeholder until a file or the CQC directory names it.
                None => _ = org.create_only.insert("name".to_owned(), Value::String(format!("CQC provider {id}"))),
            }
            org.create_only.insert("organisation_type".to_owned(), Value::String("care provider".into()));
            plan.entities.push(org);
            plan.entities.len() - 1
        });
        if let Some(slot) = provider_slot {
            plan.links.push(link(2, "provided_by", slot, true));
        }
        if let Some(id) = location {
            let mut setting =
                entity("care_setting", vec![Identifier::new("cqc-location", id.clone())], BTreeMap::new());
            match self.text(fields, "CQC Location Name") {
                Some(name) => _ = setting.set.insert("name".to_owned(), name),
                None => _ = setting.create_only.insert("name".to_owned(), Value::String(format!("CQC location {id}"))),
            }
            if let Some(postcode) = location_postcode {
                setting.set.insert("postcode".to_owned(), Value::String(postcode));
            }
            plan.entities.push(setting);
            let slot = plan.entities.len() - 1;
            plan.links.push(link(2, "occurred_at", slot, true));
            if let Some(provider) = provider_slot {
                plan.links.push(link(slot, "operated_by", provider, true));
            }
        }
        Some(plan)
    }
}
