//! The encoding characters a message declares in MSH-1 and MSH-2.

use super::error::{excerpt, Hl7Error};

/// The five delimiters of HL7 v2. Any characters may be declared, not only `|^~\&`; the
/// optional ones are absent when MSH-2 is shorter than four characters, as old senders do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: Option<char>,
    pub escape: Option<char>,
    pub subcomponent: Option<char>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters { field: '|', component: '^', repetition: Some('~'), escape: Some('\\'), subcomponent: Some('&') }
    }
}

impl Delimiters {
    /// Reads the delimiters from the start of a header segment (`MSH`, `FHS` or `BHS`):
    /// the fourth character is the field separator and the characters up to the next field
    /// separator are the encoding characters. Answers the delimiters and the byte offset
    /// where MSH-3 starts, `None` when no field separator follows MSH-2.
    pub fn from_header(segment: &str) -> Result<(Delimiters, Option<usize>), Hl7Error> {
        let truncated = || Hl7Error::TruncatedMsh { found: excerpt(segment) };
        let mut chars = segment.char_indices().skip(3);
        let (_, field) = chars.next().ok_or_else(truncated)?;
        let rest_start = 3 + field.len_utf8();
        let rest = segment.get(rest_start..).ok_or_else(truncated)?;
        let (encoding, msh3_start) = match rest.find(field) {
            Some(end) => (&rest[..end], Some(rest_start + end + field.len_utf8())),
            None => (rest, None),
        };
        let chars: Vec<char> = encoding.chars().collect();
        let bad = |reason| Hl7Error::BadEncodingCharacters { found: format!("{field}{encoding}"), reason };
        if chars.is_empty() {
            return Err(bad("MSH-2 is empty: at least the component separator is needed"));
        }
        // v2.7 adds a fifth (truncation) character; it means nothing to a v2.5 reader.
        if chars.len() > 5 {
            return Err(bad("MSH-2 has more than five encoding characters"));
        }
        let delimiters = Delimiters {
            field,
            component: chars[0],
            repetition: chars.get(1).copied(),
            escape: chars.get(2).copied(),
            subcomponent: chars.get(3).copied(),
        };
        let all = delimiters.all();
        if all.iter().any(|c| matches!(c, '\r' | '\n')) {
            return Err(bad("a delimiter cannot be a line break"));
        }
        if all.iter().any(|c| c.is_ascii_alphanumeric() || *c == ' ') {
            return Err(bad("a delimiter cannot be a letter, digit or space"));
        }
        for (i, c) in all.iter().enumerate() {
            if all[..i].contains(c) {
                return Err(bad("the same character is declared twice"));
            }
        }
        Ok((delimiters, msh3_start))
    }

    /// The declared delimiters, field separator first.
    pub fn all(&self) -> Vec<char> {
        [Some(self.field), Some(self.component), self.repetition, self.escape, self.subcomponent]
            .into_iter()
            .flatten()
            .collect()
    }

    /// MSH-2 as it is written.
    pub fn encoding_characters(&self) -> String {
        [Some(self.component), self.repetition, self.escape, self.subcomponent].into_iter().flatten().collect()
    }
}
