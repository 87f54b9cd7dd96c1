//! IMAP mailbox names in modified UTF-7 (RFC 3501 §5.1.3): decode what servers send
//! (`Entw&APw-rfe` → `Entwürfe`), encode what we create. Pure; hostile input gives an
//! error naming the offset, never a panic.

use base64::alphabet::Alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use thiserror::Error;

const ALPHABET: Alphabet = match Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,") {
    Ok(a) => a,
    Err(_) => panic!("valid modified-base64 alphabet"),
};
const B64: GeneralPurpose = GeneralPurpose::new(
    &ALPHABET,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// A mailbox name that is not valid modified UTF-7.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("mailbox name {name:?} is not modified UTF-7 at byte {offset}: {reason}")]
pub struct Mutf7Error {
    pub name: String,
    pub offset: usize,
    pub reason: &'static str,
}

/// Decodes a mailbox name as an IMAP server sends it.
pub fn decode(name: &str) -> Result<String, Mutf7Error> {
    let err = |offset, reason| Mutf7Error {
        name: name.to_string(),
        offset,
        reason,
    };
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c != b'&' {
            if !(0x20..=0x7e).contains(&c) {
                return Err(err(i, "byte outside printable ASCII"));
            }
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let end = bytes[i + 1..]
            .iter()
            .position(|&b| b == b'-')
            .map(|p| i + 1 + p)
            .ok_or_else(|| err(i, "'&' without a closing '-'"))?;
        if end == i + 1 {
            out.push('&');
        } else {
            let raw = B64
                .decode(&bytes[i + 1..end])
                .map_err(|_| err(i + 1, "bad modified base64"))?;
            if raw.len() % 2 != 0 {
                return Err(err(i + 1, "odd number of UTF-16 bytes"));
            }
            let units: Vec<u16> = raw.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            let text = String::from_utf16(&units).map_err(|_| err(i + 1, "invalid UTF-16"))?;
            if text.chars().any(|ch| (' '..='~').contains(&ch)) {
                return Err(err(i + 1, "printable ASCII must not be encoded"));
            }
            out.push_str(&text);
        }
        i = end + 1;
    }
    Ok(out)
}

/// Encodes a mailbox name for the server.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if !pending.is_empty() {
            let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&B64.encode(bytes));
            out.push('-');
            pending.clear();
        }
    };
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (wire, name) in [
            ("INBOX", "INBOX"),
            ("Entw&APw-rfe", "Entwürfe"),
            ("&ZeVnLIqe-", "日本語"),
            ("Tom &- Jerry", "Tom & Jerry"),
            ("&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-", "Отправленные"),
            ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語"),
            ("&2D3eAA-", "\u{1F600}"),
        ] {
            assert_eq!(decode(wire).as_deref(), Ok(name), "{wire}");
            assert_eq!(encode(name), wire, "{name}");
        }
    }

    #[test]
    fn hostile_names_are_errors() {
        for bad in ["&ZeVnLIqe", "&&-", "&AGE-", "caf\u{e9}", "&A-", "&2D0-"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn roundtrip(name in "\\PC{0,20}") {
            proptest::prop_assert_eq!(decode(&encode(&name)).unwrap(), name);
        }

        #[test]
        fn decode_never_panics(s in "[&A-Za-z0-9+,\\-/ ~]{0,30}") {
            let _ = decode(&s);
        }
    }
}
