//! A seeded data set of the safeguarding case-level data set with the identifiable columns,
//! and writers for every format that can carry it (CSV, pipe-delimited, xlsx and the
//! safeguarding XML shape), so one data set can be ingested through each reader and the
//! stores compared.
//!
//! The data is shaped like a council's export, not like the store: clients with several
//! referrals, referrals with several allegations, local spellings the built-in profile maps
//! (`Physical`, `PHYSICAL`, `physical`; `F`, `Female`, `woman`; two-level cells), a few
//! values nothing maps (kept verbatim with a warning), dates in the profile's other formats,
//! free text with commas, quotes, pipes, newlines and non-ASCII letters. A spreadsheet
//! writes dates as date cells and ages and NHS numbers as numbers, as an export from Excel
//! would; the text formats write what the spreadsheet would show.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The columns, in the order the text formats write them.
pub const COLUMNS: [&str; 36] = [
    "Local Authority Identifier",
    "Council Client Identifier",
    "Client NHS Number",
    "Client Date of Birth",
    "Client Postcode",
    "Council Safeguarding Referral Identifier",
    "CQC Safeguarding Referral Identifier",
    "Known to Council",
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
    "CQC Provider Name",
    "CQC Location Identifier",
    "CQC Location Name",
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

/// The position of a column in [`COLUMNS`].
pub fn column(name: &str) -> usize {
    COLUMNS.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no column {name:?}"))
}

/// One cell: the text a text format writes, and what a spreadsheet holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    /// A date: the text formats write `text` (in one of the profile's date formats).
    Date {
        date: NaiveDate,
        text: String,
    },
    /// A number: the text formats write `text` (an NHS number may be spaced there).
    Number {
        value: f64,
        text: String,
    },
}

impl Cell {
    pub fn text(&self) -> &str {
        match self {
            Cell::Empty => "",
            Cell::Text(text) | Cell::Date { text, .. } | Cell::Number { text, .. } => text,
        }
    }
}

/// The data set: one row per allegation, and what it should become.
#[derive(Debug, Clone)]
pub struct DataSet {
    pub rows: Vec<Vec<Cell>>,
    pub clients: usize,
    pub referrals: usize,
    /// Distinct (CQC provider, CQC location) identifiers used.
    pub providers: usize,
    pub locations: usize,
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn pick<'a>(rng: &mut ChaCha8Rng, options: &[&'a str]) -> &'a str {
    options.choose(rng).copied().unwrap_or_default()
}

/// A valid NHS number (Modulus 11), as ten digits.
fn nhs_number(rng: &mut ChaCha8Rng) -> String {
    loop {
        let digits: Vec<u32> =
            (0..9).map(|i| if i == 0 { rng.gen_range(4..10) } else { rng.gen_range(0..10) }).collect();
        let sum: u32 = digits.iter().enumerate().map(|(i, d)| d * (10 - i as u32)).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => continue,
            c => c,
        };
        return digits.iter().chain([&check]).map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect();
    }
}

/// A date written in one of the formats the built-in profile reads.
fn date_cell(rng: &mut ChaCha8Rng, date: NaiveDate) -> Cell {
    let format = pick(rng, &["%Y-%m-%d", "%d/%m/%Y", "%d %b %Y", "%d-%m-%Y", "%d.%m.%Y"]);
    Cell::Date { date, text: date.format(format).to_string() }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn add_days(day: NaiveDate, days: i64) -> NaiveDate {
    day + chrono::Duration::days(days)
}

const PROVIDERS: [(&str, &str); 5] = [
    ("1-101665432", "Zoë's Care & Support, Ltd"),
    ("1-102345678", "Čerešňa Healthcare"),
    ("1-103456789", "Ōtautahi \"Homes\" Group"),
    ("1-104567890", "Brønshøj | Søren Partners"),
    ("1-105678901", "Ashfield Care"),
];

/// Care settings and the provider (an index into [`PROVIDERS`]) that runs each: one
/// provider a setting, since a setting whose provider changes between rows of one file is
/// a known defect of the commit step (see `tests/ingest_roundtrip.rs`).
const LOCATIONS: [(&str, &str, &str, usize); 6] = [
    ("1-118293744", "Maison Thérèse", "BR6 0JA", 0),
    ("1-118293755", "The Willows, Nursing Wing", "SE9 5LL", 1),
    ("1-118293766", "Haus Müller", "DA14 6NG", 2),
    ("1-118293777", "Łąka House", "BR1 3QT", 3),
    ("1-118293788", "Cedar Court\nAnnexe", "BR5 2SR", 4),
    ("1-118293799", "Orchard View", "SE18 4QT", 0),
];

const NOTES: [&str; 8] = [
    "Son moved out, carers increased, daily visits",
    "Staff retrained.\nProvider placed on enhanced monitoring, \"no new admissions\" for 8 weeks",
    "Referred to police | no further action",
    "Protection plan agreed; reviewed monthly",
    "Café staff reported bruising; GP informed",
    "Family meeting held\n\nAdvocate appointed",
    "Bank notified, \"power of attorney\" reviewed, funds returned",
    "Zoë (daughter) now lives in; situation stable",
];

/// Generates the data set for `seed`: about `clients` clients.
pub fn generate(seed: u64, clients: usize) -> DataSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    let mut referrals = 0;
    let mut providers = std::collections::BTreeSet::new();
    let mut locations = std::collections::BTreeSet::new();
    for client_idx in 0..clients {
        let client_id = format!("C-{}", 40_000 + client_idx * 7);
        let nhs = (rng.gen_range(0..10) < 8).then(|| nhs_number(&mut rng));
        let birth = date(rng.gen_range(1925..1975), rng.gen_range(1..13), rng.gen_range(1..29));
        let postcode = (rng.gen_range(0..10) < 8).then(|| {
            let p = pick(&mut rng, &["BR6 8ND", "BR6 0JA", "SE9 5LL", "DA14 6NG", "BR1 3QT", "SE18 4QT"]);
            if rng.gen_bool(0.3) {
                p.to_lowercase()
            } else {
                p.to_owned()
            }
        });
        let gender = pick(&mut rng, &["F", "M", "Female", "Male", "woman", "man", "2", "1", "Not Known"]);
        let ethnicity =
            pick(&mut rng, &["A", "White British", "White: White - British", "B", "H", "Z", "refused", "M"]);
        let n_referrals = *[1, 1, 1, 2, 2, 3].choose(&mut rng).unwrap_or(&1);
        let mut day = date(rng.gen_range(2012..2016), rng.gen_range(1..13), rng.gen_range(1..29));
        for referral_idx in 0..n_referrals {
            referrals += 1;
            day = add_days(day, rng.gen_range(30..400));
            let initiated = day;
            // Some files carry no referral identifier: the concern is keyed by client and date.
            let referral_id =
                (rng.gen_range(0..10) < 8).then(|| format!("SG-{}-{:04}", initiated.format("%Y"), referrals));
            let cqc_referral = rng.gen_bool(0.2).then(|| format!("SR{}", 440_000 + referrals));
            let age = initiated.years_since(birth).unwrap_or(0);
            let concluded = rng.gen_bool(0.7).then(|| add_days(initiated, rng.gen_range(10..120)));
            let conclusion = concluded.map(|_| {
                pick(
                    &mut rng,
                    &[
                        "SUBSTANTIATED",
                        "Substantiated",
                        "Partly",
                        "partially substantiated",
                        "Not substantiated",
                        "unsubstantiated",
                        "INCONCLUSIVE",
                        "ceased",
                    ],
                )
            });
            let yes_no =
                |rng: &mut ChaCha8Rng| pick(rng, &["Y", "N", "Yes", "No", "y", "n", "Unknown", "not known", ""]);
            let concern: Vec<(&str, Cell)> = vec![
                ("Known to Council", text(yes_no(&mut rng))),
                ("Consent to Investigation", text(yes_no(&mut rng))),
                ("Repeat Referral", text(if referral_idx > 0 { "Y" } else { "N" })),
                ("Lacking Capacity", text(yes_no(&mut rng))),
                ("Advocate Support", text(yes_no(&mut rng))),
                ("Desired Outcome Expressed", text(yes_no(&mut rng))),
                (
                    "Primary Client Group",
                    text(pick(
                        &mut rng,
                        &[
                            "PHYS",
                            "MH_DEMENTIA",
                            "Learning Disability",
                            "LD",
                            "Mental Health (including Dementia)",
                            "Substance Misuse",
                        ],
                    )),
                ),
                (
                    "Risk Reported by",
                    text(pick(
                        &mut rng,
                        &["Health staff", "Self", "Família", "Care provider", "Neighbour, friend", ""],
                    )),
                ),
                ("Action and Result", text(if rng.gen_bool(0.6) { pick(&mut rng, &NOTES) } else { "" })),
                ("Conclusion", text(conclusion.unwrap_or_default())),
                (
                    "Desired Outcome Achieved",
                    text(pick(&mut rng, &["Fully achieved", "Partly achieved", "Not achieved", ""])),
                ),
                ("Client Involvement in Safeguarding Meetings", text(pick(&mut rng, &["Attended", "Représenté", ""]))),
                ("Client Involvement in Decision Making", text(pick(&mut rng, &["Yes, fully", ""]))),
                ("Serious Case Review", text(pick(&mut rng, &["N", "N", "N", "Y", ""]))),
            ];
            let scr_reason = if concern.iter().any(|(c, v)| *c == "Serious Case Review" && v.text() == "Y") {
                "Multi-agency failings, \"lessons learned\" report"
            } else {
                ""
            };
            let n_allegations = *[1, 1, 2, 2, 3, 4].choose(&mut rng).unwrap_or(&1);
            // Written once per referral, the way an export repeats it on each allegation.
            let age_cell = Cell::Number { value: f64::from(age), text: age.to_string() };
            let nhs_cell = nhs.as_ref().map_or(Cell::Empty, |n| {
                let spaced = rng.gen_bool(0.5);
                let text = if spaced { format!("{} {} {}", &n[..3], &n[3..6], &n[6..]) } else { n.clone() };
                Cell::Number { value: n.parse().unwrap(), text }
            });
            let birth_cell = date_cell(&mut rng, birth);
            let initiated_cell = date_cell(&mut rng, initiated);
            let concluded_cell = concluded.map_or(Cell::Empty, |c| date_cell(&mut rng, c));
            for _ in 0..n_allegations {
                let mut row = vec![Cell::Empty; COLUMNS.len()];
                let mut set = |name: &str, cell: Cell| row[column(name)] = cell;
                set("Local Authority Identifier", Cell::Number { value: 305.0, text: "305".into() });
                set("Council Client Identifier", text(client_id.clone()));
                set("Client NHS Number", nhs_cell.clone());
                set("Client Date of Birth", birth_cell.clone());
                set("Client Postcode", postcode.clone().map_or(Cell::Empty, text));
                set("Council Safeguarding Referral Identifier", referral_id.clone().map_or(Cell::Empty, text));
                set("CQC Safeguarding Referral Identifier", cqc_referral.clone().map_or(Cell::Empty, text));
                set("Client Gender", text(gender));
                set("Client Age at Start of Referral", age_cell.clone());
                set("Client Ethnicity", text(ethnicity));
                set("Date Referral Initiated", initiated_cell.clone());
                for (name, cell) in &concern {
                    set(name, cell.clone());
                }
                set("Conclusion Date", concluded_cell.clone());
                set("Serious Case Review Reason", text(scr_reason));
                let occurred = add_days(initiated, -rng.gen_range(0..30));
                set("Date Incident Occurred", date_cell(&mut rng, occurred));
                let risk = pick(
                    &mut rng,
                    &[
                        "Physical",
                        "PHYSICAL",
                        "physical",
                        "Sexual",
                        "Psychological/Emotional",
                        "psychological",
                        "Financial and Material",
                        "FINANCIAL",
                        "Neglect",
                        "neglect and acts of omission",
                        "Discriminatory",
                        "Institutional",
                        "  Physical  ",
                        "phys_ab",
                    ],
                );
                set("Type of Risk", text(risk));
                let source = pick(
                    &mut rng,
                    &[
                        "KNOWN_FAMILY",
                        "Family member",
                        "relative",
                        "Other - known to individual: Relative / family / carer",
                        "Social Care Support or Service - paid contracted or commissioned",
                        "care worker",
                        "stranger",
                        "GP",
                        "Other - known to individual > Primary Healthcare",
                        "Nachbar",
                    ],
                );
                set("Source of Risk", text(source));
                let in_care = rng.gen_bool(0.5);
                let location = if in_care {
                    pick(
                        &mut rng,
                        &[
                            "CARE_HOME_NURSING",
                            "Nursing home",
                            "Care Home: Care Home - Residential",
                            "residential home",
                            "Hospital > Hospital - Acute",
                        ],
                    )
                } else {
                    pick(&mut rng, &["OWN_HOME", "Own Home", "own home", "public", "In a Community Service", "Other"])
                };
                set("Location of Risk", text(location));
                if in_care {
                    let (location_id, location_name, location_postcode, runs) = *LOCATIONS.choose(&mut rng).unwrap();
                    let (provider, provider_name) = PROVIDERS[runs];
                    providers.insert(provider);
                    locations.insert(location_id);
                    set("CQC Provider Identifier", text(provider));
                    set("CQC Provider Name", text(provider_name));
                    set("CQC Location Identifier", text(location_id));
                    set("CQC Location Name", text(location_name));
                    set("CQC Location Postcode", text(location_postcode));
                }
                rows.push(row);
            }
        }
    }
    DataSet { rows, clients, referrals, providers: providers.len(), locations: locations.len() }
}

/// One delimited field, quoted when it holds the delimiter, a quote or a line break.
fn field(value: &str, delimiter: char) -> String {
    if value.contains([delimiter, '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// The data set as delimited text with a header (`,` for CSV, `|` for pipe-delimited).
pub fn delimited(rows: &[Vec<Cell>], delimiter: char) -> String {
    let mut out = String::new();
    let sep = delimiter.to_string();
    out.push_str(&COLUMNS.iter().map(|c| field(c, delimiter)).collect::<Vec<_>>().join(&sep));
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&row.iter().map(|c| field(c.text(), delimiter)).collect::<Vec<_>>().join(&sep));
        out.push_str("\r\n");
    }
    out
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The data set in the safeguarding XML shape: one `<allegation>` a row, a column's element
/// named by its name in lower case with `_` for spaces, blank columns left out, and the
/// columns of each allegation in a shuffled order (the shape allows any order).
pub fn xml(rows: &[Vec<Cell>], seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<safeguarding>\n");
    for row in rows {
        out.push_str("  <allegation>\n");
        let mut order: Vec<usize> = (0..COLUMNS.len()).collect();
        order.shuffle(&mut rng);
        for idx in order {
            let value = row[idx].text();
            if value.is_empty() {
                continue;
            }
            let element = COLUMNS[idx].to_lowercase().replace(' ', "_");
            out.push_str(&format!("    <{element}>{}</{element}>\n", escape_xml(value)));
        }
        out.push_str("  </allegation>\n");
    }
    out.push_str("</safeguarding>\n");
    out
}

/// The data set as an xlsx workbook, on one sheet: dates as date cells, numbers as numbers.
pub fn xlsx(rows: &[Vec<Cell>]) -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Allegations").unwrap();
    for (col, name) in COLUMNS.iter().enumerate() {
        sheet.write_string(0, col as u16, *name).unwrap();
    }
    let date_format = Format::new().set_num_format("dd/mm/yyyy");
    for (row_idx, row) in rows.iter().enumerate() {
        let at = row_idx as u32 + 1;
        for (col, cell) in row.iter().enumerate() {
            let col = col as u16;
            match cell {
                Cell::Empty => {}
                Cell::Text(text) if text.is_empty() => {}
                Cell::Text(text) => _ = sheet.write_string(at, col, text).unwrap(),
                Cell::Number { value, .. } => _ = sheet.write_number(at, col, *value).unwrap(),
                Cell::Date { date, .. } => {
                    let day = ExcelDateTime::from_ymd(
                        u16::try_from(date.format("%Y").to_string().parse::<i32>().unwrap()).unwrap(),
                        date.format("%m").to_string().parse().unwrap(),
                        date.format("%d").to_string().parse().unwrap(),
                    )
                    .unwrap();
                    _ = sheet.write_datetime_with_format(at, col, &day, &date_format).unwrap();
                }
            }
        }
    }
    book.save_to_buffer().unwrap()
}
