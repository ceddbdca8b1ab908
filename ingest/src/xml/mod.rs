//! XML input, read as a stream of events (quick-xml) so memory stays bounded by the
//! largest element, never the document: [`safeguarding`] reads the safeguarding data set
//! (one `<allegation>` element a row) as a record source, and [`submission`] reads the POLE
//! submission format. The shapes are documented by the XSDs in
//! `packs/adult-social-care/xml/`; their rules are checked here, in code, with errors that
//! name the element path and the line.
//!
//! A DOCTYPE is refused outright: entity declarations are how entity-expansion ("billion
//! laughs") and external-entity (XXE) attacks get in, and neither shape needs them. Only
//! the five predefined entities and character references are read.

pub mod safeguarding;
pub mod submission;

use quick_xml::events::Event;
use quick_xml::XmlVersion;

/// How deep elements may nest: both shapes need three levels; more is refused before it
/// can cost memory.
const MAX_DEPTH: usize = 16;

/// Which documented shape a document has, by its root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `<safeguarding>` of `<allegation>` rows.
    Safeguarding,
    /// `<submission>` of `<entity>` and `<link>` elements.
    Submission,
}

/// The root element names of the shapes.
pub const SAFEGUARDING_ROOT: &str = "safeguarding";
pub const SUBMISSION_ROOT: &str = "submission";

/// Reads as far as the root element and says which shape the document has. `Err` is a
/// file-level problem (not XML, a DOCTYPE, an unknown root), naming the line.
pub fn shape_of(text: &str) -> Result<Shape, String> {
    let mut events = Events::new(text);
    loop {
        match events.next_node()? {
            None => return Err("the file holds no XML element: the document is empty or not XML".into()),
            Some(Node::Text(text)) if text.trim().is_empty() => {}
            Some(Node::Text(_)) => {
                return Err(format!(
                    "line {}: text before the root element: this is not an XML document",
                    events.line()
                ))
            }
            Some(Node::Open { name, line, .. }) => {
                return match name.as_str() {
                    SAFEGUARDING_ROOT => Ok(Shape::Safeguarding),
                    SUBMISSION_ROOT => Ok(Shape::Submission),
                    other => Err(format!(
                        "line {line}: the root element is <{other}>; expected <{SAFEGUARDING_ROOT}> (the safeguarding \
                         data set) or <{SUBMISSION_ROOT}> (the POLE submission format)"
                    )),
                }
            }
            Some(Node::Close) => return Err(format!("line {}: an end tag before any element", events.line())),
        }
    }
}

/// One step through a document, in the terms the shapes need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A start tag (an empty element is an `Open` followed by a `Close`). Names are local
    /// names: a namespace prefix is dropped.
    Open { name: String, attributes: Vec<(String, String)>, line: u64 },
    /// The end of the innermost open element.
    Close,
    /// Character data (text, CDATA, a resolved reference): consecutive pieces belong together.
    Text(String),
}

/// The event reader every shape uses: well-formedness, the DOCTYPE refusal, references,
/// depth and line numbers in one place.
pub struct Events<'a> {
    reader: quick_xml::Reader<&'a [u8]>,
    text: &'a str,
    /// Newlines counted up to a byte offset, carried forward so counting stays linear.
    counted: (usize, u64),
    depth: usize,
    /// Whether the root element has closed: anything but whitespace, comments and
    /// processing instructions after it is refused.
    finished: bool,
    /// The last event's start, for `line()`.
    at: usize,
}

impl std::fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("depth", &self.depth).field("at", &self.at).finish()
    }
}

impl<'a> Events<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut reader = quick_xml::Reader::from_str(text);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        Events { reader, text, counted: (0, 1), depth: 0, finished: false, at: 0 }
    }

    /// The line the last event started on.
    pub fn line(&mut self) -> u64 {
        self.line_at(self.at)
    }

    /// How far into the text the reader is, for progress.
    pub fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

    fn line_at(&mut self, byte: usize) -> u64 {
        let byte = byte.min(self.text.len());
        let (from, line) = self.counted;
        if byte < from {
            // Only errors look back, and they are reported once: counting again is fine.
            return 1 + self.text.as_bytes()[..byte].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let newlines = self.text.as_bytes()[from..byte].iter().filter(|&&b| b == b'\n').count() as u64;
        self.counted = (byte, line + newlines);
        line + newlines
    }

    fn error(&mut self, byte: u64, reason: impl std::fmt::Display) -> String {
        let line = self.line_at(usize::try_from(byte).unwrap_or(usize::MAX));
        format!("line {line}: the file is not well-formed XML: {reason}")
    }

    /// The next node; `Ok(None)` at the end of a complete document. `Err` is a file-level
    /// problem naming the line.
    pub fn next_node(&mut self) -> Result<Option<Node>, String> {
        loop {
            let begin = self.reader.buffer_position();
            self.at = usize::try_from(begin).unwrap_or(usize::MAX);
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    let at = self.reader.error_position();
                    return Err(self.error(at, e));
                }
            };
            match event {
                Event::DocType(_) => {
                    let line = self.line();
                    return Err(format!(
                        "line {line}: a DOCTYPE is refused: DTDs and entity declarations are not accepted (they \
                         allow entity-expansion and external-entity attacks); remove the <!DOCTYPE ...> declaration"
                    ));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Start(start) => {
                    if self.finished {
                        let line = self.line();
                        return Err(format!("line {line}: a second root element: a document has exactly one"));
                    }
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        let line = self.line();
                        return Err(format!("line {line}: elements nest deeper than {MAX_DEPTH} levels"));
                    }
                    let name = start.local_name().as_ref().to_owned();
                    let mut attributes = Vec::new();
                    for attribute in start.attributes() {
                        let attribute = match attribute {
                            Ok(a) => a,
                            Err(e) => return Err(self.error(begin, e)),
                        };
                        let key = attribute.key;
                        // Namespace declarations and xsi: hints (schemaLocation) say nothing
                        // about the data.
                        let qualified = key.as_ref();
                        if qualified == "xmlns" || qualified.starts_with("xmlns:") || qualified.starts_with("xsi:") {
                            continue;
                        }
                        let value = match attribute.normalized_value(XmlVersion::Implicit1_0) {
                            Ok(v) => v.into_owned(),
                            Err(e) => return Err(self.error(begin, e)),
                        };
                        attributes.push((key.local_name().as_ref().to_owned(), value));
                    }
                    let line = self.line();
                    return Ok(Some(Node::Open { name, attributes, line }));
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        self.finished = true;
                    }
                    return Ok(Some(Node::Close));
                }
                // With expand_empty_elements an empty element arrives as Start and End.
                Event::Empty(_) => {}
                Event::Text(text) => {
                    let content = text.xml_content(XmlVersion::Implicit1_0).into_owned();
                    if self.depth == 0 && !content.trim().is_empty() {
                        let line = self.line();
                        return Err(if self.finished {
                            format!("line {line}: text outside the root element")
                        } else {
                            format!("line {line}: text before the root element: this is not an XML document")
                        });
                    }
                    return Ok(Some(Node::Text(content)));
                }
                Event::CData(data) => {
                    let content = data.into_inner().into_owned();
                    return Ok(Some(Node::Text(content)));
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name: String = reference.to_string();
                            match name.as_str() {
                                "lt" => "<".into(),
                                "gt" => ">".into(),
                                "amp" => "&".into(),
                                "apos" => "'".into(),
                                "quot" => "\"".into(),
                                _ => {
                                    return Err(self.error(
                                        begin,
                                        format!("the entity &{name}; is not defined (only &lt; &gt; &amp; &apos; &quot; and character references are)"),
                                    ))
                                }
                            }
                        }
                        Err(e) => return Err(self.error(begin, e)),
                    };
                    return Ok(Some(Node::Text(resolved)));
                }
                Event::Eof => {
                    if self.depth > 0 {
                        let at = self.reader.buffer_position();
                        let line = self.line_at(usize::try_from(at).unwrap_or(usize::MAX));
                        return Err(format!(
                            "line {line}: the file ends inside an element ({} still open): it is truncated or an \
                             end tag is missing",
                            self.depth
                        ));
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Skips the rest of the element just opened, nested elements included.
    pub fn skip_element(&mut self) -> Result<(), String> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next_node()? {
                None => return Ok(()),
                Some(Node::Open { .. }) => depth += 1,
                Some(Node::Close) => depth -= 1,
                Some(Node::Text(_)) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Result<Vec<Node>, String> {
        let mut events = Events::new(text);
        let mut nodes = Vec::new();
        while let Some(node) = events.next_node()? {
            nodes.push(node);
        }
        Ok(nodes)
    }

    #[test]
    fn shapes_by_root() {
        assert_eq!(shape_of("<?xml version=\"1.0\"?>\n<safeguarding/>").unwrap(), Shape::Safeguarding);
        assert_eq!(shape_of("<p:submission xmlns:p=\"urn:x\"/>").unwrap(), Shape::Submission);
        assert!(shape_of("<html/>").unwrap_err().contains("root element is <html>"));
        assert!(shape_of("").unwrap_err().contains("empty"));
        assert!(shape_of("a,b\n1,2\n").unwrap_err().contains("not an XML document"));
    }

    #[test]
    fn doctype_and_entities_are_refused() {
        let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]>\n<safeguarding>&lol2;</safeguarding>";
        assert!(shape_of(laughs).unwrap_err().starts_with("line 2: a DOCTYPE is refused"));
        let xxe = "<!DOCTYPE s [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><submission>&x;</submission>";
        assert!(shape_of(xxe).unwrap_err().contains("DOCTYPE is refused"));
        let undefined = all("<a>\n&x;</a>").unwrap_err();
        assert!(undefined.contains("line 2") && undefined.contains("&x; is not defined"), "{undefined}");
    }

    #[test]
    fn references_cdata_and_empty_elements() {
        let nodes = all("<a k=\"1 &amp; 2\"><b/>x &lt; &#121;<![CDATA[<z>]]></a>").unwrap();
        assert_eq!(nodes[0], Node::Open { name: "a".into(), attributes: vec![("k".into(), "1 & 2".into())], line: 1 });
        assert!(matches!(nodes[1], Node::Open { .. }) && nodes[2] == Node::Close);
        let text: String =
            nodes.iter().filter_map(|n| if let Node::Text(t) = n { Some(t.as_str()) } else { None }).collect();
        assert_eq!(text, "x < y<z>");
    }

    #[test]
    fn malformed_documents_name_the_line() {
        let mismatched = all("<a>\n<b>\n</c>\n</a>").unwrap_err();
        assert!(mismatched.starts_with("line 3:"), "{mismatched}");
        let truncated = all("<a>\n<b>text").unwrap_err();
        assert!(truncated.contains("truncated"), "{truncated}");
        assert!(all("<a/><b/>").unwrap_err().contains("second root"));
        assert!(all("<a/>text").unwrap_err().contains("outside the root"));
        let deep = "<a>".repeat(40);
        assert!(all(&deep).unwrap_err().contains("nest deeper"));
    }
}
