//! National codes the generator draws from, and the local values councils send instead.
//!
//! The attributes these feed are non-strict in the schema, so the store keeps local values
//! verbatim for mapping profiles to translate; that is the defect being exercised.

use crate::demo::places::Dialect;

/// A non-strict coded attribute of the safeguarding data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coded {
    TypeOfRisk,
    SourceOfRisk,
    LocationOfRisk,
    Conclusion,
    PrimaryClientGroup,
}

/// The value a council using `dialect` sends for the national `code`, or `None` when its
/// dialect has no local form of it (the national code is sent).
pub(crate) fn local_form(dialect: Dialect, attribute: Coded, code: &str) -> Option<&'static str> {
    let table: &[(&str, &str, &str, &str)] = match attribute {
        // (national, abbreviated, numeric, label)
        Coded::TypeOfRisk => &[
            ("PHYSICAL", "phys_ab", "01", "physical abuse"),
            ("SEXUAL", "sex_ab", "02", "sexual abuse"),
            ("PSYCHOLOGICAL", "psych_ab", "03", "emotional/psychological abuse"),
            ("FINANCIAL", "fin_ab", "04", "financial abuse"),
            ("NEGLECT", "neglect", "05", "neglect and acts of omission"),
            ("DISCRIMINATORY", "discrim", "06", "discriminatory abuse"),
            ("INSTITUTIONAL", "inst_ab", "07", "institutional abuse"),
        ],
        Coded::SourceOfRisk => &[
            ("SOCIAL_CARE", "paid_carer", "10", "Paid carer / care provider"),
            ("KNOWN", "known_oth", "20", "Other known to individual"),
            ("KNOWN_FAMILY", "fam", "21", "Relative/family"),
            ("KNOWN_PRIMARY_HEALTHCARE", "gp_dn", "22", "GP / district nurse"),
            ("UNKNOWN", "stranger", "30", "Stranger"),
        ],
        Coded::LocationOfRisk => &[
            ("OWN_HOME", "own_home", "1", "Own home"),
            ("CARE_HOME", "ch", "2", "Care home"),
            ("CARE_HOME_NURSING", "ch_nurs", "3", "Nursing home"),
            ("CARE_HOME_RESIDENTIAL", "ch_res", "4", "Residential home"),
            ("HOSPITAL", "hosp", "5", "Hospital"),
            ("HOSPITAL_ACUTE", "hosp_ac", "6", "Acute hospital"),
            ("HOSPITAL_MENTAL_HEALTH", "hosp_mh", "7", "Mental health hospital"),
            ("HOSPITAL_COMMUNITY", "hosp_comm", "8", "Community hospital"),
            ("COMMUNITY_SERVICE", "comm_svc", "9", "Day centre / community service"),
            ("COMMUNITY", "community", "10", "In the community"),
            ("PUBLIC_PLACE", "public", "11", "Public place"),
            ("OTHER", "oth", "12", "Other location"),
        ],
        Coded::Conclusion => &[
            ("SUBSTANTIATED", "sub", "1", "Substantiated"),
            ("PARTLY_SUBSTANTIATED", "part_sub", "2", "Partly substantiated"),
            ("NOT_SUBSTANTIATED", "not_sub", "3", "Not substantiated"),
            ("INCONCLUSIVE", "inconc", "4", "Inconclusive"),
            ("CEASED", "ceased_req", "5", "Ceased at individual's request"),
        ],
        Coded::PrimaryClientGroup => &[
            ("PHYS", "phys_dis", "1", "Physical disability/frailty"),
            ("PHYS_SENSORY", "sensory", "2", "Sensory impairment"),
            ("MH", "ment_h", "3", "Mental health"),
            ("MH_DEMENTIA", "dementia", "4", "Dementia"),
            ("LD", "learn_dis", "5", "Learning disability"),
            ("SUBSTANCE", "subst", "6", "Substance misuse"),
            ("OTHER_VULNERABLE", "oth_vuln", "7", "Other vulnerable adult"),
        ],
    };
    let row = table.iter().find(|row| row.0 == code)?;
    match dialect {
        Dialect::National => None,
        Dialect::Abbreviated => Some(row.1),
        Dialect::Numeric => Some(row.2),
        Dialect::Labels => Some(row.3),
    }
}

pub(crate) const PRIMARY_SUPPORT_REASONS: &[(&str, u32)] = &[
    ("PHYSICAL", 10),
    ("PHYSICAL_PERSONAL", 40),
    ("PHYSICAL_ACCESS", 8),
    ("SENSORY", 1),
    ("SENSORY_VISUAL", 2),
    ("SENSORY_HEARING", 1),
    ("SENSORY_DUAL", 1),
    ("MEMORY_COGNITION", 14),
    ("LEARNING_DISABILITY", 12),
    ("MENTAL_HEALTH", 8),
    ("SOCIAL", 1),
    ("SOCIAL_SUBSTANCE", 1),
    ("SOCIAL_ASYLUM", 1),
    ("SOCIAL_ISOLATION", 2),
];

pub(crate) const CONCLUSIONS: &[(&str, u32)] = &[
    ("SUBSTANTIATED", 30),
    ("PARTLY_SUBSTANTIATED", 15),
    ("NOT_SUBSTANTIATED", 28),
    ("INCONCLUSIVE", 20),
    ("CEASED", 7),
];

/// The primary client group a primary support reason corresponds to, so a person's
/// safeguarding record agrees with their care record.
pub(crate) fn client_group_for(support_reason: Option<&str>, age: i32) -> &'static str {
    match support_reason {
        Some("MEMORY_COGNITION") => "MH_DEMENTIA",
        Some("MENTAL_HEALTH") => "MH",
        Some("LEARNING_DISABILITY") => "LD",
        Some("SOCIAL_SUBSTANCE") => "SUBSTANCE",
        Some("SENSORY" | "SENSORY_VISUAL" | "SENSORY_HEARING" | "SENSORY_DUAL") => "PHYS_SENSORY",
        Some("SOCIAL" | "SOCIAL_ASYLUM" | "SOCIAL_ISOLATION") => "OTHER_VULNERABLE",
        Some(_) => "PHYS",
        None if age >= 75 => "PHYS",
        None => "OTHER_VULNERABLE",
    }
}
