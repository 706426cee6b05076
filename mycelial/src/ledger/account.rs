//! Who holds a balance: an operator (or workload owner) by public key, or the
//! `commons`, which receives fees so that nothing is ever burned.

use std::fmt;
use std::str::FromStr;

use orchestrator_shared_types::ids::IdParseError;
use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text form of [`Account::Commons`].
pub const COMMONS: &str = "commons";

/// A balance holder. Prints and serializes as the key's lowercase hex, or
/// `commons`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// An operator or workload owner, by its Ed25519 public key.
    Key(PublicKey),
    /// The shared account that receives settlement fees. Nobody can sign for
    /// it, so it never pays; its credit limit is zero.
    Commons,
}

impl Account {
    /// The key, unless this is the commons.
    pub fn key(&self) -> Option<&PublicKey> {
        match self {
            Account::Key(k) => Some(k),
            Account::Commons => None,
        }
    }
}

impl From<PublicKey> for Account {
    fn from(k: PublicKey) -> Self {
        Account::Key(k)
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Key(k) => fmt::Display::fmt(k, f),
            Account::Commons => f.write_str(COMMONS),
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Key(k) => fmt::Debug::fmt(k, f),
            Account::Commons => f.write_str("Commons"),
        }
    }
}

impl FromStr for Account {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == COMMONS {
            Ok(Account::Commons)
        } else {
            s.parse().map(Account::Key)
        }
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_print_and_parse_as_hex_or_commons() {
        let k = Account::Key(PublicKey([0xab; 32]));
        assert_eq!(k.to_string(), "ab".repeat(32));
        assert_eq!(k.to_string().parse::<Account>().unwrap(), k);
        assert_eq!("commons".parse::<Account>().unwrap(), Account::Commons);
        assert_eq!(
            serde_json::to_string(&Account::Commons).unwrap(),
            "\"commons\""
        );
        assert!("nobody".parse::<Account>().is_err());
    }
}
