//! The message model (segments, fields, repetitions, components, subcomponents, all in
//! order and unescaped) and the parser that builds it from text.

use super::delimiters::Delimiters;
use super::error::{excerpt, Hl7Error, Location};
use super::escape::{escape, unescape};
use super::path::Path;

/// The versions (MSH-12) this parser reads.
pub const SUPPORTED_VERSIONS: &[&str] = &["2.3", "2.3.1", "2.4", "2.5", "2.5.1"];

/// One parsed message: every segment, known or not (Z-segments included), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    delimiters: Delimiters,
    segments: Vec<Segment>,
}

/// One segment. `fields[0]` is field 1; for MSH that is the field separator itself and
/// field 2 the encoding characters, held literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    name: String,
    fields: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field {
    repetitions: Vec<Repetition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repetition {
    components: Vec<Component>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    subcomponents: Vec<String>,
}

/// The fields of MSH every reader needs, unescaped (first component where the type has more).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub sending_application: String,
    pub sending_facility: String,
    pub receiving_application: String,
    pub receiving_facility: String,
    /// MSH-7, as sent.
    pub date_time: String,
    /// MSH-9.1, e.g. `ADT`.
    pub message_code: String,
    /// MSH-9.2, e.g. `A01`.
    pub trigger_event: String,
    /// MSH-10.
    pub control_id: String,
    /// MSH-11.1, e.g. `P`.
    pub processing_id: String,
    /// MSH-12.1, e.g. `2.4`.
    pub version: String,
}

impl Message {
    /// Parses one message and checks its header: MSH first, MSH-9 and MSH-10 present, and
    /// MSH-12 a supported version.
    pub fn parse(text: &str) -> Result<Message, Hl7Error> {
        let message = Message::parse_structure(text)?;
        message.checked_header()?;
        Ok(message)
    }

    /// Parses bytes: UTF-8 when they are, otherwise Latin-1 (a byte-order mark is skipped).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Message, Hl7Error> {
        Message::parse(&super::decode_text(bytes))
    }

    /// Parses the structure only, without requiring any header field: what an
    /// acknowledgement of a broken message can still echo.
    pub fn parse_structure(text: &str) -> Result<Message, Hl7Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = segment_lines(text);
        let first = lines.next().ok_or(Hl7Error::Empty)?;
        if !first.starts_with("MSH") {
            return Err(Hl7Error::MissingMsh { found: excerpt(first) });
        }
        let (delimiters, _) = Delimiters::from_header(first)?;
        let mut segments = vec![parse_segment(first, 1, &delimiters)?];
        for (i, line) in lines.enumerate() {
            segments.push(parse_segment(line, i + 2, &delimiters)?);
        }
        Ok(Message { delimiters, segments })
    }

    /// Builds a message from segments (MSH first) with the given delimiters.
    pub fn from_segments(delimiters: Delimiters, segments: Vec<Segment>) -> Message {
        Message { delimiters, segments }
    }

    pub fn delimiters(&self) -> &Delimiters {
        &self.delimiters
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The first segment named `name`.
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name == name)
    }

    /// Every segment named `name`, in order.
    pub fn segments_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.name == name)
    }

    /// The value at a path such as `PID-3`, `PID-5.1`, `PID-3[2].4.1` or `OBX[2]-5`
    /// (`[n]` after the segment picks its n-th occurrence, after the field its n-th
    /// repetition; all 1-based; component and subcomponent default to 1). `None` when the
    /// path is malformed or the value absent or empty.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.get_path(&Path::parse(path)?)
    }

    pub fn get_path(&self, path: &Path) -> Option<&str> {
        let mut named = self.segments.iter().filter(|s| s.name == path.segment);
        let segment = named.nth(path.occurrence.checked_sub(1)?)?;
        let value = segment
            .field(path.field)?
            .repetition(path.repetition)?
            .component(path.component)?
            .subcomponent(path.subcomponent)?;
        (!value.is_empty()).then_some(value)
    }

    /// The header fields, without checking them.
    pub fn header(&self) -> Header {
        let get = |p: &str| self.get(p).unwrap_or_default().to_owned();
        Header {
            sending_application: get("MSH-3"),
            sending_facility: get("MSH-4"),
            receiving_application: get("MSH-5"),
            receiving_facility: get("MSH-6"),
            date_time: get("MSH-7"),
            message_code: get("MSH-9.1"),
            trigger_event: get("MSH-9.2"),
            control_id: get("MSH-10"),
            processing_id: get("MSH-11"),
            version: get("MSH-12"),
        }
    }

    /// The header, after checking that MSH-9.1, MSH-10 and a supported MSH-12 are present.
    pub fn checked_header(&self) -> Result<Header, Hl7Error> {
        let header = self.header();
        let missing = |field, what| Hl7Error::MissingField {
            at: Location { segment_index: 1, segment: "MSH".into(), field },
            what,
        };
        if header.message_code.trim().is_empty() {
            return Err(missing(9, "the message type (MSH-9)"));
        }
        if header.control_id.trim().is_empty() {
            return Err(missing(10, "the message control id (MSH-10)"));
        }
        if header.version.trim().is_empty() {
            return Err(missing(12, "the version id (MSH-12)"));
        }
        if !SUPPORTED_VERSIONS.contains(&header.version.trim()) {
            return Err(Hl7Error::UnsupportedVersion { found: excerpt(&header.version) });
        }
        Ok(header)
    }

    /// The message as text, segments ended by `\r`, values escaped with its delimiters.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            segment.encode_into(&self.delimiters, &mut out);
            out.push('\r');
        }
        out
    }
}

impl Segment {
    /// A segment with the given fields (field 1 first).
    pub fn new(name: impl Into<String>, fields: Vec<Field>) -> Segment {
        Segment { name: name.into(), fields }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Field `n` in HL7 numbering (1-based; MSH-1 is the field separator).
    pub fn field(&self, n: usize) -> Option<&Field> {
        self.fields.get(n.checked_sub(1)?)
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    fn is_header(&self) -> bool {
        matches!(self.name.as_str(), "MSH" | "FHS" | "BHS")
    }

    fn encode_into(&self, d: &Delimiters, out: &mut String) {
        out.push_str(&self.name);
        let skip = if self.is_header() {
            // MSH-1 and MSH-2 are the delimiters themselves, written once and never escaped.
            out.push(d.field);
            out.push_str(&d.encoding_characters());
            2
        } else {
            0
        };
        for field in self.fields.iter().skip(skip) {
            out.push(d.field);
            field.encode_into(d, out);
        }
    }
}

impl Field {
    /// A field of one repetition of one component of one subcomponent.
    pub fn text(value: impl Into<String>) -> Field {
        Field { repetitions: vec![Repetition::of_components(vec![value.into()])] }
    }

    pub fn from_repetitions(repetitions: Vec<Repetition>) -> Field {
        Field { repetitions }
    }

    pub fn repetitions(&self) -> &[Repetition] {
        &self.repetitions
    }

    /// Repetition `n`, 1-based.
    pub fn repetition(&self, n: usize) -> Option<&Repetition> {
        self.repetitions.get(n.checked_sub(1)?)
    }

    /// The first subcomponent of the first component of the first repetition.
    pub fn value(&self) -> &str {
        self.repetition(1).map(|r| r.value(1)).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.repetitions.iter().all(Repetition::is_empty)
    }

    fn encode_into(&self, d: &Delimiters, out: &mut String) {
        for (i, rep) in self.repetitions.iter().enumerate() {
            if i > 0 {
                // Without a declared repetition separator there was only ever one.
                if let Some(r) = d.repetition {
                    out.push(r);
                }
            }
            for (j, comp) in rep.components.iter().enumerate() {
                if j > 0 {
                    out.push(d.component);
                }
                for (k, sub) in comp.subcomponents.iter().enumerate() {
                    if k > 0 {
                        if let Some(s) = d.subcomponent {
                            out.push(s);
                        }
                    }
                    out.push_str(&escape(sub, d));
                }
            }
        }
    }
}

impl Repetition {
    /// A repetition whose components each hold one subcomponent.
    pub fn of_components(components: Vec<String>) -> Repetition {
        Repetition { components: components.into_iter().map(|s| Component { subcomponents: vec![s] }).collect() }
    }

    pub fn from_components(components: Vec<Component>) -> Repetition {
        Repetition { components }
    }

    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Component `n`, 1-based.
    pub fn component(&self, n: usize) -> Option<&Component> {
        self.components.get(n.checked_sub(1)?)
    }

    /// The first subcomponent of component `n`, or `""`.
    pub fn value(&self, n: usize) -> &str {
        self.component(n).map(Component::value).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.components.iter().all(Component::is_empty)
    }
}

impl Component {
    pub fn from_subcomponents(subcomponents: Vec<String>) -> Component {
        Component { subcomponents }
    }

    pub fn subcomponents(&self) -> &[String] {
        &self.subcomponents
    }

    /// Subcomponent `n`, 1-based.
    pub fn subcomponent(&self, n: usize) -> Option<&str> {
        self.subcomponents.get(n.checked_sub(1)?).map(String::as_str)
    }

    /// The first subcomponent, or `""`.
    pub fn value(&self) -> &str {
        self.subcomponent(1).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.subcomponents.iter().all(String::is_empty)
    }
}

/// The non-empty lines of `text`: segments end with `\r`, `\n` or `\r\n`, and blank
/// lines (trailing ones included) are not segments.
pub(crate) fn segment_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split(['\r', '\n']).filter(|line| !line.trim().is_empty())
}

/// The segment name of a line when it has a valid one.
pub(crate) fn segment_name(line: &str) -> Option<&str> {
    let name = line.get(..3)?;
    let ok = name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
    ok.then_some(name)
}

fn parse_segment(line: &str, segment_index: usize, d: &Delimiters) -> Result<Segment, Hl7Error> {
    let bad_name = || Hl7Error::BadSegmentName { segment_index, found: excerpt(line) };
    let name = segment_name(line).ok_or_else(bad_name)?;
    let rest = &line[3..];
    let mut fields = Vec::new();
    let body = if matches!(name, "MSH" | "FHS" | "BHS") {
        // A header declares its own delimiters; inside one message they must be the first
        // MSH's (a batch splitter hands each MSH its own message).
        let (own, start) = Delimiters::from_header(line)?;
        if own != *d {
            return Err(Hl7Error::BadEncodingCharacters {
                found: excerpt(line),
                reason: "a header segment declares other delimiters than the message's MSH",
            });
        }
        fields.push(Field::text(d.field.to_string()));
        fields.push(Field::text(d.encoding_characters()));
        start.and_then(|start| line.get(start..))
    } else if rest.is_empty() {
        None
    } else {
        Some(rest.strip_prefix(d.field).ok_or_else(bad_name)?)
    };
    if let Some(body) = body {
        let first_number = fields.len() + 1;
        for (i, raw) in body.split(d.field).enumerate() {
            let at = || Location { segment_index, segment: name.to_owned(), field: first_number + i };
            fields.push(parse_field(raw, d, &at)?);
        }
    }
    Ok(Segment { name: name.to_owned(), fields })
}

fn parse_field(raw: &str, d: &Delimiters, at: &dyn Fn() -> Location) -> Result<Field, Hl7Error> {
    let repetitions: Vec<&str> = match d.repetition {
        Some(r) => raw.split(r).collect(),
        None => vec![raw],
    };
    let mut field = Field { repetitions: Vec::with_capacity(repetitions.len()) };
    for rep in repetitions {
        let mut repetition = Repetition::default();
        for comp in rep.split(d.component) {
            let subs: Vec<&str> = match d.subcomponent {
                Some(s) => comp.split(s).collect(),
                None => vec![comp],
            };
            let mut component = Component { subcomponents: Vec::with_capacity(subs.len()) };
            for sub in subs {
                let value = unescape(sub, d).map_err(|e| Hl7Error::BadEscape {
                    at: at(),
                    found: excerpt(sub),
                    reason: e.reason(),
                })?;
                component.subcomponents.push(value.into_owned());
            }
            repetition.components.push(component);
        }
        field.repetitions.push(repetition);
    }
    Ok(field)
}
