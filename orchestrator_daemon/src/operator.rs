//! Who runs this node: its own key, or an operator's key proven by that
//! operator's signature over the node id (`--operator-proof`, made with
//! `ui operator prove NODE_ID`; `orchestrator_shared_types::operator`).
//!
//! The settings are resolved with the rest of the configuration; the proof is
//! checked at start, once the node key (and so the node id) is loaded, and
//! the daemon refuses to start without a valid one. Peers believe a claimed
//! operator only with that proof, published as the node's
//! [`OPERATOR_PROOF_LABEL`] label.

use orchestrator_shared_types::operator::{verify_operator_proof, OPERATOR_PROOF_LABEL};
use orchestrator_shared_types::{Node, PublicKey};

use super::config::{parse_key, DaemonConfig};
use crate::error::{Error, Result};
use crate::settings::Settings;

/// The operator and its proof from `s`: a proof needs an operator, and an
/// empty proof counts as none.
pub(super) fn resolve(s: &Settings) -> Result<(Option<PublicKey>, Option<String>)> {
    let operator = s.operator.as_deref().map(parse_key).transpose()?;
    let proof = s
        .operator_proof
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    if proof.is_some() && operator.is_none() {
        return Err(Error::Config(
            "--operator-proof needs --operator KEY, the operator it proves".into(),
        ));
    }
    Ok((operator, proof))
}

/// Sets `node`'s operator from `config` and, for an operator other than the
/// node's own key, checks the proof and publishes it as the
/// [`OPERATOR_PROOF_LABEL`] label; refuses a missing or wrong proof, saying
/// how to make one.
pub(super) fn claim(config: &DaemonConfig, node: &mut Node) -> Result<()> {
    if node.labels.contains_key(OPERATOR_PROOF_LABEL) {
        return Err(Error::Config(format!(
            "label {OPERATOR_PROOF_LABEL} is reserved: give the proof with --operator-proof"
        )));
    }
    let own = PublicKey(node.id.0);
    let operator = config.operator.unwrap_or(own);
    node.operator = operator;
    if operator == own {
        if config.operator_proof.is_some() {
            tracing::warn!(
                "--operator is this node's own key: the operator proof is not needed and not \
                 published"
            );
        }
        return Ok(());
    }
    let how = format!(
        "have the operator (whose `ui identity show` prints {operator}) run \
         `ui operator prove {}` and pass what it prints with --operator-proof \
         (env UNIVRS_OPERATOR_PROOF, file key operator_proof); \
         `orchestrator_daemon node-id --data-dir {}` prints this node's id",
        node.id,
        config.data_dir.display()
    );
    let Some(proof) = config.operator_proof.as_deref() else {
        return Err(Error::Config(format!(
            "operator {operator} is not this node's own key, so it needs the operator's proof \
             that it runs node {}: {how}",
            node.id
        )));
    };
    verify_operator_proof(&node.id, &operator, proof)
        .map_err(|e| Error::Config(format!("--operator-proof: {e}: {how}")))?;
    node.labels
        .insert(OPERATOR_PROOF_LABEL.to_owned(), proof.trim().to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use orchestrator_shared_types::operator::{prove_operator, proven_operator};
    use orchestrator_shared_types::{NodeId, NodeStatus, Resources};

    use super::*;

    fn node(seed: u8) -> Node {
        Node {
            id: NodeId(
                SigningKey::from_bytes(&[seed; 32])
                    .verifying_key()
                    .to_bytes(),
            ),
            address: "127.0.0.1:9090".into(),
            status: NodeStatus::Ready,
            unschedulable: false,
            labels: Default::default(),
            taints: Vec::new(),
            resources_capacity: Resources::new(1000, 1 << 30),
            resources_allocatable: Resources::new(1000, 1 << 30),
            operator: PublicKey([0; 32]),
            joined_at: chrono::Utc::now(),
        }
    }

    fn operator() -> (SigningKey, PublicKey) {
        let k = SigningKey::from_bytes(&[9; 32]);
        let p = PublicKey(k.verifying_key().to_bytes());
        (k, p)
    }

    fn config(operator: Option<PublicKey>, proof: Option<String>) -> DaemonConfig {
        let mut c = DaemonConfig::for_test("/tmp/univrs-data".into());
        c.operator = operator;
        c.operator_proof = proof;
        c
    }

    #[test]
    fn a_node_runs_itself_without_a_proof() {
        let mut n = node(1);
        claim(&config(None, None), &mut n).unwrap();
        assert_eq!(n.operator, PublicKey(n.id.0));
        assert!(n.labels.is_empty());
        let mut n = node(1);
        let own = PublicKey(n.id.0);
        claim(&config(Some(own), Some("unneeded".into())), &mut n).unwrap();
        assert_eq!(n.operator, own);
        assert!(n.labels.is_empty(), "an unneeded proof is not published");
    }

    #[test]
    fn a_foreign_operator_needs_its_proof() {
        let (key, op) = operator();
        let mut n = node(1);
        let e = claim(&config(Some(op), None), &mut n)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("ui operator prove {}", n.id)), "{e}");
        assert!(e.contains("--operator-proof"), "{e}");
        assert!(e.contains("orchestrator_daemon node-id --data-dir /tmp/univrs-data"));

        let other = prove_operator(&key, &node(2).id);
        let e = claim(&config(Some(op), Some(other)), &mut node(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
        let e = claim(&config(Some(op), Some("%%".into())), &mut node(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not base64url"), "{e}");

        let mut n = node(1);
        let proof = prove_operator(&key, &n.id);
        claim(&config(Some(op), Some(proof.clone())), &mut n).unwrap();
        assert_eq!(n.operator, op);
        assert_eq!(n.labels[OPERATOR_PROOF_LABEL], proof);
        assert_eq!(proven_operator(&n), op, "peers believe it");
    }

    #[test]
    fn the_proof_label_cannot_be_set_as_a_label() {
        let mut n = node(1);
        n.labels
            .insert(OPERATOR_PROOF_LABEL.into(), "anything".into());
        let e = claim(&config(None, None), &mut n).unwrap_err().to_string();
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn a_proof_needs_an_operator() {
        let flags = Settings {
            operator_proof: Some("abc".into()),
            ..Settings::default()
        };
        let e = resolve(&flags).unwrap_err();
        assert!(e.to_string().contains("needs --operator"), "{e}");
        let (_, op) = operator();
        let file: Settings = toml::from_str(&format!(
            "operator = \"{op}\"\noperator_proof = \" abc \"\n"
        ))
        .unwrap();
        let (o, p) = resolve(&Settings::default().over(file)).unwrap();
        assert_eq!((o, p.as_deref()), (Some(op), Some("abc")));
        let flags = Settings {
            operator_proof: Some("  ".into()),
            ..Settings::default()
        };
        assert_eq!(resolve(&flags).unwrap(), (None, None));
    }
}
