//! `ui operator prove NODE_ID`: the proof, signed with the user's identity
//! key, that the user operates a node (`orchestrator_shared_types::operator`).
//!
//! The node's daemon takes it with `--operator YOUR_KEY --operator-proof
//! PROOF` and publishes it in its gossip record; without it the daemon
//! refuses to start under a foreign operator key, and peers would list the
//! node as run by its own key. Nothing is sent anywhere: the proof goes to
//! stdout, the flags to pass it with to stderr.

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use orchestrator_shared_types::operator::prove_operator;
use orchestrator_shared_types::{NodeId, PublicKey};
use serde_json::json;

use super::Context;
use crate::cli::{OperatorCommand, OutputFormat};
use crate::output::emit;

/// Runs `ui operator ...`.
pub fn run(ctx: &Context, cmd: &OperatorCommand) -> anyhow::Result<()> {
    match cmd {
        OperatorCommand::Prove { node_id } => {
            // Check the argument before asking for the passphrase.
            let node = parse_node_id(node_id)?;
            let key = ctx.signing_key()?;
            let proof = Proof::new(&key, node);
            emit(
                ctx.output(),
                &json!({
                    "node_id": node.to_hex(),
                    "operator": proof.operator.to_hex(),
                    "proof": proof.proof,
                }),
                &proof.proof,
            );
            if ctx.output() == OutputFormat::Table {
                eprintln!("{}", proof.flags());
            }
            Ok(())
        }
    }
}

/// A node id as `orchestrator_daemon node-id` prints it.
pub fn parse_node_id(text: &str) -> anyhow::Result<NodeId> {
    text.trim().parse::<NodeId>().with_context(|| {
        "give the node's id as 64 hex characters (`orchestrator_daemon node-id --data-dir DIR` \
         prints it on the node)"
    })
}

/// A signed proof and who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The operator: the user's public key.
    pub operator: PublicKey,
    /// The proof (base64url, no padding).
    pub proof: String,
}

impl Proof {
    /// The proof that the owner of `key` operates `node`.
    pub fn new(key: &SigningKey, node: NodeId) -> Self {
        Self {
            operator: PublicKey(key.verifying_key().to_bytes()),
            proof: prove_operator(key, &node),
        }
    }

    /// What to tell the daemon.
    pub fn flags(&self) -> String {
        format!(
            "start the node's daemon with: --operator {} --operator-proof {}",
            self.operator.to_hex(),
            self.proof
        )
    }
}

#[cfg(test)]
mod tests {
    use orchestrator_shared_types::operator::verify_operator_proof;

    use super::*;

    #[test]
    fn node_ids_are_64_hex_characters() {
        let id = "ab".repeat(32);
        assert_eq!(
            parse_node_id(&format!(" {id}\n")).expect("parses").to_hex(),
            id
        );
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            let err = format!("{:#}", parse_node_id(bad).expect_err("refused"));
            assert!(
                err.contains("orchestrator_daemon node-id"),
                "{bad:?}: {err}"
            );
            assert!(err.contains("is not a valid node id"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_proof_verifies_for_the_node_and_the_users_key() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let node = NodeId([7; 32]);
        let proof = Proof::new(&key, node);
        assert_eq!(proof.operator.0, key.verifying_key().to_bytes());
        assert!(verify_operator_proof(&node, &proof.operator, &proof.proof).is_ok());
        assert!(verify_operator_proof(&NodeId([8; 32]), &proof.operator, &proof.proof).is_err());
        let flags = proof.flags();
        assert!(
            flags.ends_with(&format!(
                "--operator {} --operator-proof {}",
                proof.operator.to_hex(),
                proof.proof
            )),
            "{flags}"
        );
    }
}
