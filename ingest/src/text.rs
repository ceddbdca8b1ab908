//! Turning a submitted file's bytes into text: UTF-8 with or without a byte-order mark,
//! UTF-16 when it carries a byte-order mark, and Windows-1252 (a superset of the printable
//! Latin-1 range) when the bytes are not UTF-8, which is what spreadsheet exports on
//! Windows produce.

use serde::Serialize;

/// A decoded file and how it was read, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    #[serde(skip)]
    pub text: String,
    /// `UTF-8`, `UTF-16LE`, `UTF-16BE` or `windows-1252`.
    pub encoding: &'static str,
    pub byte_order_mark: bool,
}

/// Decodes `bytes`. Never fails: every byte sequence is valid Windows-1252, so the worst
/// case is text the submitter recognises as garbled in the report, not a lost file.
pub fn decode(bytes: &[u8]) -> Decoded {
    if let Some((encoding, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return Decoded { text: text.into_owned(), encoding: encoding.name(), byte_order_mark: true };
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Decoded { text: text.to_owned(), encoding: "UTF-8", byte_order_mark: false },
        Err(_) => {
            let (text, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            Decoded { text: text.into_owned(), encoding: "windows-1252", byte_order_mark: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_a_utf8_bom() {
        let d = decode(b"\xEF\xBB\xBFa,b\n");
        assert_eq!(d.text, "a,b\n");
        assert_eq!(d.encoding, "UTF-8");
        assert!(d.byte_order_mark);
    }

    #[test]
    fn plain_utf8_is_kept() {
        let d = decode("Zoë,£5\n".as_bytes());
        assert_eq!(d.text, "Zoë,£5\n");
        assert!(!d.byte_order_mark);
    }

    #[test]
    fn windows_1252_falls_back() {
        // "Zoë" and a pound sign and a curly apostrophe, as Excel on Windows writes them.
        let d = decode(b"Zo\xEB,\xA35,O\x92Brien\n");
        assert_eq!(d.text, "Zoë,£5,O\u{2019}Brien\n");
        assert_eq!(d.encoding, "windows-1252");
    }

    #[test]
    fn utf16_with_bom() {
        let d = decode(b"\xFF\xFEa\x00,\x00b\x00");
        assert_eq!(d.text, "a,b");
        assert_eq!(d.encoding, "UTF-16LE");
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode(b"").text, "");
    }
}
