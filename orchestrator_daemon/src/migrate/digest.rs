//! How the migration checks a copy: the count of a set of (key, value)
//! pairs and a SHA-256 over them in key order, each value in canonical JSON
//! (object keys sorted at every level, no whitespace), so that two stores
//! that hold the same data give the same digest whatever order or spacing
//! they keep it in.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The count of a set of pairs and their hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// How many pairs.
    pub count: usize,
    /// SHA-256 over the pairs in key order, each key and value prefixed by
    /// its length in bytes (so that no two sets share an input).
    pub sha256: [u8; 32],
}

impl Digest {
    /// Of `pairs` as given (each value already canonical).
    pub fn of(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort_unstable();
        let mut h = Sha256::new();
        for (key, value) in &pairs {
            for part in [key, value] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
        Self {
            count: pairs.len(),
            sha256: h.finalize().into(),
        }
    }

    /// Of no pair: what a kind absent from a store has.
    pub fn empty() -> Self {
        Self::of(Vec::new())
    }

    /// Of typed items, each keyed by `key` and valued by its canonical JSON.
    pub fn of_items<T: Serialize>(
        items: &[T],
        key: impl Fn(&T) -> String,
    ) -> Result<Self, serde_json::Error> {
        let pairs = items
            .iter()
            .map(|item| Ok((key(item), canonical(&serde_json::to_value(item)?))))
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        Ok(Self::of(pairs))
    }

    /// Of records (key, text): a text that is JSON in canonical form, any
    /// other as it is.
    pub fn of_records(records: &[(String, String)]) -> Self {
        Self::of(
            records
                .iter()
                .map(|(key, text)| (key.clone(), canonical_text(text)))
                .collect(),
        )
    }

    /// The first 16 hex digits of the hash, for a table.
    pub fn short(&self) -> String {
        hex::encode(&self.sha256[..8])
    }
}

/// `text` in canonical JSON if it is JSON, else unchanged.
fn canonical_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => canonical(&v),
        Err(_) => text.to_owned(),
    }
}

/// `v` as JSON text with every object's keys sorted and no whitespace.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            // serde_json keeps insertion order when a crate in the build
            // turns on `preserve_order`: sort here rather than rely on it.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_drops_spaces() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [ {"y": 1, "x": "é\"" } ], "a": null, "c": 1.5 }"#)
                .unwrap();
        assert_eq!(
            canonical(&v),
            r#"{"a":null,"b":[{"x":"é\"","y":1}],"c":1.5}"#
        );
    }

    #[test]
    fn the_digest_ignores_order_and_spacing_but_not_content() {
        let a = Digest::of_records(&pairs(&[("k1", r#"{"a":1,"b":2}"#), ("k2", "not json")]));
        let b = Digest::of_records(&pairs(&[
            ("k2", "not json"),
            ("k1", r#"{ "b": 2, "a": 1 }"#),
        ]));
        assert_eq!(a, b);
        assert_eq!(a.count, 2);
        for other in [
            pairs(&[("k1", r#"{"a":1,"b":3}"#), ("k2", "not json")]),
            pairs(&[("k1", r#"{"a":1,"b":2}"#), ("k3", "not json")]),
            pairs(&[("k1", r#"{"a":1,"b":2}"#)]),
            // The lengths keep the boundary between key and value.
            pairs(&[("k1", r#"{"a":1,"b":2}"#), ("k2n", "ot json")]),
        ] {
            assert_ne!(Digest::of_records(&other), a, "{other:?}");
        }
        assert_eq!(Digest::of_records(&[]), Digest::empty());
        assert_eq!(a.short().len(), 16);
    }

    #[test]
    fn typed_items_digest_as_their_json() {
        #[derive(Serialize)]
        struct Item {
            id: u8,
            name: &'static str,
        }
        let items = [Item { id: 2, name: "b" }, Item { id: 1, name: "a" }];
        let d = Digest::of_items(&items, |i| i.id.to_string()).unwrap();
        let same = Digest::of_records(&pairs(&[
            ("1", r#"{"name":"a","id":1}"#),
            ("2", r#"{"id":2,"name":"b"}"#),
        ]));
        assert_eq!(d, same);
    }
}
