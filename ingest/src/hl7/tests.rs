//! Tests across the module: samples of every event, every delimiter and terminator shape,
//! every bad-input shape, batches, ADT mapping (checked against the real schema and store),
//! and randomised never-panic and round-trip checks.

use pole_model::{default_registry, nhs_check_digit, normalise_nhs_number, EntityId, Identifier, Timestamp};
use pole_store::{OpRequest, Target, TransactionRequest};

use super::samples::*;
use super::*;

fn parse(text: &str) -> Message {
    Message::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

// ------------------------------------------------------------------ parser

#[test]
fn sample_nhs_numbers_pass_modulus_11() {
    for n in ["9990000018", "9990000026", "9990000034"] {
        let nine: Vec<u8> = n.bytes().take(9).map(|b| b - b'0').collect();
        let nine: [u8; 9] = nine.try_into().unwrap();
        assert_eq!(nhs_check_digit(&nine), Some(n.as_bytes()[9] - b'0'));
        assert!(normalise_nhs_number(n).is_ok());
    }
    assert!(normalise_nhs_number("9990000019").is_err());
}

#[test]
fn every_sample_parses_and_keeps_every_segment() {
    for sample in [A01, A02, A03, A04, A08, A28, A31, A40] {
        let m = parse(sample);
        assert_eq!(m.segments()[0].name(), "MSH");
    }
    let m = parse(A01);
    let names: Vec<&str> = m.segments().iter().map(Segment::name).collect();
    assert_eq!(names, ["MSH", "EVN", "PID", "NK1", "PV1", "ZPD"]);
    assert_eq!(m.get("ZPD-1"), Some("local extension"));
    assert_eq!(m.get("ZPD-2"), Some("kept&as is"));
}

#[test]
fn msh_fields_are_numbered_from_the_field_separator() {
    let m = parse(A01);
    assert_eq!(m.get("MSH-1"), Some("|"));
    assert_eq!(m.get("MSH-2"), Some("^~\\&"));
    assert_eq!(m.get("MSH-3"), Some("PAS"));
    assert_eq!(m.get("MSH-4"), Some("RXH"));
    assert_eq!(m.get("MSH-7"), Some("20240715093000"));
    assert_eq!(m.get("MSH-9"), Some("ADT"));
    assert_eq!(m.get("MSH-9.2"), Some("A01"));
    assert_eq!(m.get("MSH-9.3"), Some("ADT_A01"));
    assert_eq!(m.get("MSH-10"), Some("MSG00001"));
    assert_eq!(m.get("MSH-12"), Some("2.4"));
    let h = m.checked_header().unwrap();
    assert_eq!((h.message_code.as_str(), h.trigger_event.as_str(), h.version.as_str()), ("ADT", "A01", "2.4"));
}

#[test]
fn repetitions_components_and_subcomponents() {
    let m = parse(A01);
    assert_eq!(m.get("PID-3"), Some("9990000018"));
    assert_eq!(m.get("PID-3[1].5"), Some("NH"));
    assert_eq!(m.get("PID-3[2]"), Some("K123456"));
    assert_eq!(m.get("PID-3[2].4"), Some("RXH"));
    assert_eq!(m.get("PID-3[3]"), None);
    assert_eq!(m.get("PID-5.1"), Some("Smith"));
    assert_eq!(m.get("PID-5[2].1"), Some("Jones"));
    assert_eq!(m.segment("PID").unwrap().field(3).unwrap().repetitions().len(), 2);
    let m = parse("MSH|^~\\&|A|B&Trust&L|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||X^^^RXH&2.16.840&ISO^MR\r");
    assert_eq!(m.get("MSH-4.1.2"), Some("Trust"));
    assert_eq!(m.get("PID-3.4.1"), Some("RXH"));
    assert_eq!(m.get("PID-3.4.2"), Some("2.16.840"));
    assert_eq!(m.get("PID-3.4.3"), Some("ISO"));
    assert_eq!(m.get("PID-3.4.4"), None);
    assert_eq!(m.get("PID-99"), None);
    assert_eq!(m.get("not a path"), None);
}

#[test]
fn segment_occurrences_are_addressable() {
    let m = parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rOBX|1|TX|one\rOBX|2|TX|two\r");
    assert_eq!(m.get("OBX-3"), Some("one"));
    assert_eq!(m.get("OBX[2]-3"), Some("two"));
    assert_eq!(m.get("OBX[3]-3"), None);
    assert_eq!(m.segments_named("OBX").count(), 2);
}

#[test]
fn any_encoding_characters_are_honoured() {
    let text = "MSH#$*!@#PAS#RX!F!H#POLE#305#20240101##ADT$A01#C1#P#2.5\rPID#1##111$$$RXH$MR*222$$$RR8#X!S!Y@Z!T!W\r";
    let m = parse(text);
    assert_eq!(m.get("MSH-1"), Some("#"));
    assert_eq!(m.get("MSH-2"), Some("$*!@"));
    assert_eq!(m.get("MSH-4"), Some("RX#H"));
    assert_eq!(m.get("PID-3[2].4"), Some("RR8"));
    assert_eq!(m.get("PID-4.1.1"), Some("X$Y"));
    assert_eq!(m.get("PID-4.1.2"), Some("Z@W"));
    assert_eq!(m.delimiters().escape, Some('!'));
    // Standard characters mean nothing special under other delimiters.
    let m = parse("MSH#$*!@#A|B^C~D\\E&F#x#y#z#20240101##ADT$A01#1#P#2.5\r");
    assert_eq!(m.get("MSH-3"), Some("A|B^C~D\\E&F"));
}

#[test]
fn short_encoding_characters_are_read() {
    // Only component and repetition declared: no escapes, no subcomponents.
    let m = parse("MSH|^~|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||a&b\\c^x\r");
    assert_eq!(m.delimiters().escape, None);
    assert_eq!(m.get("PID-3.1"), Some("a&b\\c"));
    assert_eq!(m.get("PID-3.2"), Some("x"));
    let m = parse("MSH|^|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||a~b\r");
    assert_eq!(m.get("PID-3"), Some("a~b"));
}

#[test]
fn bad_encoding_characters_are_refused() {
    for (text, reason) in [
        ("MSH||A", "empty"),
        ("MSH|^^\\&|A", "twice"),
        ("MSH|^~~&|A", "twice"),
        ("MSH|^~\\&#+!|A", "five"),
        ("MSHA^~\\&A", "letter"),
    ] {
        match Message::parse(text) {
            Err(Hl7Error::BadEncodingCharacters { reason: r, .. }) => assert!(r.contains(reason), "{text}: {r}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(Message::parse("MSH"), Err(Hl7Error::TruncatedMsh { .. })));
}

#[test]
fn every_escape_through_the_parser() {
    let m = parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41C3A9\\g\r");
    assert_eq!(m.get("NTE-3"), Some("a|b^c&d~e\\fAég"));
    assert_eq!(m.segment("NTE").unwrap().field(3).unwrap().repetitions().len(), 1);
}

#[test]
fn broken_escapes_name_segment_field_and_text() {
    let text = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rEVN|A01\rPID|1||123\\X4\\^^^RXH\r";
    match Message::parse(text) {
        Err(Hl7Error::BadEscape { at, found, .. }) => {
            assert_eq!((at.segment_index, at.segment.as_str(), at.field), (3, "PID", 3));
            assert_eq!(found, "123\\X4\\");
        }
        other => panic!("{other:?}"),
    }
    let err = Message::parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||abc\\F\r").unwrap_err();
    assert!(err.to_string().contains("segment 2 (PID), field PID-3"), "{err}");
    assert!(err.to_string().contains("not closed"), "{err}");
}

#[test]
fn every_terminator_style_reads_the_same() {
    let segments = ["MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5", "PID|1||123", "ZZZ|x"];
    let expected = parse(&segments.join("\r"));
    for sep in ["\r", "\n", "\r\n"] {
        for tail in ["", sep, "\r\n\r\n", "\n\n  \n"] {
            let text = format!("{}{tail}", segments.join(sep));
            assert_eq!(parse(&text), expected, "{sep:?} {tail:?}");
        }
    }
    // Mixed terminators and a byte-order mark.
    assert_eq!(parse(&format!("\u{feff}{}\r\n{}\n{}\r", segments[0], segments[1], segments[2])), expected);
    assert_eq!(Message::parse_bytes(format!("\u{feff}{}", segments.join("\r")).as_bytes()).unwrap(), expected);
}

#[test]
fn latin1_bytes_are_read() {
    let mut bytes = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||1||Bront".to_vec();
    bytes.push(0xeb);
    let m = Message::parse_bytes(&bytes).unwrap();
    assert_eq!(m.get("PID-5"), Some("Brontë"));
}

#[test]
fn missing_msh_wrong_version_and_truncation_are_precise() {
    assert_eq!(Message::parse(""), Err(Hl7Error::Empty));
    assert_eq!(Message::parse("\r\n\r\n"), Err(Hl7Error::Empty));
    assert!(
        matches!(Message::parse("PID|1||123\rMSH|^~\\&|A"), Err(Hl7Error::MissingMsh { found }) if found == "PID|1||123")
    );
    for v in ["2.2", "2.6", "2.7", "3.0", "banana"] {
        let text = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|{v}\r");
        assert_eq!(Message::parse(&text), Err(Hl7Error::UnsupportedVersion { found: v.into() }), "{v}");
    }
    for v in SUPPORTED_VERSIONS {
        assert!(Message::parse(&format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|{v}\r")).is_ok());
    }
    // A version with components (VID) still reads its first.
    assert!(Message::parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.4^GBR\r").is_ok());
    let field = |e: Hl7Error| match e {
        Hl7Error::MissingField { at, .. } => at.field,
        other => panic!("{other:?}"),
    };
    assert_eq!(field(Message::parse("MSH|^~\\&|PAS").unwrap_err()), 9);
    assert_eq!(field(Message::parse("MSH|^~\\&|PAS|RXH|||20240101||ADT^A01").unwrap_err()), 10);
    assert_eq!(field(Message::parse("MSH|^~\\&|PAS|RXH|||20240101||ADT^A01|C1|P").unwrap_err()), 12);
    // Truncated mid-segment elsewhere is still structure, reported by the mapper.
    assert!(Message::parse_structure("MSH|^~\\&|PAS").is_ok());
}

#[test]
fn bad_segment_names_are_located() {
    for (line, index) in [("pid|1", 2), ("P|1", 2), ("PIDX|1", 2), ("1ID|1", 2)] {
        let text = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r{line}\r");
        match Message::parse(&text) {
            Err(Hl7Error::BadSegmentName { segment_index, .. }) => assert_eq!(segment_index, index, "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }
    // A segment of just its name is fine.
    assert_eq!(parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rZAB").segments()[1].fields().len(), 0);
}

#[test]
fn encode_round_trips_every_sample() {
    for sample in [A01, A02, A03, A04, A08, A28, A31, A40] {
        let m = parse(sample);
        assert_eq!(parse(&m.encode()), m);
    }
}

// ------------------------------------------------------------------ batches

#[test]
fn file_and_batch_envelopes_split_with_counts_checked() {
    let batch = split_batch(file_batch().as_bytes()).unwrap();
    assert_eq!(batch.issues, vec![]);
    assert_eq!(batch.messages.len(), 3);
    assert_eq!(batch.batch_headers.len(), 2);
    assert!(batch.file_header.is_some());
    let ids: Vec<String> = batch.messages.iter().map(|m| parse(&m.text).header().control_id).collect();
    assert_eq!(ids, ["MSG00001", "MSG00002", "MSG00003"]);
    assert_eq!(batch.messages.iter().map(|m| m.index).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(batch.messages[0].segment_index, 3);
}

#[test]
fn count_mismatches_are_reported_not_fatal() {
    let text = file_batch().replace("BTS|2", "BTS|5").replace("FTS|2", "FTS|x");
    let batch = split_batch_text(&text).unwrap();
    assert_eq!(batch.messages.len(), 3);
    assert_eq!(batch.issues.len(), 2);
    assert!(
        matches!(&batch.issues[0], BatchIssue::CountMismatch { segment: "BTS", declared, found: 2, .. } if declared == "5")
    );
    assert!(matches!(&batch.issues[1], BatchIssue::CountMismatch { segment: "FTS", found: 2, .. }));
    assert!(batch.issues[0].to_string().contains("BTS-1 declares \"5\""));
}

#[test]
fn unenveloped_files_stray_segments_and_missing_trailers() {
    let text = format!("NTE|stray\r\n{A01}\n{A28}{A04}");
    let batch = split_batch_text(&text).unwrap();
    assert_eq!(batch.messages.len(), 3);
    assert_eq!(batch.issues, vec![BatchIssue::StraySegment { segment_index: 1, found: "NTE|stray".into() }]);
    for m in &batch.messages {
        parse(&m.text);
    }
    let batch = split_batch_text(&format!("BHS|^~\\&\r{A01}")).unwrap();
    assert_eq!(batch.issues, vec![BatchIssue::MissingTrailer { segment: "BTS" }]);
    // An empty batch with honest counts is fine.
    assert_eq!(split_batch_text("FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1\r").unwrap().issues, vec![]);
}

#[test]
fn a_bad_message_does_not_spoil_the_others() {
    let text = format!("{A01}MSH|^~\\&|A|B|C|D|20240101||ADT^A01|9|P|2.9\r{A02}");
    let batch = split_batch_text(&text).unwrap();
    let results: Vec<bool> = batch.messages.iter().map(|m| Message::parse(&m.text).is_ok()).collect();
    assert_eq!(results, [true, false, true]);
}

#[test]
fn no_msh_in_a_file_is_an_error() {
    assert_eq!(split_batch(b""), Err(Hl7Error::Empty));
    assert!(matches!(split_batch(b"PID|1\rPV1|1"), Err(Hl7Error::MissingMsh { .. })));
}

// ------------------------------------------------------------------ ADT mapping

fn record(text: &str) -> AdtRecord {
    map_adt(&parse(text), None).unwrap_or_else(|e| panic!("{e}"))
}

fn set(v: &str) -> Option<AdtValue> {
    Some(AdtValue::Set(v.into()))
}

fn id(text: &str) -> EntityId {
    EntityId::new(text).unwrap()
}

#[test]
fn a01_describes_person_address_and_admission() {
    let r = record(A01);
    assert_eq!(r.event, AdtEvent::A01);
    assert_eq!(r.message_type, "ADT^A01");
    assert_eq!(r.idempotency_key, "hl7:PAS:RXH:MSG00001");
    assert_eq!(r.source.council.as_deref(), Some("RXH"));
    assert_eq!(r.source.system.as_deref(), Some("PAS"));
    assert_eq!(
        r.person.identifiers,
        [Identifier::new("nhs-number", "9990000018"), Identifier::new("hospital:RXH:mrn", "K123456")]
    );
    assert_eq!(r.person.family_name, set("Smith"));
    assert_eq!(r.person.given_name, set("Margaret"));
    assert_eq!(r.person.birth_date, set("1940-03-12"));
    assert_eq!(r.person.gender, set("2"));
    assert_eq!(r.person.death_date, Some(AdtValue::Clear));
    let address = r.person.address.as_ref().unwrap();
    assert_eq!(address.line1.as_deref(), Some("12 Acacia Avenue"));
    assert_eq!(address.line2.as_deref(), Some("Flat 2"));
    assert_eq!(address.town.as_deref(), Some("Leeds"));
    assert_eq!(address.postcode.as_deref(), Some("LS1 4AB"));
    assert_eq!(r.valid_time, Some(Timestamp::parse("2024-07-15T08:15:00Z").unwrap()));
    let e = r.encounter.as_ref().unwrap();
    assert_eq!(e.kind, EncounterKind::Admission);
    assert_eq!(e.at, "2024-07-15T09:00:00+01:00");
    assert_eq!((e.ward.as_deref(), e.room.as_deref(), e.bed.as_deref()), (Some("AMU"), Some("Bay 3"), Some("Bed 12")));
    assert_eq!(e.facility.as_ref().unwrap().ods, "RXH");
    assert_eq!(e.visit_number.as_deref(), Some("V0001"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(map_adt(&parse(A01), Some("305")).unwrap().source.council.as_deref(), Some("305"));
}

#[test]
fn a02_a03_a04_a08_a28_a31_describe_what_they_carry() {
    let r = record(A02);
    let e = r.encounter.unwrap();
    assert_eq!(
        (e.kind, e.at.as_str(), e.ward.as_deref()),
        (EncounterKind::Transfer, "2024-07-16T10:45:00+01:00", Some("WARD7"))
    );

    let r = record(A03);
    let e = r.encounter.unwrap();
    assert_eq!((e.kind, e.at.as_str()), (EncounterKind::Discharge, "2024-07-22T14:30:00+01:00"));
    assert_eq!((e.discharge_destination.as_deref(), e.outcome.as_deref()), (Some("HOME"), Some("01")));

    let r = record(A04);
    assert_eq!(r.event, AdtEvent::A04);
    assert!(r.encounter.is_none());
    assert_eq!(r.person.gender, set("1"));
    assert_eq!(r.valid_time, Some(Timestamp::parse("2024-02-01T10:15:00Z").unwrap()));

    let r = record(A08);
    assert_eq!(r.person.given_name, Some(AdtValue::Clear));
    assert_eq!(r.person.death_date, set("2024-08-01"));

    let r = record(A28);
    assert_eq!(r.person.identifiers, [Identifier::new("hospital:RR8:mrn", "L777")]);
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains("PID-3[1]: NHS number \"9990000019\" dropped"), "{:?}", r.warnings);
    assert_eq!(r.person.address.unwrap().line1.as_deref(), Some("Flat 9&10 Park Row"));

    let r = record(A31);
    assert_eq!(r.person.identifiers[0], Identifier::new("nhs-number", "9990000034"));
    assert_eq!(r.person.address.unwrap().postcode.as_deref(), Some("LS2 7EY"));

    let r = record(A40);
    assert_eq!(r.merge_from, [Identifier::new("hospital:RXH:mrn", "K999")]);
}

#[test]
fn mapping_errors_are_precise() {
    let msh = "MSH|^~\\&|PAS|RXH|POLE|305|20240101||";
    let err = |rest: &str| map_adt(&Message::parse_structure(&format!("{msh}{rest}")).unwrap(), None).unwrap_err();
    assert!(
        matches!(err("ORU^R01|1|P|2.5\rPID|1||1^^^X"), Hl7Error::UnsupportedMessageType { found } if found == "ORU^R01")
    );
    assert!(matches!(err("ADT^A05|1|P|2.5\rPID|1||1^^^X"), Hl7Error::UnsupportedMessageType { .. }));
    assert!(matches!(err("ADT^A01|1|P|2.5\rEVN|A01\r"), Hl7Error::MissingSegment { segment: "PID", .. }));
    assert!(matches!(err("ADT^A01|1|P|2.5\rPID|1||1^^^X\r"), Hl7Error::MissingSegment { segment: "PV1", .. }));
    assert!(matches!(err("ADT^A40|1|P|2.5\rPID|1||1^^^X\r"), Hl7Error::MissingSegment { segment: "MRG", .. }));
    assert!(matches!(err("ADT^A01|1|P|2.6\rPID|1||1^^^X\r"), Hl7Error::UnsupportedVersion { .. }));
    match err("ADT^A28|1|P|2.5\rPID|1||9990000019^^^NHS^NH\r") {
        Hl7Error::NoUsableIdentifier { at, dropped } => {
            assert_eq!((at.segment_index, at.field), (2, 3));
            assert_eq!(dropped.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    // Bad dates and sexes are warnings, not failures.
    let r = map_adt(&parse(&format!("{msh}ADT^A28|1|P|2.5\rPID|1||1^^^X||Doe||1950|Q\r")), None).unwrap();
    assert_eq!(r.person.birth_date, None);
    assert_eq!(r.person.gender, None);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
}

fn creates(request: &TransactionRequest) -> Vec<(String, String)> {
    request
        .changes
        .iter()
        .map(|c| {
            let what = match &c.op {
                OpRequest::Create { entity_type, .. } => format!("create {entity_type}"),
                OpRequest::Link { role, to, .. } => format!("link {role} {to}"),
                other => other.name().to_owned(),
            };
            (c.target.to_string(), what)
        })
        .collect()
}

/// Every value and identifier the request sets is valid under the real schema.
fn assert_schema_valid(request: &TransactionRequest) {
    let registry = default_registry().unwrap();
    for change in &request.changes {
        let ty = match &change.op {
            OpRequest::Create { entity_type, set, identifiers } => {
                for id in identifiers {
                    registry.check_identifier(id).unwrap_or_else(|e| panic!("{id}: {e}"));
                }
                for (k, v) in set {
                    registry.check_value(entity_type, k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
                }
                continue;
            }
            OpRequest::Update { set, add_identifiers, .. } => {
                for id in add_identifiers {
                    registry.check_identifier(id).unwrap_or_else(|e| panic!("{id}: {e}"));
                }
                (set, "person")
            }
            _ => continue,
        };
        for (k, v) in ty.0 {
            registry.check_value(ty.1, k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
    }
}

#[test]
fn a01_for_a_new_person_creates_everything() {
    let r = record(A01).at_row(4);
    let request = to_request(&r, |_| None, &[], &NewEntities::refs());
    assert_eq!(request.idempotency_key.as_deref(), Some("hl7:PAS:RXH:MSG00001"));
    assert_eq!(request.source.system.as_deref(), Some("PAS"));
    let shape: Vec<(String, String)> = creates(&request);
    let expected = [
        ("ref \"person\"", "create person"),
        ("ref \"address\"", "create address"),
        ("ref \"person\"", "link resides_at ref \"address\""),
        ("ref \"event\"", "create hospital_admission"),
        ("ref \"event\"", "link subject ref \"person\""),
        ("ref \"hospital\"", "create hospital"),
        ("ref \"event\"", "link occurred_at ref \"hospital\""),
    ];
    assert_eq!(shape, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(request.changes.iter().all(|c| c.row == Some(4)));
    let OpRequest::Create { set, identifiers, .. } = &request.changes[0].op else { panic!() };
    assert!(!set.contains_key("death_date"), "a clear is not a create's business");
    assert_eq!(identifiers.len(), 2);
    let event = &request.changes[3];
    assert_eq!(event.valid_time, Some(Timestamp::parse("2024-07-15T08:00:00Z").unwrap()));
    assert_schema_valid(&request);
}

#[test]
fn a01_for_a_known_person_updates_and_links_to_the_known_hospital() {
    let r = record(A01);
    let request = to_request(
        &r,
        |i| match i.system.as_str() {
            "nhs-number" => Some(id("P1")),
            "ods" => Some(id("H1")),
            _ => None,
        },
        &[],
        &NewEntities::refs(),
    );
    let shape = creates(&request);
    assert_eq!(shape[0], ("P1".into(), "update".into()));
    assert!(!shape.iter().any(|(_, w)| w == "create hospital" || w == "create address"));
    assert!(shape.contains(&("ref \"event\"".into(), "link subject P1".into())));
    assert!(shape.contains(&("ref \"event\"".into(), "link occurred_at H1".into())));
    let OpRequest::Update { add_identifiers, unset, .. } = &request.changes[0].op else { panic!() };
    assert_eq!(add_identifiers, &[Identifier::new("hospital:RXH:mrn", "K123456")]);
    assert_eq!(unset, &["death_date".to_owned()]);
    assert_schema_valid(&request);
}

#[test]
fn a08_unsets_cleared_attributes_and_writes_the_address() {
    let request = to_request(&record(A08), |i| (i.system == "nhs-number").then(|| id("P1")), &[], &NewEntities::refs());
    let OpRequest::Update { set, unset, .. } = &request.changes[0].op else { panic!() };
    assert_eq!(unset, &["given_name".to_owned()]);
    assert_eq!(set.get("death_date").and_then(|v| v.as_str()), Some("2024-08-01"));
    let request = to_request(&record(A31), |i| (i.system == "nhs-number").then(|| id("P1")), &[], &NewEntities::refs());
    assert!(creates(&request).contains(&("ref \"address\"".into(), "create address".into())));
    assert_schema_valid(&request);
}

#[test]
fn conflicting_identifiers_are_not_moved() {
    let r = record(A01);
    let found = resolve_person(&r.person.identifiers, &|i| match i.system.as_str() {
        "nhs-number" => Some(id("P1")),
        _ => Some(id("P2")),
    });
    assert_eq!(found.target, Some(id("P1")));
    assert_eq!(found.conflicts, [(Identifier::new("hospital:RXH:mrn", "K123456"), id("P2"))]);
    let request = to_request(
        &r,
        |i| match i.system.as_str() {
            "nhs-number" => Some(id("P1")),
            "ods" => None,
            _ => Some(id("P2")),
        },
        &[],
        &NewEntities::refs(),
    );
    let OpRequest::Update { add_identifiers, .. } = &request.changes[0].op else { panic!() };
    assert!(add_identifiers.is_empty());
}

#[test]
fn a40_merges_the_prior_person_into_the_survivor() {
    let r = record(A40);
    let request = to_request(
        &r,
        |i| match i.value.as_str() {
            "9990000018" => Some(id("P1")),
            "K999" => Some(id("P2")),
            _ => None,
        },
        &[],
        &NewEntities::refs(),
    );
    let merge = request.changes.iter().find(|c| matches!(c.op, OpRequest::Merge { .. })).unwrap();
    assert_eq!(merge.target, Target::Entity(id("P2")));
    assert_eq!(merge.op, OpRequest::Merge { into: Target::Entity(id("P1")) });
    // The prior record unknown here: its id moves to the survivor instead.
    let request = to_request(&r, |i| (i.value == "9990000018").then(|| id("P1")), &[], &NewEntities::refs());
    assert!(!request.changes.iter().any(|c| matches!(c.op, OpRequest::Merge { .. })));
    let OpRequest::Update { add_identifiers, .. } = &request.changes[0].op else { panic!() };
    assert!(add_identifiers.contains(&Identifier::new("hospital:RXH:mrn", "K999")));
    // Both ids on one person already: nothing to merge.
    let request = to_request(&r, |i| (i.system != "ods").then(|| id("P1")), &[], &NewEntities::refs());
    assert!(!request.changes.iter().any(|c| matches!(c.op, OpRequest::Merge { .. })));
}

// ------------------------------------------------------------------ randomised

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Everything the parser, splitter, mapper and ACK builder can be handed must not panic.
fn exercise(bytes: &[u8]) {
    let _ = super::decode_text(bytes);
    if let Ok(batch) = split_batch(bytes) {
        for m in &batch.messages {
            if let Ok(message) = Message::parse(&m.text) {
                if let Ok(r) = map_adt(&message, None) {
                    let _ = to_request(&r, |_| None, &[], &NewEntities::refs());
                }
                let _ = message.encode();
            }
        }
    }
    match Message::parse_bytes(bytes) {
        Ok(m) => {
            let _ = map_adt(&m, Some("305"));
        }
        Err(e) => {
            let _ = e.to_string();
            let _ =
                build_ack_for_bytes(bytes, AckCode::Reject, Some(&AckError::from(&e)), "A", Timestamp::from_micros(0));
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"MSHPIDEVNV1RG|^~\\&\r\nXF0123456789AZ#$*!@\"";
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| if rng.below(4) == 0 { rng.next() as u8 } else { alphabet[rng.below(alphabet.len())] })
            .collect();
        exercise(&bytes);
        let mut with_msh = b"MSH|^~\\&|".to_vec();
        with_msh.extend(&bytes);
        exercise(&with_msh);
    }
}

#[test]
fn mutated_samples_never_panic() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let samples = [A01, A02, A03, A04, A08, A28, A31, A40];
    for round in 0..4000 {
        let mut bytes = samples[round % samples.len()].as_bytes().to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 => bytes.truncate(rng.below(bytes.len() + 1)),
                1 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = b"|^~\\&\r\n\xff0"[rng.below(9)];
                }
                2 => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.insert(at, rng.next() as u8);
                }
                _ if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        exercise(&bytes);
    }
}

#[test]
fn random_values_round_trip_through_escaping() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let pieces =
        ["a", "Z", "9", " ", "|", "^", "~", "\\", "&", "#", "$", "*", "!", "@", "é", "漢", "\r", "\n", "\"", "F"];
    let delimiter_sets = [
        Delimiters::default(),
        Delimiters { field: '#', component: '$', repetition: Some('*'), escape: Some('!'), subcomponent: Some('@') },
    ];
    for round in 0..500 {
        let d = delimiter_sets[round % 2];
        let mut value = || -> String { (0..rng.below(12)).map(|_| pieces[rng.below(pieces.len())]).collect() };
        let fields: Vec<Field> = (0..1 + round % 5)
            .map(|_| {
                Field::from_repetitions(
                    (0..1 + round % 3)
                        .map(|_| {
                            Repetition::from_components(
                                (0..1 + round % 4)
                                    .map(|_| {
                                        Component::from_subcomponents((0..1 + round % 2).map(|_| value()).collect())
                                    })
                                    .collect(),
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let msh = Message::parse(&format!(
            "MSH{f}{}{f}A{f}B{f}C{f}D{f}20240101{f}{f}ADT{c}A01{f}{round}{f}P{f}2.5",
            d.encoding_characters(),
            f = d.field,
            c = d.component
        ))
        .unwrap();
        let built = Message::from_segments(d, vec![msh.segments()[0].clone(), Segment::new("ZRT", fields.clone())]);
        let text = built.encode();
        let parsed = Message::parse(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
        let got = parsed.segment("ZRT").unwrap().fields();
        // An empty trailing structure cannot be told from an absent one on the wire; compare leaves.
        let leaves = |fs: &[Field]| -> Vec<String> {
            fs.iter()
                .flat_map(|f| f.repetitions())
                .flat_map(|r| r.components())
                .flat_map(|c| c.subcomponents().iter().cloned())
                .collect()
        };
        assert_eq!(leaves(got), leaves(&fields), "{text:?}");
        assert_eq!(got.len(), fields.len());
    }
}

// ------------------------------------------------------------------ end to end, through a real store

#[test]
fn adt_messages_apply_to_a_real_store() {
    use pole_store::{BackendKind, ReadAt, Rejection, Store, StoreOptions};
    let dir = std::env::temp_dir().join(format!(
        "pole-hl7-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    let store = Store::open(&dir, StoreOptions { backend: BackendKind::Memory, ..StoreOptions::default() }).unwrap();
    let find = |i: &Identifier| store.find_by_identifier(i).ok().and_then(|ids| ids.into_iter().next());
    let commit = |text: &str, row: u64| {
        let r = map_adt(&parse(text), Some("305")).unwrap().at_row(row);
        store.commit(to_request(&r, find, &[], &NewEntities::refs())).unwrap()
    };
    let apply = |text: &str, row: u64| commit(text, row).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
    let first = apply(A01, 1);
    let person = first.refs["person"].clone();
    apply(A02, 2);
    apply(A03, 3);
    apply(A08, 4);
    // The same control id again changes nothing. The request differs now that the person
    // exists (an update, not a create), so the store answers that the key was used: the
    // caller acknowledges that as already applied.
    let head = store.stats().unwrap();
    match commit(A01, 1) {
        Err(Rejection::IdempotencyKeyReused { key, seq }) => {
            assert_eq!((key.as_str(), seq), ("hl7:PAS:RXH:MSG00001", first.seq))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.stats().unwrap(), head);
    let state = store.entity(&person, ReadAt::NOW).unwrap().unwrap();
    assert_eq!(state.attribute("family_name").and_then(|v| v.as_str()), Some("Smith"));
    assert_eq!(state.attribute("given_name"), None);
    assert_eq!(state.attribute("death_date").and_then(|v| v.as_str()), Some("2024-08-01"));
    let hospitals = store.find_by_identifier(&Identifier::new("ods", "RXH")).unwrap();
    assert_eq!(hospitals.len(), 1, "one hospital, found again by ODS code");
    // A40 merges a duplicate registered under another MRN.
    apply(&A28.replace("RR8", "RXH").replace("L777", "K999").replace("MSG00028", "M1"), 5);
    let duplicate = find(&Identifier::new("hospital:RXH:mrn", "K999")).unwrap();
    assert_ne!(duplicate, person);
    let merged = apply(A40, 6);
    // The A40's PID restores the given name the A08 cleared, then the duplicate merges.
    assert_eq!(merged.changes, 2);
    let state = store.entity(&duplicate, ReadAt::NOW).unwrap().unwrap();
    assert!(!state.is_active());
    store.close().unwrap();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn acks_escape_their_own_time_and_version() {
    // Found by the fuzz target: a sender that declares `+` its escape character and `.` a
    // separator must still get an ACK it can parse (MSH-7 has `+0000`, MSH-12 has dots).
    for encoding in ["^~+\\", ".~\\&", "^.\\&", "^~\\."] {
        let text = format!("MSH|{encoding}|PAS|RXH|||20240101||ADds^A31|C1|P|2.5\r");
        let original = Message::parse_structure(&text).unwrap();
        let error = AckError::from(&map_adt(&original, None).unwrap_err());
        let ack = build_ack(&original, AckCode::Error, Some(&error), "A1", Timestamp::from_micros(0));
        let parsed = Message::parse(&ack).unwrap_or_else(|e| panic!("{encoding}: {e}: {ack:?}"));
        assert_eq!(parsed.get("MSH-7"), Some("19700101000000+0000"), "{encoding}");
        assert_eq!(parsed.get("MSH-12"), Some("2.5"), "{encoding}");
        assert_eq!(parsed.get("MSA-2"), Some("C1"), "{encoding}");
        assert!(parsed.get("MSA-3").is_some_and(|t| t.contains(" is not ")), "{encoding}: {ack:?}");
    }
}

#[test]
fn a_home_address_is_single_valued() {
    let at = |text: &str| Timestamp::parse(text).ok();
    let home = |postcode: &str| AddressRecord {
        line1: Some("1 Road".into()),
        postcode: Some(postcode.into()),
        ..Default::default()
    };
    let current = |entity: &str, postcode: &str, since: &str| CurrentAddress {
        id: id(entity),
        address: home(postcode),
        since: at(since),
    };
    let old = current("A1", "LS1 4AB", "2024-01-01T00:00:00Z");
    let vt = at("2024-06-01T00:00:00Z");
    assert_eq!(address_decision(&home("LS1 4AB"), vt, std::slice::from_ref(&old)), AddressDecision::Keep);
    assert_eq!(
        address_decision(&home("LS1 5HD"), vt, std::slice::from_ref(&old)),
        AddressDecision::Move { unlink: vec![id("A1")], link_new: true }
    );
    assert_eq!(address_decision(&home("LS1 5HD"), vt, &[]), AddressDecision::Move { unlink: vec![], link_new: true });
    // Two current addresses (accumulated before this rule): the one the message names stays.
    let other = current("A2", "LS1 5HD", "2024-02-01T00:00:00Z");
    assert_eq!(
        address_decision(&home("LS1 5HD"), vt, &[old.clone(), other]),
        AddressDecision::Move { unlink: vec![id("A1")], link_new: false }
    );
    // A message older than the current address does not move the person back.
    assert_eq!(address_decision(&home("LS2 7EY"), at("2023-12-01T00:00:00Z"), &[old]), AddressDecision::Stale);

    // As a request: the old link ends at the message's valid time, the new one starts there.
    let r = record(A31);
    let known = [current("A1", "LS1 4AB", "2024-01-01T00:00:00Z")];
    let request = to_request(&r, |i| (i.system == "nhs-number").then(|| id("P1")), &known, &NewEntities::refs());
    let unlink = request.changes.iter().find(|c| matches!(c.op, OpRequest::Unlink { .. })).unwrap();
    assert_eq!(unlink.op, OpRequest::Unlink { role: "resides_at".into(), to: Target::Entity(id("A1")) });
    assert_eq!(unlink.valid_time, r.valid_time);
    assert!(creates(&request).contains(&("ref \"address\"".into(), "create address".into())));
    assert_schema_valid(&request);
}

#[test]
fn a_stream_splits_into_the_segments_the_text_does() {
    let text = "\u{feff}MSH|^~\\&|A\r\nPID|1\r\rEVN|x\n\n  \nZZ1|\u{e9}";
    let whole: Vec<String> =
        crate::hl7::segment_lines(&crate::hl7::decode_text(text.as_bytes())).map(str::to_owned).collect();
    // A reader that hands out three bytes at a time, so terminators fall across reads.
    let small = std::io::BufReader::with_capacity(3, text.as_bytes());
    let streamed: Vec<String> = SegmentReader::new(small, true).map(Result::unwrap).collect();
    assert_eq!(streamed, whole);
    assert_eq!(streamed[0], "MSH|^~\\&|A");
    // Latin-1: each byte one character, as `decode_text` reads it.
    let latin: Vec<String> = SegmentReader::new(&b"PID|Zo\xeb\r"[..], false).map(Result::unwrap).collect();
    assert_eq!(latin, ["PID|Zo\u{eb}"]);
}

#[test]
fn a_stream_without_terminators_is_refused_not_held() {
    let endless = std::io::Read::take(std::io::repeat(b'A'), (super::batch::MAX_SEGMENT_BYTES + 10) as u64);
    let mut reader = SegmentReader::new(std::io::BufReader::new(endless), true);
    let error = reader.next().unwrap().unwrap_err();
    assert!(error.to_string().contains("without a terminator"), "{error}");
    assert!(reader.next().is_none());
}

#[test]
fn the_splitter_fed_a_segment_at_a_time_agrees_with_the_whole_split() {
    let text = file_batch();
    let whole = split_batch_text(&text).unwrap();
    let mut splitter = Splitter::default();
    let mut messages: Vec<BatchMessage> =
        crate::hl7::segment_lines(&text).filter_map(|line| splitter.segment(line)).collect();
    let (last, envelope) = splitter.finish().unwrap();
    messages.extend(last);
    assert_eq!(messages, whole.messages);
    assert_eq!(envelope.issues, whole.issues);
    assert_eq!(envelope.batch_headers, whole.batch_headers);
}
