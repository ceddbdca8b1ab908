//! Survivorship: how the national view of a person picks each attribute's value from the
//! source records identity resolution links, by rules the schema pack states. Every source
//! keeps its own record; the national view is computed from them, never stored over them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{EntityId, EntityState, Provenance};

/// How one attribute's national value is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurvivorshipRule {
    /// The value true latest in the world (valid time), then the one learned last.
    MostRecent,
    /// The value of the most trusted kind of source that has one (the pack's `trust`
    /// order), then the most recent among those.
    MostTrusted,
    /// The most recent value, with every distinct value listed beside it as it stands.
    All,
}

impl SurvivorshipRule {
    /// The rule's name in the pack and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SurvivorshipRule::MostRecent => "most_recent",
            SurvivorshipRule::MostTrusted => "most_trusted",
            SurvivorshipRule::All => "all",
        }
    }
}

/// What kind of source a record came from, for trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A health system's feed (a hospital's HL7 messages).
    Health,
    /// A council's submission.
    Council,
    /// A national writer (an administrator).
    National,
}

impl SourceKind {
    /// The kind's name in the pack's `trust` list and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Health => "health",
            SourceKind::Council => "council",
            SourceKind::National => "national",
        }
    }
}

/// The pack's survivorship rules (`[survivorship]` in `schema.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survivorship {
    /// The rule of every attribute `attributes` does not name.
    #[serde(default = "most_recent")]
    pub default: SurvivorshipRule,
    /// Source kinds, most trusted first; kinds not listed come after, in no order of trust.
    #[serde(default)]
    pub trust: Vec<SourceKind>,
    /// Per attribute name, its rule.
    #[serde(default)]
    pub attributes: BTreeMap<String, SurvivorshipRule>,
}

fn most_recent() -> SurvivorshipRule {
    SurvivorshipRule::MostRecent
}

impl Default for Survivorship {
    fn default() -> Self {
        Survivorship { default: SurvivorshipRule::MostRecent, trust: Vec::new(), attributes: BTreeMap::new() }
    }
}

impl Survivorship {
    pub fn rule(&self, attribute: &str) -> SurvivorshipRule {
        self.attributes.get(attribute).copied().unwrap_or(self.default)
    }

    fn trust_rank(&self, kind: SourceKind) -> usize {
        self.trust.iter().position(|k| *k == kind).unwrap_or(self.trust.len())
    }
}

/// A source record handed to [`survive`], with the kind of source it came from.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    pub state: &'a EntityState,
    pub kind: SourceKind,
}

/// One source's value of an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub value: Value,
    pub record: EntityId,
    pub kind: SourceKind,
    pub provenance: Provenance,
}

/// An attribute of the national view: the value that survives, where it came from, and the
/// other sources' values when they differ (or always, for [`SurvivorshipRule::All`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survived {
    pub rule: SurvivorshipRule,
    pub chosen: Candidate,
    /// Every source's value, the chosen one first; empty when all sources agree and the
    /// rule does not ask for them.
    pub candidates: Vec<Candidate>,
}

/// The national value of every attribute any of `records` holds, by `rules`.
pub fn survive(records: &[SourceRecord<'_>], rules: &Survivorship) -> BTreeMap<String, Survived> {
    let mut by_attribute: BTreeMap<&str, Vec<Candidate>> = BTreeMap::new();
    for record in records {
        for (name, attr) in &record.state.attributes {
            by_attribute.entry(name).or_default().push(Candidate {
                value: attr.value.clone(),
                record: record.state.id.clone(),
                kind: record.kind,
                provenance: attr.provenance.clone(),
            });
        }
    }
    let recency = |c: &Candidate| (c.provenance.valid_time, c.provenance.recorded_at, c.provenance.seq);
    by_attribute
        .into_iter()
        .filter_map(|(name, mut candidates)| {
            let rule = rules.rule(name);
            // Best first: trust (for most_trusted), then recency, then the record's id so the
            // order never depends on the order records were handed in.
            candidates.sort_by(|a, b| {
                let trust = match rule {
                    SurvivorshipRule::MostTrusted => rules.trust_rank(a.kind).cmp(&rules.trust_rank(b.kind)),
                    SurvivorshipRule::MostRecent | SurvivorshipRule::All => std::cmp::Ordering::Equal,
                };
                trust.then_with(|| recency(b).cmp(&recency(a))).then_with(|| a.record.cmp(&b.record))
            });
            let chosen = candidates.first()?.clone();
            let agree = candidates.iter().all(|c| c.value == chosen.value);
            if agree && rule != SurvivorshipRule::All {
                candidates.clear();
            }
            Some((name.to_owned(), Survived { rule, chosen, candidates }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttributeValue, Kind, Status, Timestamp};

    fn record(id: &str, council: &str, values: &[(&str, &str, &str)]) -> EntityState {
        let provenance = |at: &str| Provenance {
            seq: 1,
            recorded_at: Timestamp::parse("2025-01-01T00:00:00Z").unwrap(),
            valid_time: Timestamp::parse(at).unwrap(),
            council: Some(council.to_owned()),
            row: None,
        };
        EntityState {
            id: EntityId::new(id).unwrap(),
            kind: Kind::Person,
            entity_type: "person".into(),
            version: 1,
            status: Status::Active,
            attributes: values
                .iter()
                .map(|(name, value, at)| {
                    ((*name).to_owned(), AttributeValue { value: Value::from(*value), provenance: provenance(at) })
                })
                .collect(),
            identifiers: Vec::new(),
            links: Vec::new(),
            created: provenance("2024-01-01"),
            updated: provenance("2024-01-01"),
            last_valid_time: Timestamp::parse("2024-01-01").unwrap(),
        }
    }

    #[test]
    fn each_rule_picks_as_the_pack_says_and_shows_disagreement() {
        let council = record(
            "C",
            "305",
            &[
                ("family_name", "Smyth", "2024-06-01"),
                ("death_date", "2024-05-02", "2024-06-01"),
                ("ethnicity", "A", "2023-01-01"),
            ],
        );
        let hospital = record(
            "H",
            "RR8",
            &[
                ("family_name", "Smith", "2024-03-01"),
                ("death_date", "2024-05-01", "2024-05-01"),
                ("ethnicity", "A", "2022-01-01"),
            ],
        );
        let rules = Survivorship {
            default: SurvivorshipRule::MostRecent,
            trust: vec![SourceKind::Health, SourceKind::Council],
            attributes: [
                ("death_date".to_owned(), SurvivorshipRule::MostTrusted),
                ("ethnicity".to_owned(), SurvivorshipRule::All),
            ]
            .into_iter()
            .collect(),
        };
        let records = [
            SourceRecord { state: &council, kind: SourceKind::Council },
            SourceRecord { state: &hospital, kind: SourceKind::Health },
        ];
        let national = survive(&records, &rules);
        let name = &national["family_name"];
        assert_eq!((name.chosen.value.as_str(), name.chosen.record.as_str()), (Some("Smyth"), "C"), "the most recent");
        assert_eq!(name.candidates.len(), 2, "the sources disagree: both shown");
        let death = &national["death_date"];
        assert_eq!(death.chosen.value, "2024-05-01", "the hospital is trusted over the council, however recent");
        assert_eq!(death.chosen.kind, SourceKind::Health);
        let ethnicity = &national["ethnicity"];
        assert_eq!(ethnicity.candidates.len(), 2, "`all` lists every source even when they agree");
        // Handing the records in the other order changes nothing.
        let reversed = [records[1], records[0]];
        assert_eq!(survive(&reversed, &rules), national);
    }

    #[test]
    fn agreeing_sources_show_one_value() {
        let a = record("A", "305", &[("family_name", "Smith", "2024-01-01")]);
        let b = record("B", "306", &[("family_name", "Smith", "2024-02-01")]);
        let records = [
            SourceRecord { state: &a, kind: SourceKind::Council },
            SourceRecord { state: &b, kind: SourceKind::Council },
        ];
        let national = survive(&records, &Survivorship::default());
        assert_eq!(national["family_name"].chosen.record.as_str(), "B");
        assert!(national["family_name"].candidates.is_empty());
    }
}
