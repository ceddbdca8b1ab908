//! The councils the demo submits for: codes, towns and postcode districts, hospitals, the
//! case-management system each runs and the habits of its data (how often NHS numbers are
//! missing, which local codes it sends, whether it re-keys paper in arrears).
//!
//! The codes and places are real English council codes and geography; which system a council
//! runs and its data habits are invented for the demo and say nothing about the real council.

use crate::demo::names::Heritage;

/// How a council writes the non-strict safeguarding codes. The proof of concept saw all of
/// these for Type of Risk "Physical": `physical`, `physical abuse`, `phys_ab` and `01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    National,
    Abbreviated,
    Numeric,
    Labels,
}

#[derive(Debug)]
pub(crate) struct Town {
    pub name: &'static str,
    /// Postcode area and the districts of it that cover the town.
    pub area: &'static str,
    pub districts: &'static [u8],
    pub localities: &'static [&'static str],
}

#[derive(Debug)]
pub(crate) struct HospitalDef {
    pub name: &'static str,
    pub ods: &'static str,
    pub postcode: &'static str,
}

#[derive(Debug)]
pub(crate) struct CouncilDef {
    pub code: &'static str,
    pub name: &'static str,
    pub system: &'static str,
    /// Relative share of the submissions.
    pub weight: u32,
    pub towns: &'static [Town],
    pub hospitals: &'static [HospitalDef],
    /// Client id prefix and digits; numbering starts at `client_base`.
    pub client_prefix: &'static str,
    pub client_digits: usize,
    pub client_base: u64,
    pub heritage: &'static [(Heritage, u32)],
    /// Share of clients and carers recorded without an NHS number.
    pub missing_nhs: f64,
    /// Share of clients keyed with a wrong NHS check digit.
    pub invalid_nhs: f64,
    pub dialect: Dialect,
    /// Share of safeguarding codes sent in the local dialect rather than national codes.
    pub local_code_rate: f64,
    /// Weight of paper re-keying batches (0: the council never records in arrears).
    pub late_rekey: u32,
    /// Whether the council's addresses carry a UPRN (those with a gazetteer-linked system).
    pub records_uprn: bool,
}

pub(crate) const COUNCILS: &[CouncilDef] = &[
    CouncilDef {
        code: "305",
        name: "London Borough of Bromley",
        system: "Liquidlogic LAS",
        weight: 2,
        towns: &[
            Town {
                name: "Bromley",
                area: "BR",
                districts: &[1, 2],
                localities: &["Bickley", "Shortlands", "Plaistow"],
            },
            Town { name: "Beckenham", area: "BR", districts: &[3], localities: &["Eden Park", "Elmers End"] },
            Town { name: "West Wickham", area: "BR", districts: &[4], localities: &[] },
            Town {
                name: "Orpington",
                area: "BR",
                districts: &[5, 6],
                localities: &["Petts Wood", "Green Street Green", "St Mary Cray"],
            },
            Town { name: "Chislehurst", area: "BR", districts: &[7], localities: &[] },
            Town { name: "London", area: "SE", districts: &[20], localities: &["Penge", "Anerley"] },
        ],
        hospitals: &[
            HospitalDef { name: "Princess Royal University Hospital", ods: "RJZ30", postcode: "BR6 8ND" },
            HospitalDef { name: "Orpington Hospital", ods: "RJZ33", postcode: "BR6 9JU" },
        ],
        client_prefix: "",
        client_digits: 7,
        client_base: 1_040_000,
        heritage: &[
            (Heritage::British, 78),
            (Heritage::Irish, 4),
            (Heritage::EasternEuropean, 3),
            (Heritage::BlackCaribbean, 5),
            (Heritage::BlackAfrican, 4),
            (Heritage::SouthAsian, 3),
            (Heritage::Chinese, 1),
            (Heritage::Mixed, 2),
        ],
        missing_nhs: 0.06,
        invalid_nhs: 0.004,
        dialect: Dialect::National,
        local_code_rate: 0.0,
        late_rekey: 0,
        records_uprn: true,
    },
    CouncilDef {
        code: "341",
        name: "Liverpool City Council",
        system: "Mosaic",
        weight: 3,
        towns: &[Town {
            name: "Liverpool",
            area: "L",
            districts: &[4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 17, 18, 19, 24, 25, 27],
            localities: &[
                "Anfield",
                "Walton",
                "Everton",
                "Toxteth",
                "Garston",
                "Allerton",
                "Wavertree",
                "Kirkdale",
                "Norris Green",
                "Speke",
                "Old Swan",
            ],
        }],
        hospitals: &[
            HospitalDef { name: "Royal Liverpool University Hospital", ods: "REM21", postcode: "L7 8YE" },
            HospitalDef { name: "Aintree University Hospital", ods: "REM20", postcode: "L9 7AL" },
            HospitalDef { name: "Broadgreen Hospital", ods: "REM22", postcode: "L14 3LB" },
        ],
        client_prefix: "",
        client_digits: 6,
        client_base: 310_000,
        heritage: &[
            (Heritage::British, 84),
            (Heritage::Irish, 6),
            (Heritage::BlackAfrican, 3),
            (Heritage::Chinese, 2),
            (Heritage::SouthAsian, 2),
            (Heritage::EasternEuropean, 1),
            (Heritage::Mixed, 2),
        ],
        missing_nhs: 0.22,
        invalid_nhs: 0.012,
        dialect: Dialect::Abbreviated,
        local_code_rate: 0.85,
        late_rekey: 0,
        records_uprn: false,
    },
    CouncilDef {
        code: "373",
        name: "Sheffield City Council",
        system: "Liquidlogic LAS",
        weight: 3,
        towns: &[Town {
            name: "Sheffield",
            area: "S",
            districts: &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 20, 35],
            localities: &[
                "Hillsborough",
                "Crookes",
                "Darnall",
                "Firth Park",
                "Walkley",
                "Heeley",
                "Gleadless",
                "Woodseats",
                "Ecclesfield",
                "Burngreave",
            ],
        }],
        hospitals: &[
            HospitalDef { name: "Northern General Hospital", ods: "RHQNG", postcode: "S5 7AU" },
            HospitalDef { name: "Royal Hallamshire Hospital", ods: "RHQHH", postcode: "S10 2JF" },
        ],
        client_prefix: "SCC",
        client_digits: 7,
        client_base: 200_000,
        heritage: &[
            (Heritage::British, 78),
            (Heritage::SouthAsian, 10),
            (Heritage::BlackAfrican, 4),
            (Heritage::BlackCaribbean, 3),
            (Heritage::EasternEuropean, 3),
            (Heritage::Chinese, 1),
            (Heritage::Mixed, 1),
        ],
        missing_nhs: 0.12,
        invalid_nhs: 0.008,
        dialect: Dialect::Numeric,
        local_code_rate: 0.95,
        late_rekey: 0,
        records_uprn: true,
    },
    CouncilDef {
        code: "801",
        name: "Bristol City Council",
        system: "Care Director",
        weight: 2,
        towns: &[Town {
            name: "Bristol",
            area: "BS",
            districts: &[2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14, 15, 16],
            localities: &[
                "Easton",
                "Bedminster",
                "Southmead",
                "Knowle",
                "Lawrence Hill",
                "Horfield",
                "Fishponds",
                "Hartcliffe",
                "St Pauls",
            ],
        }],
        hospitals: &[
            HospitalDef { name: "Bristol Royal Infirmary", ods: "RA701", postcode: "BS2 8HW" },
            HospitalDef { name: "Southmead Hospital", ods: "RVJ01", postcode: "BS10 5NB" },
        ],
        client_prefix: "BCC",
        client_digits: 6,
        client_base: 450_000,
        heritage: &[
            (Heritage::British, 72),
            (Heritage::BlackAfrican, 7),
            (Heritage::BlackCaribbean, 6),
            (Heritage::SouthAsian, 5),
            (Heritage::EasternEuropean, 5),
            (Heritage::Irish, 2),
            (Heritage::Chinese, 1),
            (Heritage::Mixed, 2),
        ],
        missing_nhs: 0.28,
        invalid_nhs: 0.015,
        dialect: Dialect::Labels,
        local_code_rate: 0.7,
        late_rekey: 0,
        records_uprn: false,
    },
    CouncilDef {
        code: "878",
        name: "Devon County Council",
        system: "CareFirst",
        weight: 3,
        towns: &[
            Town {
                name: "Exeter",
                area: "EX",
                districts: &[1, 2, 4],
                localities: &["Heavitree", "St Thomas", "Pinhoe"],
            },
            Town { name: "Exmouth", area: "EX", districts: &[8], localities: &[] },
            Town { name: "Tiverton", area: "EX", districts: &[16], localities: &[] },
            Town { name: "Okehampton", area: "EX", districts: &[20], localities: &[] },
            Town { name: "Barnstaple", area: "EX", districts: &[31, 32], localities: &["Pilton", "Newport"] },
            Town { name: "Bideford", area: "EX", districts: &[39], localities: &["Northam"] },
            Town { name: "Newton Abbot", area: "TQ", districts: &[12], localities: &["Kingsteignton"] },
            Town { name: "Teignmouth", area: "TQ", districts: &[14], localities: &[] },
        ],
        hospitals: &[
            HospitalDef { name: "Royal Devon and Exeter Hospital", ods: "RH802", postcode: "EX2 5DW" },
            HospitalDef { name: "North Devon District Hospital", ods: "RBZ12", postcode: "EX31 4JB" },
        ],
        client_prefix: "CF",
        client_digits: 8,
        client_base: 3_100_000,
        heritage: &[
            (Heritage::British, 94),
            (Heritage::EasternEuropean, 3),
            (Heritage::Irish, 2),
            (Heritage::Mixed, 1),
        ],
        missing_nhs: 0.35,
        invalid_nhs: 0.01,
        dialect: Dialect::Abbreviated,
        local_code_rate: 0.4,
        late_rekey: 5,
        records_uprn: false,
    },
    CouncilDef {
        code: "926",
        name: "Norfolk County Council",
        system: "Liquidlogic LAS",
        weight: 3,
        towns: &[
            Town {
                name: "Norwich",
                area: "NR",
                districts: &[1, 2, 3, 4, 5, 6, 7],
                localities: &["Mile Cross", "Lakenham", "Thorpe Hamlet", "Earlham"],
            },
            Town {
                name: "Great Yarmouth",
                area: "NR",
                districts: &[30, 31],
                localities: &["Gorleston-on-Sea", "Southtown"],
            },
            Town { name: "King's Lynn", area: "PE", districts: &[30], localities: &["Gaywood", "South Lynn"] },
            Town { name: "Thetford", area: "IP", districts: &[24], localities: &[] },
            Town { name: "Dereham", area: "NR", districts: &[19], localities: &[] },
            Town { name: "Cromer", area: "NR", districts: &[27], localities: &[] },
            Town { name: "Wymondham", area: "NR", districts: &[18], localities: &[] },
        ],
        hospitals: &[
            HospitalDef { name: "Norfolk and Norwich University Hospital", ods: "RM102", postcode: "NR4 7UY" },
            HospitalDef { name: "James Paget University Hospital", ods: "RGP75", postcode: "NR31 6LA" },
            HospitalDef { name: "Queen Elizabeth Hospital King's Lynn", ods: "RCX70", postcode: "PE30 4ET" },
        ],
        client_prefix: "",
        client_digits: 8,
        client_base: 10_200_000,
        heritage: &[
            (Heritage::British, 90),
            (Heritage::EasternEuropean, 6),
            (Heritage::Irish, 1),
            (Heritage::SouthAsian, 1),
            (Heritage::BlackAfrican, 1),
            (Heritage::Chinese, 1),
        ],
        missing_nhs: 0.15,
        invalid_nhs: 0.008,
        dialect: Dialect::Labels,
        local_code_rate: 0.2,
        late_rekey: 2,
        records_uprn: true,
    },
];
