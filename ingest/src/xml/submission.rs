//! The POLE submission format (`packs/adult-social-care/xml/pole-submission.xsd`), read as
//! a stream into entities and links with the XSD's rules checked: required attributes and
//! elements, the `ref` pattern, `kind` values, dates and date-times. What the schema pack
//! says about types, attributes, identifiers and link roles is checked by
//! [`crate::submission`].
//!
//! ```xml
//! <submission id="batch-1">
//!   <entity ref="client" kind="person" type="person" valid-from="2013-07-12">
//!     <identifier system="council:305:client">C-40113</identifier>
//!     <attribute name="birth_date">1931-07-04</attribute>
//!   </entity>
//!   <entity id="01HZX3V4J1A9W8B7C6D5E4F3G2" ref="known" type="person"/>
//!   <link role="subject" from="concern" to="client" valid-from="2013-07-12"/>
//! </submission>
//! ```
//!
//! Every `<entity>` and `<link>` (and any other element in their place) is one row of the
//! report, numbered in document order, with the line of its start tag. A problem inside one
//! rejects that row with the element path and line; a document that is not well-formed is
//! rejected whole.

use pole_model::{EntityId, Kind, Timestamp};

use super::{Events, Node, SUBMISSION_ROOT};
use crate::report::RowReport;

/// An `<entity>`: a new or existing entity with what the submitter says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityElement {
    pub row: u64,
    /// The submitter-local name links use.
    pub local_ref: Option<String>,
    /// An existing entity's store id.
    pub id: Option<EntityId>,
    pub entity_type: String,
    pub kind: Option<Kind>,
    pub valid_from: Option<Timestamp>,
    /// `(path, system, value)`.
    pub identifiers: Vec<(String, String, String)>,
    /// `(path, name, text)`.
    pub attributes: Vec<(String, String, String)>,
}

/// A `<link>` between two entities of the submission, by their refs.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkElement {
    pub row: u64,
    pub role: String,
    pub from: String,
    pub to: String,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
}

/// One row of a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Entity(EntityElement),
    Link(LinkElement),
}

impl Element {
    pub fn row(&self) -> u64 {
        match self {
            Element::Entity(e) => e.row,
            Element::Link(l) => l.row,
        }
    }
}

/// A submission read: its rows (one report line each, rejected ones included) and the
/// elements of the rows not rejected so far.
#[derive(Debug, Default)]
pub struct Read {
    /// The submission's `id`, if given: the batch in provenance.
    pub id: Option<String>,
    pub rows: Vec<RowReport>,
    pub elements: Vec<Element>,
}

/// A submitter-local ref: `[A-Za-z0-9_.:-]{1,64}`.
pub fn ref_ok(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Reads a submission. `progress` is called with the bytes read so far. `Err` is a
/// file-level problem (not well-formed, a DOCTYPE, the wrong root) naming the line.
pub fn read(text: &str, progress: &mut dyn FnMut(u64)) -> Result<Read, String> {
    let mut events = Events::new(text);
    let mut read = Read::default();
    // The root.
    loop {
        match events.next_node()? {
            None => return Err("the document has no root element".into()),
            Some(Node::Text(_)) => {}
            Some(Node::Close) => return Err(format!("line {}: an end tag before the root element", events.line())),
            Some(Node::Open { name, attributes, line }) => {
                if name != SUBMISSION_ROOT {
                    return Err(format!("line {line}: the root element is <{name}>, not <{SUBMISSION_ROOT}>"));
                }
                for (key, value) in attributes {
                    match key.as_str() {
                        "id" => read.id = Some(value),
                        other => {
                            return Err(format!(
                                "line {line}: /{SUBMISSION_ROOT}: attribute {other:?} is not part of the shape"
                            ))
                        }
                    }
                }
                break;
            }
        }
    }
    // Its children, one row each.
    let mut entities = 0usize;
    let mut links = 0usize;
    loop {
        match events.next_node()? {
            None | Some(Node::Close) => break,
            Some(Node::Text(text)) => {
                if !text.trim().is_empty() {
                    let line = events.line();
                    return Err(format!("line {line}: /{SUBMISSION_ROOT}: text outside an <entity> or <link>"));
                }
            }
            Some(Node::Open { name, attributes, line }) => {
                progress(events.position());
                let row = read.rows.len() as u64 + 1;
                let mut report = RowReport::new(row, line);
                let element = match name.as_str() {
                    "entity" => {
                        entities += 1;
                        let path = format!("/{SUBMISSION_ROOT}/entity[{entities}]");
                        read_entity(&mut events, row, &path, attributes, &mut report)?.map(Element::Entity)
                    }
                    "link" => {
                        links += 1;
                        let path = format!("/{SUBMISSION_ROOT}/link[{links}]");
                        read_link(&mut events, row, &path, attributes, &mut report)?.map(Element::Link)
                    }
                    other => {
                        events.skip_element()?;
                        report.error(
                            &format!("/{SUBMISSION_ROOT}/{other}"),
                            "",
                            format!("line {line}: <{other}> is not part of a submission (expected <entity> or <link>)"),
                        );
                        None
                    }
                };
                if let Some(element) = element.filter(|_| !report.is_rejected()) {
                    read.elements.push(element);
                }
                read.rows.push(report);
            }
        }
    }
    // Whatever follows the root (comments, whitespace) is checked by the reader.
    while events.next_node()?.is_some() {}
    Ok(read)
}

/// A required XML attribute, or an error naming it.
fn required(
    attributes: &mut Vec<(String, String)>,
    key: &str,
    path: &str,
    line: u64,
    report: &mut RowReport,
) -> Option<String> {
    match take(attributes, key) {
        Some(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        Some(value) => {
            report.error(&format!("{path}/@{key}"), &value, format!("line {line}: must not be empty"));
            None
        }
        None => {
            report.error(&format!("{path}/@{key}"), "", format!("line {line}: the attribute {key} is required"));
            None
        }
    }
}

fn take(attributes: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let idx = attributes.iter().position(|(k, _)| k == key)?;
    Some(attributes.remove(idx).1)
}

/// An optional `xs:date` or `xs:dateTime` attribute.
fn time(
    attributes: &mut Vec<(String, String)>,
    key: &str,
    path: &str,
    line: u64,
    report: &mut RowReport,
) -> Option<Timestamp> {
    let value = take(attributes, key)?;
    match Timestamp::parse(&value) {
        Ok(t) => Some(t),
        Err(_) => {
            report.error(
                &format!("{path}/@{key}"),
                &value,
                format!("line {line}: not a date (YYYY-MM-DD) or date-time (RFC 3339, such as 2013-07-12T09:30:00Z)"),
            );
            None
        }
    }
}

/// XML attributes the shape does not have: each rejects the row.
fn unknown_attributes(attributes: &[(String, String)], path: &str, line: u64, report: &mut RowReport) {
    for (key, value) in attributes {
        report.error(
            &format!("{path}/@{key}"),
            value,
            format!("line {line}: the attribute {key} is not part of the shape"),
        );
    }
}

/// The text of a simple element just opened; nested elements are refused.
fn simple_text(events: &mut Events<'_>, path: &str, report: &mut RowReport) -> Result<String, String> {
    let mut value = String::new();
    loop {
        match events.next_node()? {
            None | Some(Node::Close) => return Ok(value),
            Some(Node::Text(text)) => value.push_str(&text),
            Some(Node::Open { name, line, .. }) => {
                events.skip_element()?;
                report.error(&format!("{path}/{name}"), "", format!("line {line}: a value holds text only"));
            }
        }
    }
}

fn read_entity(
    events: &mut Events<'_>,
    row: u64,
    path: &str,
    mut attributes: Vec<(String, String)>,
    report: &mut RowReport,
) -> Result<Option<EntityElement>, String> {
    let line = report.line;
    let entity_type = required(&mut attributes, "type", path, line, report);
    let local_ref = take(&mut attributes, "ref");
    if let Some(r) = local_ref.as_deref().filter(|r| !ref_ok(r)) {
        report.error(&format!("{path}/@ref"), r, format!("line {line}: a ref is 1 to 64 of A-Z a-z 0-9 _ . : -"));
    }
    let id = take(&mut attributes, "id").and_then(|raw| match EntityId::new(raw.trim()) {
        Ok(id) => Some(id),
        Err(e) => {
            report.error(&format!("{path}/@id"), &raw, format!("line {line}: not an entity id: {e}"));
            None
        }
    });
    let kind = take(&mut attributes, "kind").and_then(|raw| match raw.trim().parse::<Kind>() {
        Ok(kind) => Some(kind),
        Err(_) => {
            report.error(
                &format!("{path}/@kind"),
                &raw,
                format!("line {line}: kind is person, object, location or event"),
            );
            None
        }
    });
    let valid_from = time(&mut attributes, "valid-from", path, line, report);
    unknown_attributes(&attributes, path, line, report);
    let mut identifiers = Vec::new();
    let mut values = Vec::new();
    let (mut n_identifiers, mut n_attributes) = (0, 0);
    loop {
        match events.next_node()? {
            None | Some(Node::Close) => break,
            Some(Node::Text(text)) => {
                if !text.trim().is_empty() {
                    let at = events.line();
                    report.error(path, text.trim(), format!("line {at}: text directly inside <entity>"));
                }
            }
            Some(Node::Open { name, mut attributes, line }) => match name.as_str() {
                "identifier" => {
                    n_identifiers += 1;
                    let child = format!("{path}/identifier[{n_identifiers}]");
                    let system = required(&mut attributes, "system", &child, line, report);
                    unknown_attributes(&attributes, &child, line, report);
                    let value = simple_text(events, &child, report)?;
                    if value.trim().is_empty() {
                        report.error(&child, "", format!("line {line}: an identifier needs a value"));
                    }
                    if let Some(system) = system {
                        identifiers.push((child, system, value.trim().to_owned()));
                    }
                }
                "attribute" => {
                    n_attributes += 1;
                    let name =
                        required(&mut attributes, "name", &format!("{path}/attribute[{n_attributes}]"), line, report);
                    let child = match &name {
                        Some(name) => format!("{path}/attribute[@name='{name}']"),
                        None => format!("{path}/attribute[{n_attributes}]"),
                    };
                    unknown_attributes(&attributes, &child, line, report);
                    let value = simple_text(events, &child, report)?;
                    if let Some(name) = name {
                        if values.iter().any(|(_, n, _): &(String, String, String)| *n == name) {
                            report.error(&child, &value, format!("line {line}: attribute {name} is given twice"));
                        }
                        values.push((child, name, value));
                    }
                }
                other => {
                    events.skip_element()?;
                    report.error(
                        &format!("{path}/{other}"),
                        "",
                        format!(
                            "line {line}: <{other}> is not part of an entity (expected <identifier> or <attribute>)"
                        ),
                    );
                }
            },
        }
    }
    if local_ref.is_none() && id.is_none() {
        report.error(path, "", format!("line {line}: an entity needs a ref (new or found by identifier) or an id"));
    }
    let Some(entity_type) = entity_type else { return Ok(None) };
    Ok(Some(EntityElement {
        row,
        local_ref: local_ref.map(|r| r.trim().to_owned()),
        id,
        entity_type,
        kind,
        valid_from,
        identifiers,
        attributes: values,
    }))
}

fn read_link(
    events: &mut Events<'_>,
    row: u64,
    path: &str,
    mut attributes: Vec<(String, String)>,
    report: &mut RowReport,
) -> Result<Option<LinkElement>, String> {
    let line = report.line;
    let role = required(&mut attributes, "role", path, line, report);
    let from = required(&mut attributes, "from", path, line, report);
    let to = required(&mut attributes, "to", path, line, report);
    let valid_from = time(&mut attributes, "valid-from", path, line, report);
    let valid_to = time(&mut attributes, "valid-to", path, line, report);
    unknown_attributes(&attributes, path, line, report);
    let _ = simple_text(events, path, report)?;
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        if to < from {
            report.error(
                &format!("{path}/@valid-to"),
                &to.to_string(),
                format!("line {line}: before valid-from {from}"),
            );
        }
    }
    let (Some(role), Some(from), Some(to)) = (role, from, to) else { return Ok(None) };
    Ok(Some(LinkElement { row, role, from, to, valid_from, valid_to }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<submission id="b1">
  <entity ref="client" kind="person" type="person" valid-from="2013-07-12">
    <identifier system="council:305:client">C-1</identifier>
    <attribute name="birth_date">1931-07-04</attribute>
  </entity>
  <link role="subject" from="concern" to="client" valid-from="2013-07-12"/>
  <entity type="person" kind="animal" valid-from="yesterday" colour="red">
    <nickname>x</nickname>
  </entity>
  <note/>
</submission>
"#;

    #[test]
    fn entities_links_and_row_problems() {
        let read = read(DOC, &mut |_| {}).unwrap();
        assert_eq!(read.id.as_deref(), Some("b1"));
        assert_eq!(read.rows.len(), 4);
        assert_eq!(read.elements.len(), 2);
        let Element::Entity(client) = &read.elements[0] else { panic!("{:?}", read.elements[0]) };
        assert_eq!(client.local_ref.as_deref(), Some("client"));
        assert_eq!(client.kind, Some(Kind::Person));
        assert_eq!(client.identifiers[0].1, "council:305:client");
        assert_eq!(client.attributes[0].0, "/submission/entity[1]/attribute[@name='birth_date']");
        let Element::Link(link) = &read.elements[1] else { panic!() };
        assert_eq!((link.row, link.from.as_str()), (2, "concern"));
        let bad = &read.rows[2];
        assert!(bad.is_rejected());
        assert_eq!(bad.line, 8);
        let columns: Vec<&str> = bad.issues.iter().map(|i| i.column.as_str()).collect();
        assert_eq!(
            columns,
            [
                "/submission/entity[2]/@kind",
                "/submission/entity[2]/@valid-from",
                "/submission/entity[2]/@colour",
                "/submission/entity[2]/nickname",
                "/submission/entity[2]"
            ]
        );
        assert!(bad.issues[3].reason.starts_with("line 9:"));
        assert!(read.rows[3].issues[0].reason.contains("<note> is not part of a submission"));
    }

    #[test]
    fn file_level_problems() {
        assert!(read("<safeguarding/>", &mut |_| {}).unwrap_err().contains("not <submission>"));
        let err = read("<submission>\n<entity ref=\"a\" type=\"person\">\n", &mut |_| {}).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let err =
            read("<submission>\n<entity ref=\"a\" type=\"person\"></link></submission>", &mut |_| {}).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(ref_ok("client-1.a:b") && !ref_ok("") && !ref_ok("a b") && !ref_ok(&"x".repeat(65)));
    }
}
