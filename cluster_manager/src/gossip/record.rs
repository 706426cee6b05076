//! The signed node record: the one chitchat key every node publishes.
//!
//! The value of key [`RECORD_KEY`] is `"<base64 signature>.<json>"`, one key so
//! that a peer never sees half an update. The JSON is a [`RecordBody`]: the
//! [`Node`], the chitchat generation and a sequence number. The Ed25519
//! signature, by the node's own key (its [`NodeId`]), covers a domain-separated
//! message binding the record to the cluster, the chitchat id (node id,
//! generation and gossip address) and the exact JSON bytes:
//!
//! ```text
//! univrs-node-record-v1\n<cluster id>\n<node id hex>\n<generation>\n<gossip addr>\n<json>
//! ```
//!
//! A record replayed under another generation, address or cluster therefore
//! fails verification, as does a record signed by any key but the node's.
//!
//! A record that verifies may still claim an operator it cannot prove (no
//! valid `univrs.io/operator-proof` label): [`drop_unproven_operator`] lists
//! such a node as run by its own key, so trust rules and reputation only ever
//! see proven operators.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chitchat::ChitchatId;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use orchestrator_shared_types::ids::IdParseError;
use orchestrator_shared_types::operator::proven_operator;
use orchestrator_shared_types::{Node, NodeId, PublicKey};
use serde::{Deserialize, Serialize};

/// The chitchat key holding a node's signed record.
pub const RECORD_KEY: &str = "node";
/// First line of every signed message; a new format gets a new one.
const DOMAIN: &str = "univrs-node-record-v1";

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecordBody {
    /// The member record.
    pub node: Node,
    /// The chitchat generation it was published under.
    pub generation: u64,
    /// Grows with every record the node publishes within a generation.
    pub seq: u64,
}

/// Why a gossiped record was rejected.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The chitchat node id is not a [`NodeId`].
    #[error("chitchat node id is not a node id")]
    NodeId(#[source] IdParseError),
    /// The node id is not a valid Ed25519 public key.
    #[error("node id is not an ed25519 public key")]
    PublicKey(#[source] ed25519_dalek::SignatureError),
    /// No `.` between signature and JSON.
    #[error("record has no '.' between signature and body")]
    Format,
    /// The signature is not base64.
    #[error("record signature is not base64")]
    Base64(#[source] base64::DecodeError),
    /// The signature has the wrong length.
    #[error("record signature has {0} bytes, expected 64")]
    SignatureLength(usize),
    /// The signature does not verify against the node id.
    #[error("record signature does not verify against the node id")]
    Signature(#[source] ed25519_dalek::SignatureError),
    /// The body is not a record.
    #[error("record body is not valid json")]
    Json(#[source] serde_json::Error),
    /// The record is about another node.
    #[error("record is about node {record}, gossiped as {chitchat}")]
    IdMismatch {
        /// The id in the record.
        record: NodeId,
        /// The chitchat node id it came under.
        chitchat: NodeId,
    },
    /// The record names another generation.
    #[error("record generation {record} differs from chitchat generation {chitchat}")]
    GenerationMismatch {
        /// The generation in the record.
        record: u64,
        /// The chitchat generation it came under.
        chitchat: u64,
    },
}

/// Encodes and signs `body` as published by `chitchat_id` in `cluster_id`.
pub(crate) fn encode(
    key: &SigningKey,
    cluster_id: &str,
    chitchat_id: &ChitchatId,
    body: &RecordBody,
) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(body)?;
    let signature = key.sign(&signed_message(cluster_id, chitchat_id, &json));
    let mut value = BASE64.encode(signature.to_bytes());
    value.push('.');
    value.push_str(&json);
    Ok(value)
}

/// Checks a record gossiped by `chitchat_id` in `cluster_id` and returns it.
pub(crate) fn verify(
    cluster_id: &str,
    chitchat_id: &ChitchatId,
    value: &str,
) -> Result<RecordBody, RecordError> {
    let node_id: NodeId = chitchat_id.node_id.parse().map_err(RecordError::NodeId)?;
    let key = VerifyingKey::from_bytes(node_id.as_bytes()).map_err(RecordError::PublicKey)?;
    let (signature, json) = value.split_once('.').ok_or(RecordError::Format)?;
    let signature = BASE64.decode(signature).map_err(RecordError::Base64)?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|s: Vec<u8>| RecordError::SignatureLength(s.len()))?;
    key.verify_strict(
        &signed_message(cluster_id, chitchat_id, json),
        &Signature::from_bytes(&signature),
    )
    .map_err(RecordError::Signature)?;
    let body: RecordBody = serde_json::from_str(json).map_err(RecordError::Json)?;
    if body.node.id != node_id {
        return Err(RecordError::IdMismatch {
            record: body.node.id,
            chitchat: node_id,
        });
    }
    if body.generation != chitchat_id.generation_id {
        return Err(RecordError::GenerationMismatch {
            record: body.generation,
            chitchat: chitchat_id.generation_id,
        });
    }
    Ok(body)
}

/// Replaces an operator claim of `node` that is not proven (see
/// [`proven_operator`]) by the node's own key; returns the claim it dropped.
pub(crate) fn drop_unproven_operator(node: &mut Node) -> Option<PublicKey> {
    let proven = proven_operator(node);
    if proven == node.operator {
        return None;
    }
    Some(std::mem::replace(&mut node.operator, proven))
}

fn signed_message(cluster_id: &str, chitchat_id: &ChitchatId, json: &str) -> Vec<u8> {
    format!(
        "{DOMAIN}\n{cluster_id}\n{}\n{}\n{}\n{json}",
        chitchat_id.node_id, chitchat_id.generation_id, chitchat_id.gossip_advertise_addr
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_node;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A record of the node of `key`, its chitchat id and its encoded value.
    fn signed(key: &SigningKey) -> (RecordBody, ChitchatId, String) {
        let mut node = test_node(1, 1000, 1 << 30);
        node.id = NodeId(key.verifying_key().to_bytes());
        let id = ChitchatId::new(node.id.to_string(), 7, "127.0.0.1:7946".parse().unwrap());
        let body = RecordBody {
            node,
            generation: 7,
            seq: 3,
        };
        let value = encode(key, "univrs", &id, &body).unwrap();
        (body, id, value)
    }

    #[test]
    fn a_signed_record_verifies() {
        let (body, id, value) = signed(&key(1));
        assert_eq!(verify("univrs", &id, &value).unwrap(), body);
    }

    #[test]
    fn a_record_signed_by_another_key_is_rejected() {
        let (mut body, id, _) = signed(&key(1));
        body.node.address = "evil:1".into();
        let forged = encode(&key(2), "univrs", &id, &body).unwrap();
        assert!(matches!(
            verify("univrs", &id, &forged),
            Err(RecordError::Signature(_))
        ));
    }

    #[test]
    fn a_record_replayed_elsewhere_is_rejected() {
        let (_, id, value) = signed(&key(1));
        assert!(verify("other", &id, &value).is_err(), "other cluster");
        let mut other = id.clone();
        other.generation_id = 8;
        assert!(
            verify("univrs", &other, &value).is_err(),
            "other generation"
        );
        let mut other = id.clone();
        other.gossip_advertise_addr = "127.0.0.1:7947".parse().unwrap();
        assert!(verify("univrs", &other, &value).is_err(), "other address");
        let mut other = id;
        other.node_id = NodeId(key(2).verifying_key().to_bytes()).to_string().into();
        assert!(verify("univrs", &other, &value).is_err(), "other node");
    }

    #[test]
    fn a_record_about_another_node_is_rejected_even_if_signed() {
        let k = key(1);
        let (mut body, id, _) = signed(&k);
        body.node.id = NodeId([9; 32]);
        let value = encode(&k, "univrs", &id, &body).unwrap();
        assert!(matches!(
            verify("univrs", &id, &value),
            Err(RecordError::IdMismatch { .. })
        ));
        let (mut body, id, _) = signed(&k);
        body.generation = 6;
        let value = encode(&k, "univrs", &id, &body).unwrap();
        assert!(matches!(
            verify("univrs", &id, &value),
            Err(RecordError::GenerationMismatch {
                record: 6,
                chitchat: 7
            })
        ));
    }

    #[test]
    fn only_proven_operator_claims_are_kept() {
        use orchestrator_shared_types::operator::{prove_operator, OPERATOR_PROOF_LABEL};
        let (node_key, operator) = (key(1), key(2));
        let operator_key = PublicKey(operator.verifying_key().to_bytes());
        let (body, _, _) = signed(&node_key);
        let own = PublicKey(body.node.id.0);

        let mut claimed = body.node.clone();
        claimed.operator = operator_key;
        assert_eq!(drop_unproven_operator(&mut claimed), Some(operator_key));
        assert_eq!(claimed.operator, own);

        let mut proven = body.node.clone();
        proven.operator = operator_key;
        proven.labels.insert(
            OPERATOR_PROOF_LABEL.into(),
            prove_operator(&operator, &proven.id),
        );
        let before = proven.clone();
        assert_eq!(drop_unproven_operator(&mut proven), None);
        assert_eq!(proven, before);

        let mut own_run = body.node;
        own_run.operator = own;
        assert_eq!(drop_unproven_operator(&mut own_run), None);
        assert_eq!(own_run.operator, own);
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let (_, id, value) = signed(&key(1));
        let (sig, json) = value.split_once('.').unwrap();
        let cases = [
            ("no separator".to_owned(), "no '.'"),
            (format!("!!!.{json}"), "not base64"),
            (format!("AAAA.{json}"), "3 bytes"),
            (
                format!("{sig}.{}", &json[..json.len() - 1]),
                "does not verify",
            ),
            (String::new(), "no '.'"),
        ];
        for (value, reason) in cases {
            let err = verify("univrs", &id, &value).unwrap_err().to_string();
            assert!(err.contains(reason), "{value:?}: {err}");
        }
        let mut not_a_node = id;
        not_a_node.node_id = "node-1".into();
        let err = verify("univrs", &not_a_node, &value).unwrap_err();
        assert!(matches!(err, RecordError::NodeId(_)), "{err}");
    }
}
