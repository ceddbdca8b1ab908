//! Realistic sample messages (made-up people; NHS numbers from the 999 test range that pass
//! Modulus 11). Segments end with `\r` as on the wire.

pub const A01: &str = concat!(
    r"MSH|^~\&|PAS|RXH|POLE|305|20240715093000||ADT^A01^ADT_A01|MSG00001|P|2.4",
    "\r",
    r"EVN|A01|20240715093000|||JSMITH^Smith^Jane|20240715091500",
    "\r",
    r"PID|1||9990000018^^^NHS^NH~K123456^^^RXH^MR||Smith^Margaret^Anne^^Mrs^^L~Jones^Margaret^^^^^M||19400312|F|||12 Acacia Avenue^Flat 2^Leeds^West Yorkshire^ls1  4ab^GBR^H||0113 496 0000|||||||||||||||||N",
    "\r",
    r"NK1|1|Smith^John|SPO^Spouse|12 Acacia Avenue^^Leeds^^LS1 4AB",
    "\r",
    r"PV1|1|I|AMU^Bay 3^Bed 12^RXH^^^^^Acute Medical Unit|21|||C1234567^Patel^Anita^^^Dr|||MED|||||||||V0001^^^RXH^VN|||||||||||||||||||||||||20240715090000",
    "\r",
    r"ZPD|local extension|kept\T\as is",
    "\r",
);

pub const A02: &str = concat!(
    r"MSH|^~\&|PAS|RXH|POLE|305|20240716110000||ADT^A02^ADT_A02|MSG00002|P|2.4",
    "\r",
    r"EVN|A02|20240716110000|||JSMITH|20240716104500",
    "\r",
    r"PID|1||9990000018^^^NHS^NH~K123456^^^RXH^MR||Smith^Margaret^Anne^^Mrs^^L||19400312|F",
    "\r",
    r"PV1|1|I|WARD7^Side 2^Bed 1^RXH|21||AMU^Bay 3^Bed 12^RXH||||MED|||||||||V0001^^^RXH^VN|||||||||||||||||||||||||20240715090000",
    "\r",
);

pub const A03: &str = concat!(
    r"MSH|^~\&|PAS|RXH|POLE|305|20240722150000||ADT^A03^ADT_A03|MSG00003|P|2.5",
    "\r",
    r"EVN||20240722150000",
    "\r",
    r"PID|1||9990000018^^^NHS^NH~K123456^^^RXH^MR||Smith^Margaret^Anne^^Mrs^^L||19400312|F",
    "\r",
    r"PV1|1|I|WARD7^Side 2^Bed 1^RXH|21||||||MED|||||||||V0001^^^RXH^VN|||||||||||||||||01|HOME|||||||20240715090000|20240722143000",
    "\r",
);

/// v2.3: event only in EVN-1, Windows line endings, outpatient registration.
pub const A04: &str = concat!(
    r"MSH|^~\&|PAS|RXH|POLE|305|202402011015||ADT^A04|MSG00004|P|2.3",
    "\r\n",
    r"EVN|A04|202402011015",
    "\r\n",
    r"PID|1||9990000026^^^NHS^NH~K654321^^^RXH^MR||O'Brien^Patrick^^^Mr^^L||19351101|M|||3 Mill Lane^^Otley^^LS21 1AA^^H",
    "\r\n",
    r"PV1|1|O|OPD^^^RXH",
    "\r\n",
);

/// An update that clears the given name with HL7's explicit null and reports a death.
pub const A08: &str = concat!(
    r"MSH|^~\&|PAS|RXH|POLE|305|20240802080000||ADT^A08^ADT_A01|MSG00008|P|2.5.1",
    "\r",
    r"EVN|A08|20240802080000",
    "\r",
    r#"PID|1||9990000018^^^NHS^NH~K123456^^^RXH^MR||Smith^""^Anne^^Mrs^^L||19400312|F|||||||||||||||||||||20240801|Y"#,
    "\r",
    r"PV1|1|N",
    "\r",
);

/// Person-level (no visit) add, LF line endings, an invalid NHS number that must be dropped.
pub const A28: &str = concat!(
    r"MSH|^~\&|MPI|RR8|POLE|305|20240301120000||ADT^A28^ADT_A05|MSG00028|P|2.5",
    "\n",
    r"EVN|A28|20240301120000",
    "\n",
    r"PID|1||9990000019^^^NHS^NH~L777^^^RR8^PI||Ahmed^Yusuf||19521224|M|||Flat 9\T\10 Park Row^^Leeds^^LS1 5HD^^H",
    "\n",
);

pub const A31: &str = concat!(
    r"MSH|^~\&|MPI|RR8|POLE|305|20240305120000||ADT^A31^ADT_A05|MSG00031|P|2.5",
    "\r",
    r"EVN|A31|20240305120000",
    "\r",
    r"PID|1||9990000034^^^NHS^NH~L777^^^RR8^PI||Ahmed^Yusuf||19521224|M|||1 New Street^^Leeds^^LS2 7EY^^H",
    "\r",
);

/// Merge: K999 (a duplicate record) into the patient of PID.
pub const A40: &str = concat!(
    r"MSH|^~\&|PAS|RXH|POLE|305|20240310090000||ADT^A40^ADT_A39|MSG00040|P|2.4",
    "\r",
    r"EVN|A40|20240310090000",
    "\r",
    r"PID|1||9990000018^^^NHS^NH~K123456^^^RXH^MR||Smith^Margaret",
    "\r",
    r"MRG|K999^^^RXH^MR",
    "\r",
);

/// Two batches of a file, with honest counts.
pub fn file_batch() -> String {
    let mut out = String::from("FHS|^~\\&|PAS|RXH|POLE|305|20240801\r");
    out.push_str("BHS|^~\\&|PAS|RXH|POLE|305|20240801\r");
    out.push_str(A01);
    out.push_str(A02);
    out.push_str("BTS|2\r");
    out.push_str("BHS|^~\\&|PAS|RXH|POLE|305|20240801\r");
    out.push_str(A03);
    out.push_str("BTS|1\r");
    out.push_str("FTS|2\r");
    out
}
