//! Turning a submitted file's bytes into text: UTF-8 with or without a byte-order mark,
//! UTF-16 when it carries a byte-order mark, and Windows-1252 (a superset of the printable
//! Latin-1 range) when the bytes are not UTF-8, which is what spreadsheet exports on
//! Windows produce.

use std::io::Read;

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

/// How a file's bytes are read as text: what [`sniff`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEncoding {
    encoding: &'static encoding_rs::Encoding,
    pub byte_order_mark: bool,
}

impl TextEncoding {
    /// `UTF-8`, `UTF-16LE`, `UTF-16BE` or `windows-1252`.
    pub fn name(self) -> &'static str {
        self.encoding.name()
    }

    /// Reads `bytes` (the file's bytes from the start) as UTF-8 text in this encoding, a
    /// block at a time, without the byte-order mark.
    pub fn decoding<R: Read>(self, bytes: R) -> impl Read {
        encoding_rs_io::DecodeReaderBytesBuilder::new()
            .encoding(Some(self.encoding))
            // UTF-8 was checked whole by `sniff`: no need to decode it again.
            .utf8_passthru(true)
            .strip_bom(true)
            .build(bytes)
    }
}

/// Chooses the encoding of a file from its first bytes (a byte-order mark) or, without one,
/// from whether the whole file is valid UTF-8, reading it once a block at a time (a file
/// of any size is checked in bounded memory).
pub fn sniff(mut bytes: impl Read) -> std::io::Result<TextEncoding> {
    let mut start = [0u8; 3];
    let mut filled = 0;
    while filled < start.len() {
        match bytes.read(&mut start[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    if let Some((encoding, _)) = encoding_rs::Encoding::for_bom(&start[..filled]) {
        return Ok(TextEncoding { encoding, byte_order_mark: true });
    }
    let encoding = match is_utf8((&start[..filled]).chain(bytes))? {
        true => encoding_rs::UTF_8,
        false => encoding_rs::WINDOWS_1252,
    };
    Ok(TextEncoding { encoding, byte_order_mark: false })
}

/// Whether every byte of `bytes` to its end is UTF-8, read a block at a time.
pub fn is_utf8(mut bytes: impl Read) -> std::io::Result<bool> {
    let mut buffer = vec![0u8; 1 << 16];
    // Bytes of a UTF-8 sequence cut by the end of the previous block.
    let mut carried = 0;
    loop {
        let read = match bytes.read(&mut buffer[carried..]) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if read == 0 {
            // Anything carried is a sequence the end of the file cut short.
            return Ok(carried == 0);
        }
        let filled = carried + read;
        match std::str::from_utf8(&buffer[..filled]) {
            Ok(_) => carried = 0,
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                buffer.copy_within(valid..filled, 0);
                carried = filled - valid;
            }
            Err(_) => return Ok(false),
        }
    }
}

/// Decodes `bytes` held in memory. Never fails: every byte sequence is valid Windows-1252,
/// so the worst case is text the submitter recognises as garbled in the report, not a lost
/// file.
pub fn decode(bytes: &[u8]) -> Decoded {
    // Reading from memory cannot fail.
    let encoding = sniff(bytes).unwrap_or(TextEncoding { encoding: encoding_rs::WINDOWS_1252, byte_order_mark: false });
    let body = match encoding.byte_order_mark {
        true => encoding_rs::Encoding::for_bom(bytes).map_or(bytes, |(_, len)| &bytes[len..]),
        false => bytes,
    };
    let text = match std::str::from_utf8(body) {
        Ok(text) if encoding.encoding == encoding_rs::UTF_8 => text.to_owned(),
        _ => encoding.encoding.decode_without_bom_handling(body).0.into_owned(),
    };
    Decoded { text, encoding: encoding.name(), byte_order_mark: encoding.byte_order_mark }
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
    fn streaming_agrees_with_decoding_in_memory() {
        let cases: [&[u8]; 6] = [
            b"\xEF\xBB\xBFa,b\n",
            "Zo\u{eb},\u{a3}5\n".as_bytes(),
            b"Zo\xEB,\xA35,O\x92Brien\n",
            b"\xFF\xFEa\x00,\x00b\x00",
            b"",
            b"a",
        ];
        for bytes in cases {
            let encoding = sniff(bytes).unwrap();
            let mut text = String::new();
            encoding.decoding(bytes).read_to_string(&mut text).unwrap();
            let whole = decode(bytes);
            assert_eq!((text.as_str(), encoding.name()), (whole.text.as_str(), whole.encoding), "{bytes:?}");
        }
    }

    #[test]
    fn a_sequence_cut_by_a_block_boundary_is_still_utf8() {
        // 65,535 ASCII bytes, then a two-byte sequence straddling the 64 KiB block.
        let mut bytes = vec![b'a'; (1 << 16) - 1];
        bytes.extend_from_slice("\u{eb}".as_bytes());
        assert_eq!(sniff(bytes.as_slice()).unwrap().name(), "UTF-8");
        bytes.push(0xEB);
        assert_eq!(sniff(bytes.as_slice()).unwrap().name(), "windows-1252");
    }

    #[test]
    fn empty_is_empty() {
        assert_eq!(decode(b"").text, "");
    }
}
