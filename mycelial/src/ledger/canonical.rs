//! Canonical bytes: compact JSON written field by field in a fixed order, so
//! signatures and the state hash never depend on a serializer's settings
//! (key order, `preserve_order`, float formatting). Strings are escaped as
//! `serde_json` escapes them; times are RFC 3339 in UTC with `Z` and only the
//! fractional digits needed (chrono's `AutoSi`, as its serde does).

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Builds one canonical JSON object.
pub(crate) struct Obj {
    out: String,
    first: bool,
}

impl Obj {
    pub(crate) fn new() -> Self {
        Obj {
            out: String::from("{"),
            first: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_str(&mut self.out, k);
        self.out.push(':');
    }

    pub(crate) fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        push_str(&mut self.out, v);
        self
    }

    pub(crate) fn int(mut self, k: &str, v: impl fmt::Display) -> Self {
        self.key(k);
        self.out.push_str(&v.to_string());
        self
    }

    pub(crate) fn time(self, k: &str, v: &DateTime<Utc>) -> Self {
        let t = time(v);
        self.str(k, &t)
    }

    /// A nested value that is already canonical JSON.
    pub(crate) fn raw(mut self, k: &str, json: &str) -> Self {
        self.key(k);
        self.out.push_str(json);
        self
    }

    pub(crate) fn end(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// RFC 3339 in UTC, `Z`, as few fractional digits as needed.
pub(crate) fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Appends `s` as a JSON string, escaped exactly as `serde_json` does.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn decode_hex<const N: usize, E: serde::de::Error>(s: &str) -> Result<[u8; N], E> {
    let bytes = hex::decode(s).map_err(E::custom)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| E::custom(format!("expected {N} bytes, got {len}")))
}

/// A 64-byte Ed25519 signature; lowercase hex in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureBytes(pub [u8; 64]);

impl SignatureBytes {
    /// Lowercase hex, 128 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBytes({})", hex::encode(&self.0[..6]))
    }
}

impl Serialize for SignatureBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for SignatureBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode_hex::<64, D::Error>(&s).map(SignatureBytes)
    }
}

/// A SHA-256 state hash; lowercase hex in JSON and when printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateHash(pub [u8; 32]);

impl StateHash {
    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateHash({})", hex::encode(&self.0[..6]))
    }
}

impl Serialize for StateHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for StateHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode_hex::<32, D::Error>(&s).map(StateHash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "plain",
            "q\"b\\s",
            "\n\r\t\u{08}\u{0c}\u{01}\u{1f}\u{7f}",
            "é€😀",
            "",
        ] {
            let mut ours = String::new();
            push_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn times_format_as_chrono_serde_does() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T10:00:00.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            format!("\"{}\"", time(&t)),
            serde_json::to_string(&t).unwrap()
        );
        assert_eq!(time(&t), "2026-11-22T10:00:00.120Z");
    }

    #[test]
    fn hex_newtypes_round_trip() {
        let s = SignatureBytes([7; 64]);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SignatureBytes>(&j).unwrap(), s);
        assert!(serde_json::from_str::<SignatureBytes>("\"abcd\"").is_err());
        let h = StateHash([9; 32]);
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<StateHash>(&j).unwrap(), h);
    }
}
