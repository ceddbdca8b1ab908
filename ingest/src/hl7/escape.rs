//! HL7 escape sequences: `\F\ \S\ \T\ \R\ \E\`, hex bytes `\Xhh..\`, and the formatting
//! sequences that carry no data.

use std::borrow::Cow;

use super::delimiters::Delimiters;

/// Why an escape sequence could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeError {
    Unterminated,
    Empty,
    Unknown,
    BadHex,
}

impl EscapeError {
    pub fn reason(self) -> &'static str {
        match self {
            EscapeError::Unterminated => "the escape sequence is not closed before the end of the value",
            EscapeError::Empty => "an empty escape sequence means nothing",
            EscapeError::Unknown => "unknown escape sequence (F, S, T, R, E, X, H, N, .br, C, M and Z are known)",
            EscapeError::BadHex => "\\X..\\ must hold an even number of hexadecimal digits",
        }
    }
}

/// Replaces every delimiter (and line break, which would end the segment) in `text` by its
/// escape sequence.
pub fn escape<'a>(text: &'a str, d: &Delimiters) -> Cow<'a, str> {
    let Some(esc) = d.escape else {
        return Cow::Borrowed(text);
    };
    let special = |c: char| {
        c == d.field
            || c == d.component
            || Some(c) == d.repetition
            || Some(c) == d.subcomponent
            || c == esc
            || c == '\r'
            || c == '\n'
    };
    if !text.chars().any(special) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        let code = if c == d.field {
            "F"
        } else if c == d.component {
            "S"
        } else if Some(c) == d.repetition {
            "R"
        } else if Some(c) == d.subcomponent {
            "T"
        } else if c == esc {
            "E"
        } else if c == '\r' {
            "X0D"
        } else if c == '\n' {
            "X0A"
        } else {
            out.push(c);
            continue;
        };
        out.push(esc);
        out.push_str(code);
        out.push(esc);
    }
    Cow::Owned(out)
}

/// Resolves the escape sequences of one leaf value (already split on every delimiter, so a
/// sequence never spans a delimiter).
pub fn unescape<'a>(raw: &'a str, d: &Delimiters) -> Result<Cow<'a, str>, EscapeError> {
    let Some(esc) = d.escape else {
        return Ok(Cow::Borrowed(raw));
    };
    if !raw.contains(esc) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find(esc) {
        out.push_str(&rest[..start]);
        let after = &rest[start + esc.len_utf8()..];
        let end = after.find(esc).ok_or(EscapeError::Unterminated)?;
        let body = &after[..end];
        rest = &after[end + esc.len_utf8()..];
        match body {
            "" => return Err(EscapeError::Empty),
            "F" => out.push(d.field),
            "S" => out.push(d.component),
            "T" => out.push(d.subcomponent.ok_or(EscapeError::Unknown)?),
            "R" => out.push(d.repetition.ok_or(EscapeError::Unknown)?),
            "E" => out.push(esc),
            // Highlighting on/off carries no data.
            "H" | "N" => {}
            ".br" => out.push('\n'),
            _ if body.starts_with('X') => out.push_str(&hex(&body[1..])?),
            // Other formatting commands (.sp, .in ...) and character-set switches (C, M)
            // change presentation only; Z sequences are site-defined, so kept verbatim.
            _ if body.starts_with('.') || body.starts_with('C') || body.starts_with('M') => {}
            _ if body.starts_with('Z') => {
                out.push(esc);
                out.push_str(body);
                out.push(esc);
            }
            _ => return Err(EscapeError::Unknown),
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Hex digits to text: UTF-8 when the bytes are UTF-8, otherwise Latin-1 (one char a byte),
/// which is what the English senders that use `\X..\` mean.
fn hex(digits: &str) -> Result<String, EscapeError> {
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(EscapeError::BadHex);
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    let raw = digits.as_bytes();
    for pair in raw.chunks(2) {
        let hi = hex_digit(pair[0]).ok_or(EscapeError::BadHex)?;
        let lo = hex_digit(*pair.get(1).ok_or(EscapeError::BadHex)?).ok_or(EscapeError::BadHex)?;
        bytes.push(hi << 4 | lo);
    }
    Ok(super::decode_text(&bytes).into_owned())
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std() -> Delimiters {
        Delimiters::default()
    }

    #[test]
    fn every_named_sequence_unescapes() {
        let d = std();
        assert_eq!(unescape(r"a\F\b\S\c\T\d\R\e\E\f", &d).unwrap(), r"a|b^c&d~e\f");
    }

    #[test]
    fn hex_sequences_are_bytes() {
        let d = std();
        assert_eq!(unescape(r"\X0D0A\", &d).unwrap(), "\r\n");
        assert_eq!(unescape(r"caf\XC3A9\", &d).unwrap(), "café");
        // One Latin-1 byte that is not UTF-8.
        assert_eq!(unescape(r"caf\XE9\", &d).unwrap(), "café");
    }

    #[test]
    fn formatting_sequences_carry_no_data() {
        let d = std();
        assert_eq!(unescape(r"\H\bold\N\ line\.br\two", &d).unwrap(), "bold line\ntwo");
        assert_eq!(unescape(r"x\Zsite\y", &d).unwrap(), r"x\Zsite\y");
    }

    #[test]
    fn broken_sequences_are_refused() {
        let d = std();
        assert_eq!(unescape(r"abc\F", &d), Err(EscapeError::Unterminated));
        assert_eq!(unescape(r"a\\b", &d), Err(EscapeError::Empty));
        assert_eq!(unescape(r"a\Q\b", &d), Err(EscapeError::Unknown));
        assert_eq!(unescape(r"\X0\", &d), Err(EscapeError::BadHex));
        assert_eq!(unescape(r"\XZZ\", &d), Err(EscapeError::BadHex));
        assert_eq!(unescape(r"\X\", &d), Err(EscapeError::BadHex));
    }

    #[test]
    fn escape_round_trips_with_other_delimiters() {
        let d = Delimiters {
            field: '#',
            component: '$',
            repetition: Some('*'),
            escape: Some('!'),
            subcomponent: Some('@'),
        };
        let text = "a#b$c*d!e@f|g^h~i\\j&k\r\nl";
        let escaped = escape(text, &d);
        assert!(!escaped.contains(['#', '$', '*', '@', '\r', '\n']));
        assert_eq!(unescape(&escaped, &d).unwrap(), text);
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("plain", &std()), Cow::Borrowed(_)));
        assert!(matches!(unescape("plain", &std()).unwrap(), Cow::Borrowed(_)));
    }
}
