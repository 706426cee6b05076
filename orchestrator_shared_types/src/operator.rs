//! Operator proofs: who runs a node, proven by the operator's own key.
//!
//! A node names its operator in [`Node::operator`]. Without more, anyone
//! could start a node that claims a well-attested operator and borrow its
//! attestation trust (or pass a user's `allowed_operators`). So a node run by
//! another key than its own carries, in its label [`OPERATOR_PROOF_LABEL`],
//! the operator's Ed25519 signature (base64url, no padding) over
//!
//! ```text
//! univrs-operator-proof-v1\n<node id hex>\n<operator public key hex>
//! ```
//!
//! made once with `ui operator prove NODE_ID` and given to the daemon with
//! `--operator-proof`. [`proven_operator`] is what every reader of a node
//! record should believe: the claimed operator when it is the node's own key
//! or the proof verifies, else the node's own key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ids::{NodeId, PublicKey};
use crate::node::Node;

/// The node label carrying the operator's proof.
pub const OPERATOR_PROOF_LABEL: &str = "univrs.io/operator-proof";

/// First line of the signed message; a new format gets a new one.
const DOMAIN: &str = "univrs-operator-proof-v1";

/// Why an operator proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorProofError {
    /// The proof is not base64url without padding.
    #[error("operator proof is not base64url: {0}")]
    NotBase64(#[source] base64::DecodeError),
    /// The proof decodes to something other than a 64-byte signature.
    #[error("operator proof is {0} bytes, expected a 64-byte signature")]
    WrongLength(usize),
    /// The operator's key is not a valid Ed25519 public key.
    #[error("operator {0} is not a valid ed25519 public key")]
    InvalidOperatorKey(PublicKey),
    /// The signature is not the operator's over this node id.
    #[error("operator proof does not verify for node {node} and operator {operator}")]
    DoesNotVerify {
        /// The node it was checked for.
        node: NodeId,
        /// The operator it was checked for.
        operator: PublicKey,
    },
}

/// The bytes the operator signs.
fn message(node: &NodeId, operator: &PublicKey) -> Vec<u8> {
    format!("{DOMAIN}\n{}\n{}", node.to_hex(), operator.to_hex()).into_bytes()
}

/// The proof that the owner of `operator` runs `node`: base64url (no padding)
/// of the Ed25519 signature over the domain-separated message.
pub fn prove_operator(operator: &SigningKey, node: &NodeId) -> String {
    let public = PublicKey(operator.verifying_key().to_bytes());
    B64URL.encode(operator.sign(&message(node, &public)).to_bytes())
}

/// Checks that `proof` is `operator`'s signature for `node` (strict Ed25519
/// verification; surrounding whitespace is ignored).
pub fn verify_operator_proof(
    node: &NodeId,
    operator: &PublicKey,
    proof: &str,
) -> Result<(), OperatorProofError> {
    let bytes = B64URL
        .decode(proof.trim())
        .map_err(OperatorProofError::NotBase64)?;
    let signature: [u8; 64] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| OperatorProofError::WrongLength(b.len()))?;
    let key = VerifyingKey::from_bytes(operator.as_bytes())
        .map_err(|_| OperatorProofError::InvalidOperatorKey(*operator))?;
    key.verify_strict(&message(node, operator), &Signature::from_bytes(&signature))
        .map_err(|_| OperatorProofError::DoesNotVerify {
            node: *node,
            operator: *operator,
        })
}

/// The operator to believe for `node`: `node.operator` when it is the node's
/// own key or the proof in its [`OPERATOR_PROOF_LABEL`] label verifies, else
/// the node's own key.
pub fn proven_operator(node: &Node) -> PublicKey {
    let own = PublicKey(node.id.0);
    if node.operator == own {
        return own;
    }
    match node.labels.get(OPERATOR_PROOF_LABEL) {
        Some(proof) if verify_operator_proof(&node.id, &node.operator, proof).is_ok() => {
            node.operator
        }
        _ => own,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::node::NodeStatus;
    use crate::resources::Resources;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(key: &SigningKey) -> PublicKey {
        PublicKey(key.verifying_key().to_bytes())
    }

    fn node_id(key: &SigningKey) -> NodeId {
        NodeId(key.verifying_key().to_bytes())
    }

    /// The node of `node_key` claiming `operator`, with `proof` as its label.
    fn node(node_key: &SigningKey, operator: PublicKey, proof: Option<String>) -> Node {
        Node {
            id: node_id(node_key),
            address: "127.0.0.1:9090".into(),
            status: NodeStatus::Ready,
            unschedulable: false,
            labels: proof
                .map(|p| BTreeMap::from([(OPERATOR_PROOF_LABEL.to_owned(), p)]))
                .unwrap_or_default(),
            taints: Vec::new(),
            resources_capacity: Resources::new(1000, 1 << 30),
            resources_allocatable: Resources::new(1000, 1 << 30),
            operator,
            joined_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_proof_verifies_for_its_node_and_operator_only() {
        let (op, n) = (key(1), key(2));
        let proof = prove_operator(&op, &node_id(&n));
        assert_eq!(proof.len(), 86, "64 bytes, base64url without padding");
        assert!(!proof.contains('='));
        assert_eq!(
            verify_operator_proof(&node_id(&n), &public(&op), &proof),
            Ok(())
        );
        assert_eq!(
            verify_operator_proof(&node_id(&n), &public(&op), &format!(" {proof}\n")),
            Ok(()),
            "whitespace around it is ignored"
        );
        // Another node.
        let err = verify_operator_proof(&node_id(&key(3)), &public(&op), &proof).unwrap_err();
        assert!(matches!(err, OperatorProofError::DoesNotVerify { .. }));
        assert!(err.to_string().contains("does not verify"), "{err}");
        // Another operator.
        assert!(matches!(
            verify_operator_proof(&node_id(&n), &public(&key(3)), &proof),
            Err(OperatorProofError::DoesNotVerify { .. })
        ));
        // Signed by another key for this pair.
        let other = B64URL.encode(key(3).sign(&message(&node_id(&n), &public(&op))).to_bytes());
        assert!(verify_operator_proof(&node_id(&n), &public(&op), &other).is_err());
    }

    #[test]
    fn the_signed_message_is_the_documented_one() {
        let (op, n) = (key(1), key(2));
        let text = format!(
            "univrs-operator-proof-v1\n{}\n{}",
            node_id(&n).to_hex(),
            public(&op).to_hex()
        );
        let signature = op.sign(text.as_bytes());
        assert_eq!(
            prove_operator(&op, &node_id(&n)),
            B64URL.encode(signature.to_bytes())
        );
    }

    #[test]
    fn malformed_proofs_say_what_is_wrong() {
        let (op, n) = (public(&key(1)), node_id(&key(2)));
        let err = verify_operator_proof(&n, &op, "!!").unwrap_err();
        assert!(matches!(err, OperatorProofError::NotBase64(_)), "{err}");
        assert!(err.to_string().contains("not base64url"), "{err}");
        let padded = format!("{}==", B64URL.encode([0u8; 10]));
        assert!(matches!(
            verify_operator_proof(&n, &op, &padded),
            Err(OperatorProofError::NotBase64(_))
        ));
        let err = verify_operator_proof(&n, &op, "AAAA").unwrap_err();
        assert_eq!(err, OperatorProofError::WrongLength(3));
        assert_eq!(
            err.to_string(),
            "operator proof is 3 bytes, expected a 64-byte signature"
        );
        assert_eq!(
            verify_operator_proof(&n, &op, ""),
            Err(OperatorProofError::WrongLength(0))
        );
        let zeros = B64URL.encode([0u8; 64]);
        assert!(matches!(
            verify_operator_proof(&n, &op, &zeros),
            Err(OperatorProofError::DoesNotVerify { .. })
        ));
    }

    #[test]
    fn an_operator_key_that_is_not_a_curve_point_is_refused() {
        // y = 2 has no x on the curve: not a valid compressed point.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let bad = PublicKey(bytes);
        assert!(VerifyingKey::from_bytes(&bytes).is_err());
        let proof = B64URL.encode([1u8; 64]);
        assert_eq!(
            verify_operator_proof(&node_id(&key(2)), &bad, &proof),
            Err(OperatorProofError::InvalidOperatorKey(bad))
        );
    }

    #[test]
    fn proven_operator_believes_only_proven_claims() {
        let (op, n) = (key(1), key(2));
        let own = PublicKey(node_id(&n).0);
        // Run by itself: no proof needed.
        assert_eq!(proven_operator(&node(&n, own, None)), own);
        // A foreign operator without a proof: the node's own key.
        assert_eq!(proven_operator(&node(&n, public(&op), None)), own);
        // With a valid proof: the operator.
        let proof = prove_operator(&op, &node_id(&n));
        assert_eq!(
            proven_operator(&node(&n, public(&op), Some(proof.clone()))),
            public(&op)
        );
        // Another node's proof, or a proof claimed for another operator.
        let elsewhere = prove_operator(&op, &node_id(&key(3)));
        assert_eq!(
            proven_operator(&node(&n, public(&op), Some(elsewhere))),
            own
        );
        assert_eq!(
            proven_operator(&node(&n, public(&key(4)), Some(proof))),
            own
        );
        assert_eq!(
            proven_operator(&node(&n, public(&op), Some("garbage".into()))),
            own
        );
    }

    proptest! {
        #[test]
        fn arbitrary_proofs_never_panic_and_never_verify(s in ".{0,200}") {
            let (op, n) = (public(&key(1)), node_id(&key(2)));
            prop_assert!(verify_operator_proof(&n, &op, &s).is_err());
            let claimed = node(&key(2), op, Some(s));
            prop_assert_eq!(proven_operator(&claimed), PublicKey(n.0));
        }

        #[test]
        fn arbitrary_base64_of_any_length_never_verifies(
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
            op in any::<[u8; 32]>(),
        ) {
            let n = node_id(&key(2));
            let proof = B64URL.encode(&bytes);
            prop_assert!(verify_operator_proof(&n, &PublicKey(op), &proof).is_err());
        }
    }
}
