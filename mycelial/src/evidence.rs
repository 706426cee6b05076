//! Evidence, not claims (MYCELIAL.md §3, SPEC §17): what reputation is
//! computed from.
//!
//! - An [`Observation`] is signed by its observer (the scheduler's node or a
//!   peer prober), never by the node observed: a heartbeat answered or missed,
//!   an instance that reached its desired state or not, a probe of measured
//!   versus promised resources.
//! - An [`Attestation`] is an operator's signed vouch for another operator.
//! - A [`NodeRegistration`] mirrors cluster membership (node → operator).
//!
//! They travel by gossip as [`Entry`]s of the append-only [`EvidenceLog`],
//! which verifies each on receipt. There is deliberately no entry for a
//! score: scores are computed locally and never gossiped, so a node that
//! gossips its own score has sent something that does not even parse.
//!
//! Signatures are Ed25519 over `DOMAIN + canonical JSON of the body` (the
//! `serde_json` bytes of the typed body, fields in declaration order), with a
//! domain per kind ([`OBSERVATION_DOMAIN`], [`ATTESTATION_DOMAIN`]) so a
//! signature of one kind can never pass for another.

mod log;

pub use log::{EvidenceLog, Rejected, ASN_LABEL};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use orchestrator_shared_types::{NodeId, PublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Domain prefix of an observation's signed bytes.
pub const OBSERVATION_DOMAIN: &[u8] = b"univrs-observation-v1\n";
/// Domain prefix of an attestation's signed bytes.
pub const ATTESTATION_DOMAIN: &[u8] = b"univrs-attestation-v1\n";
/// Domain prefix of a node registration's content hash (registrations are
/// not signed: they mirror cluster membership, see [`NodeRegistration`]).
pub const REGISTRATION_DOMAIN: &[u8] = b"univrs-node-registration-v1\n";
/// The longest an attestation may be valid, in days.
pub const MAX_ATTESTATION_DAYS: i64 = 365;

/// The content hash of an entry: SHA-256 of its domain and canonical body.
pub type EntryHash = [u8; 32];

/// What an observer saw of a node at one moment. Signed by `observer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// The node that saw it and signs it (its key verifies the signature).
    pub observer: NodeId,
    /// The node it is about; never the observer, nor a node of its operator.
    pub subject: NodeId,
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// What was seen.
    pub kind: ObservationKind,
}

/// The kinds of observation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObservationKind {
    /// A heartbeat the subject answered or missed (uptime).
    Heartbeat {
        /// Whether it answered.
        answered: bool,
    },
    /// An instance assigned to the subject reached its desired state by the
    /// deadline, or did not (reliability).
    Outcome {
        /// Whether it did.
        success: bool,
        /// For a failure: the same spec ran fine elsewhere, so the failure is
        /// the node's and is charged to it (as BOINC does). Failures without
        /// it are not charged.
        #[serde(default)]
        ran_elsewhere: bool,
    },
    /// Measured versus promised resources (honesty): each a ratio
    /// `measured / promised`, finite and not negative.
    Probe {
        /// CPU ratio.
        cpu: f64,
        /// Memory ratio.
        memory: f64,
        /// Disk ratio.
        disk: f64,
    },
}

/// An operator's vouch for another operator. Signed by `issuer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// The vouching operator (its key verifies the signature).
    pub issuer: PublicKey,
    /// The operator vouched for; never the issuer.
    pub subject: PublicKey,
    /// How strongly, 0–1. A later attestation of the same pair supersedes an
    /// earlier one, so weight 0 revokes.
    pub weight: f64,
    /// When it was issued; its weight halves every 90 days from here.
    pub issued_at: DateTime<Utc>,
    /// When it stops counting; at most 365 days after `issued_at`.
    pub expires_at: DateTime<Utc>,
}

/// A node of the cluster and its operator, as cluster membership knows it.
///
/// Not signed here: membership is verified where it is learnt (the node's
/// signed gossip record, SPEC §8), and the daemon feeds it to the log from
/// there. A node has one registration; a different one for the same node is
/// rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRegistration {
    /// The node.
    pub node: NodeId,
    /// Its operator.
    pub operator: PublicKey,
    /// When it joined: no observation of it (or by it) may be older.
    pub joined_at: DateTime<Utc>,
    /// Its autonomous system, when known (label [`ASN_LABEL`]): attesters on
    /// one ASN count once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<String>,
}

/// A body that is signed: its domain and the key that must have signed it.
pub trait Signable: Serialize {
    /// The domain prefix of its signed bytes.
    const DOMAIN: &'static [u8];
    /// The public key that must verify its signature.
    fn signer(&self) -> [u8; 32];
}

impl Signable for Observation {
    const DOMAIN: &'static [u8] = OBSERVATION_DOMAIN;
    fn signer(&self) -> [u8; 32] {
        self.observer.0
    }
}

impl Signable for Attestation {
    const DOMAIN: &'static [u8] = ATTESTATION_DOMAIN;
    fn signer(&self) -> [u8; 32] {
        self.issuer.0
    }
}

/// Why a body could not be encoded as canonical JSON (it cannot happen for
/// this module's types; if it ever did, the entry would be rejected).
#[derive(Debug, thiserror::Error)]
#[error("encoding an evidence body as canonical JSON")]
pub struct EncodeError(#[source] pub serde_json::Error);

/// `domain + serde_json bytes of body`: what is signed and hashed.
pub fn canonical_bytes<T: Serialize>(domain: &[u8], body: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = domain.to_vec();
    serde_json::to_writer(&mut out, body).map_err(EncodeError)?;
    Ok(out)
}

/// A body with its signer's Ed25519 signature. JSON:
/// `{"body": {...}, "signature": "<128 hex characters>"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed<T> {
    /// What is signed.
    pub body: T,
    /// Ed25519 signature over [`canonical_bytes`] of the body.
    #[serde(serialize_with = "sig_to_hex", deserialize_with = "sig_from_hex")]
    pub signature: [u8; 64],
}

impl<T: Signable> Signed<T> {
    /// Signs `body` with `key`. The key must be the body's signer (observer
    /// or issuer), or the entry will be rejected on receipt.
    pub fn sign(key: &SigningKey, body: T) -> Result<Self, EncodeError> {
        let bytes = canonical_bytes(T::DOMAIN, &body)?;
        let signature = key.sign(&bytes).to_bytes();
        Ok(Self { body, signature })
    }

    /// Whether the signature is the body's signer's, over its canonical bytes
    /// (strict verification: no malleable or small-order forms).
    pub fn verify(&self) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.body.signer()) else {
            return false;
        };
        let Ok(bytes) = canonical_bytes(T::DOMAIN, &self.body) else {
            return false;
        };
        key.verify_strict(&bytes, &Signature::from_bytes(&self.signature))
            .is_ok()
    }
}

/// Signs an observation with the observer's node key.
pub fn sign_observation(
    key: &SigningKey,
    observation: Observation,
) -> Result<Signed<Observation>, EncodeError> {
    Signed::sign(key, observation)
}

/// Signs an attestation with the issuing operator's key.
pub fn sign_attestation(
    key: &SigningKey,
    attestation: Attestation,
) -> Result<Signed<Attestation>, EncodeError> {
    Signed::sign(key, attestation)
}

fn sig_to_hex<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(sig))
}

fn sig_from_hex<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
    let text = String::deserialize(d)?;
    let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        serde::de::Error::custom(format!("signature: expected 64 bytes, got {}", b.len()))
    })
}

/// One entry of the evidence log, as it travels by gossip. JSON is externally
/// tagged: `{"observation": {...}}`, `{"attestation": {...}}`, `{"node": {...}}`.
/// There is no variant for a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Entry {
    /// A signed observation.
    Observation(Signed<Observation>),
    /// A signed attestation.
    Attestation(Signed<Attestation>),
    /// A node's registration (from cluster membership).
    Node(NodeRegistration),
}

impl Entry {
    /// The content hash: SHA-256 of the body's domain and canonical bytes.
    /// The signature is left out, so the same body signed twice is one entry.
    pub fn hash(&self) -> Result<EntryHash, EncodeError> {
        let bytes = match self {
            Self::Observation(s) => canonical_bytes(OBSERVATION_DOMAIN, &s.body)?,
            Self::Attestation(s) => canonical_bytes(ATTESTATION_DOMAIN, &s.body)?,
            Self::Node(r) => canonical_bytes(REGISTRATION_DOMAIN, r)?,
        };
        Ok(Sha256::digest(&bytes).into())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn obs(observer: &SigningKey, subject: u8) -> Observation {
        Observation {
            observer: NodeId(observer.verifying_key().to_bytes()),
            subject: NodeId([subject; 32]),
            at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            kind: ObservationKind::Probe {
                cpu: 0.1 + 0.2,
                memory: 1.0 / 3.0,
                disk: 1e-300,
            },
        }
    }

    #[test]
    fn signatures_verify_round_trip_through_json_and_fail_when_tampered() {
        let k = key(1);
        let signed = sign_observation(&k, obs(&k, 9)).unwrap();
        assert!(signed.verify());
        let json = serde_json::to_string(&Entry::Observation(signed.clone())).unwrap();
        assert!(json.contains(&hex::encode(signed.signature)), "{json}");
        let back: Entry = serde_json::from_str(&json).unwrap();
        let Entry::Observation(back) = back else {
            panic!("{json}")
        };
        assert!(back.verify(), "floats must survive the JSON round trip");
        let mut tampered = back.clone();
        tampered.body.at += Duration::seconds(1);
        assert!(!tampered.verify());
        // Signed by someone other than the observer named in the body.
        let forged = sign_observation(&key(2), obs(&k, 9)).unwrap();
        assert!(!forged.verify());
    }

    #[test]
    fn domains_separate_kinds_and_hash_ignores_the_signature() {
        let k = key(3);
        let att = Attestation {
            issuer: PublicKey(k.verifying_key().to_bytes()),
            subject: PublicKey([4; 32]),
            weight: 0.5,
            issued_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            expires_at: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
        };
        let signed = sign_attestation(&k, att.clone()).unwrap();
        assert!(signed.verify());
        // The same bytes under the observation domain do not verify.
        let raw = canonical_bytes(OBSERVATION_DOMAIN, &att).unwrap();
        let other = k.sign(&raw).to_bytes();
        assert!(!Signed {
            body: att.clone(),
            signature: other
        }
        .verify());
        let a = Entry::Attestation(signed.clone()).hash().unwrap();
        let b = Entry::Attestation(Signed {
            body: att,
            signature: [0; 64],
        })
        .hash()
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_score_is_not_an_entry_and_unknown_fields_are_refused() {
        for text in [
            r#"{"score": 1.0}"#,
            r#"{"reputation_update": {"peer_id": "x", "score": 1.0}}"#,
            r#"{"node": {"node": "00", "operator": "00", "joined_at": "2026-01-01T00:00:00Z", "score": 1}}"#,
        ] {
            assert!(serde_json::from_str::<Entry>(text).is_err(), "{text}");
        }
        let k = key(5);
        let signed = sign_observation(&k, obs(&k, 6)).unwrap();
        let mut json = serde_json::to_value(Entry::Observation(signed)).unwrap();
        json["observation"]["score"] = serde_json::json!(1.0);
        assert!(serde_json::from_value::<Entry>(json).is_err());
    }
}
