//! The evidence log: append-only, verified on receipt, deduplicated by content
//! hash, and order-independent — every computation reads evidence sorted by
//! (time, content hash) and [`EvidenceLog::state_hash`] is over the sorted set
//! of hashes, so two replicas holding the same entries agree whatever order
//! they arrived in. (An observation needs its nodes' registrations first; one
//! that arrives early is rejected as [`Rejected::UnknownNode`] and accepted
//! when gossip offers it again.)

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use orchestrator_shared_types::{Node, NodeId, PublicKey};
use sha2::{Digest, Sha256};

use super::{
    Attestation, EncodeError, Entry, EntryHash, NodeRegistration, Observation, ObservationKind,
    MAX_ATTESTATION_DAYS,
};
use crate::reputation::NodeHistory;

/// The node label carrying its autonomous system number.
pub const ASN_LABEL: &str = "univrs.io/asn";

/// Why an entry was refused. Refusing changes nothing in the log.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// The signature does not verify with the observer's or issuer's key.
    #[error("refusing {what} signed for {signer}: the signature does not verify")]
    BadSignature {
        /// `observation` or `attestation`.
        what: &'static str,
        /// The key it claims to be signed by.
        signer: String,
    },
    /// Self-asserted: the observer is the node observed.
    #[error("refusing self-asserted observation: node {observer} observed itself")]
    SelfObserved {
        /// The node.
        observer: NodeId,
    },
    /// Self-asserted: observer and subject have the same operator.
    #[error(
        "refusing self-asserted observation: observer {observer} and subject {subject} are both operated by {operator}"
    )]
    SameOperator {
        /// The observer.
        observer: NodeId,
        /// The subject.
        subject: NodeId,
        /// Their common operator.
        operator: PublicKey,
    },
    /// An observation names a node the log has no registration for.
    #[error("refusing observation: node {node} is not registered (cluster membership) yet")]
    UnknownNode {
        /// The unregistered node.
        node: NodeId,
    },
    /// An observation older than its observer's or subject's registration.
    #[error("refusing observation at {at}: node {node} only joined at {joined_at}")]
    BeforeJoin {
        /// The node that had not joined yet.
        node: NodeId,
        /// The observation's time.
        at: DateTime<Utc>,
        /// When the node joined.
        joined_at: DateTime<Utc>,
    },
    /// A probe ratio that is negative or not finite.
    #[error(
        "refusing probe of {subject}: ratios must be finite and not negative, got cpu {cpu}, memory {memory}, disk {disk}"
    )]
    BadProbe {
        /// The node probed.
        subject: NodeId,
        /// CPU ratio.
        cpu: f64,
        /// Memory ratio.
        memory: f64,
        /// Disk ratio.
        disk: f64,
    },
    /// An operator attesting itself.
    #[error("refusing attestation: operator {operator} attests itself")]
    SelfAttestation {
        /// The operator.
        operator: PublicKey,
    },
    /// A weight outside 0–1.
    #[error("refusing attestation by {issuer}: weight {weight} is not between 0 and 1")]
    BadWeight {
        /// The issuer.
        issuer: PublicKey,
        /// The weight.
        weight: f64,
    },
    /// Expiry not after issue, or more than 365 days after it.
    #[error(
        "refusing attestation by {issuer}: valid from {issued_at} to {expires_at}, must end after it starts and within 365 days"
    )]
    BadExpiry {
        /// The issuer.
        issuer: PublicKey,
        /// Issued.
        issued_at: DateTime<Utc>,
        /// Expires.
        expires_at: DateTime<Utc>,
    },
    /// A node registered again with different details.
    #[error("refusing registration of node {node}: it is already registered to {operator} (joined {joined_at})")]
    ConflictingRegistration {
        /// The node.
        node: NodeId,
        /// Its operator as registered.
        operator: PublicKey,
        /// Its join time as registered.
        joined_at: DateTime<Utc>,
    },
    /// A node registration offered by gossip: registrations are not signed
    /// evidence and come only from the daemon's own (verified) membership.
    #[error("refusing node registration of {node} from gossip: registrations come from cluster membership")]
    RegistrationFromGossip {
        /// The node it would register.
        node: NodeId,
    },
    /// The body could not be encoded (cannot happen for these types).
    #[error(transparent)]
    Unencodable(#[from] EncodeError),
}

/// What the log knows of an operator, from its nodes' registrations.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperatorRecord {
    /// Its nodes.
    pub nodes: BTreeSet<NodeId>,
    /// When its oldest node joined: the operator's age.
    pub first_joined: Option<DateTime<Utc>>,
    /// The ASNs its nodes are on, where known.
    pub asns: BTreeSet<String>,
}

/// Attestations of one subject by one issuer, sorted by (issued_at, hash).
type Versions = Vec<(DateTime<Utc>, EntryHash, Attestation)>;

/// The append-only evidence log (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct EvidenceLog {
    entries: Vec<Entry>,
    hashes: BTreeSet<EntryHash>,
    nodes: BTreeMap<NodeId, NodeRegistration>,
    operators: BTreeMap<PublicKey, OperatorRecord>,
    histories: BTreeMap<NodeId, NodeHistory>,
    /// subject → issuer → versions.
    attestations: BTreeMap<PublicKey, BTreeMap<PublicKey, Versions>>,
}

impl EvidenceLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `entry` and appends it: `Ok(true)` when new, `Ok(false)` for a
    /// duplicate (same content hash; ignored), `Err` when refused (the log is
    /// unchanged). For local input and replay from storage; entries from
    /// gossip go through [`Self::receive`].
    pub fn append(&mut self, entry: Entry) -> Result<bool, Rejected> {
        let hash = entry.hash()?;
        if self.hashes.contains(&hash) {
            return Ok(false);
        }
        match &entry {
            Entry::Observation(signed) => {
                let observer_operator = self.check_observation(&signed.body)?;
                if !signed.verify() {
                    return Err(Rejected::BadSignature {
                        what: "observation",
                        signer: signed.body.observer.to_hex(),
                    });
                }
                let body = &signed.body;
                self.histories.entry(body.subject).or_default().record(
                    observer_operator,
                    body.at,
                    hash,
                    &body.kind,
                );
            }
            Entry::Attestation(signed) => {
                check_attestation(&signed.body)?;
                if !signed.verify() {
                    return Err(Rejected::BadSignature {
                        what: "attestation",
                        signer: signed.body.issuer.to_hex(),
                    });
                }
                let a = &signed.body;
                let versions = self
                    .attestations
                    .entry(a.subject)
                    .or_default()
                    .entry(a.issuer)
                    .or_default();
                let key = (a.issued_at, hash);
                let at = versions.partition_point(|(t, h, _)| (*t, *h) < key);
                versions.insert(at, (a.issued_at, hash, a.clone()));
            }
            Entry::Node(reg) => {
                if let Some(old) = self.nodes.get(&reg.node) {
                    return Err(Rejected::ConflictingRegistration {
                        node: reg.node,
                        operator: old.operator,
                        joined_at: old.joined_at,
                    });
                }
                let op = self.operators.entry(reg.operator).or_default();
                op.nodes.insert(reg.node);
                op.first_joined = Some(
                    op.first_joined
                        .map_or(reg.joined_at, |t| t.min(reg.joined_at)),
                );
                if let Some(asn) = &reg.asn {
                    op.asns.insert(asn.clone());
                }
                self.nodes.insert(reg.node, reg.clone());
            }
        }
        self.hashes.insert(hash);
        self.entries.push(entry);
        Ok(true)
    }

    /// Verifies and appends an entry received by gossip: as [`Self::append`],
    /// but a [`NodeRegistration`] is refused — registrations are unsigned and
    /// would let anyone backdate a node (and so an attester's age); they come
    /// from cluster membership through [`Self::register`].
    pub fn receive(&mut self, entry: Entry) -> Result<bool, Rejected> {
        if let Entry::Node(reg) = &entry {
            if self.nodes.get(&reg.node) == Some(reg) {
                return Ok(false);
            }
            return Err(Rejected::RegistrationFromGossip { node: reg.node });
        }
        self.append(entry)
    }

    /// Checks an observation against the registrations (not its signature);
    /// gives the observer's operator.
    fn check_observation(&self, o: &Observation) -> Result<PublicKey, Rejected> {
        if o.observer == o.subject {
            return Err(Rejected::SelfObserved {
                observer: o.observer,
            });
        }
        if let ObservationKind::Probe { cpu, memory, disk } = o.kind {
            if [cpu, memory, disk]
                .iter()
                .any(|r| !r.is_finite() || *r < 0.0)
            {
                return Err(Rejected::BadProbe {
                    subject: o.subject,
                    cpu,
                    memory,
                    disk,
                });
            }
        }
        let reg = |node: NodeId| self.nodes.get(&node).ok_or(Rejected::UnknownNode { node });
        let (observer, subject) = (reg(o.observer)?, reg(o.subject)?);
        if observer.operator == subject.operator {
            return Err(Rejected::SameOperator {
                observer: o.observer,
                subject: o.subject,
                operator: subject.operator,
            });
        }
        for r in [observer, subject] {
            if o.at < r.joined_at {
                return Err(Rejected::BeforeJoin {
                    node: r.node,
                    at: o.at,
                    joined_at: r.joined_at,
                });
            }
        }
        Ok(observer.operator)
    }

    /// Records that `node`, run by `operator`, joined at `joined_at` (from
    /// cluster membership). `Ok(false)` if already registered identically.
    pub fn register_node(
        &mut self,
        node: NodeId,
        operator: PublicKey,
        joined_at: DateTime<Utc>,
    ) -> Result<bool, Rejected> {
        self.append(Entry::Node(NodeRegistration {
            node,
            operator,
            joined_at,
            asn: None,
        }))
    }

    /// Registers a cluster node, with its ASN from the [`ASN_LABEL`] label.
    pub fn register(&mut self, node: &Node) -> Result<bool, Rejected> {
        self.append(Entry::Node(NodeRegistration {
            node: node.id,
            operator: node.operator,
            joined_at: node.joined_at,
            asn: node.labels.get(ASN_LABEL).cloned(),
        }))
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in the order this replica accepted them.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries accepted from position `from` on (for gossiping what is new).
    pub fn entries_since(&self, from: usize) -> &[Entry] {
        self.entries.get(from..).unwrap_or(&[])
    }

    /// Whether it holds an entry with this content hash.
    pub fn contains(&self, hash: &EntryHash) -> bool {
        self.hashes.contains(hash)
    }

    /// SHA-256 over the sorted content hashes: equal for replicas holding
    /// the same entries, whatever order they arrived in.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"univrs-evidence-log-v1\n");
        h.update((self.hashes.len() as u64).to_le_bytes());
        for x in &self.hashes {
            h.update(x);
        }
        h.finalize().into()
    }

    /// A node's registration.
    pub fn registration(&self, node: &NodeId) -> Option<&NodeRegistration> {
        self.nodes.get(node)
    }

    /// Every registered node, by id.
    pub fn registrations(&self) -> impl Iterator<Item = &NodeRegistration> {
        self.nodes.values()
    }

    /// What the log knows of an operator.
    pub fn operator(&self, operator: &PublicKey) -> Option<&OperatorRecord> {
        self.operators.get(operator)
    }

    /// Every operator with a registered node, by key.
    pub fn operators(&self) -> impl Iterator<Item = (&PublicKey, &OperatorRecord)> {
        self.operators.iter()
    }

    /// Everything observed of `node`, per observer operator (none: it has
    /// no evidence).
    pub fn history(&self, node: &NodeId) -> Option<&NodeHistory> {
        self.histories.get(node)
    }

    /// The attestations of `subject` that count at `now`: per issuer, the
    /// latest one issued by `now` (it supersedes earlier ones), if it is not
    /// expired and its weight is above 0 (weight 0 revokes). By issuer key.
    pub fn attestations_of<'a>(
        &'a self,
        subject: &PublicKey,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Attestation> + 'a {
        self.attestations
            .get(subject)
            .into_iter()
            .flat_map(move |by_issuer| by_issuer.values().filter_map(move |v| current(v, now)))
    }

    /// Every attestation that counts at `now` (see [`Self::attestations_of`]),
    /// by (subject, issuer).
    pub fn current_attestations(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Attestation> {
        self.attestations
            .values()
            .flat_map(move |by_issuer| by_issuer.values().filter_map(move |v| current(v, now)))
    }
}

fn current(versions: &Versions, now: DateTime<Utc>) -> Option<&Attestation> {
    let n = versions.partition_point(|(t, _, _)| *t <= now);
    let (_, _, a) = versions.get(n.checked_sub(1)?)?;
    (a.weight > 0.0 && a.expires_at > now).then_some(a)
}

fn check_attestation(a: &Attestation) -> Result<(), Rejected> {
    if a.issuer == a.subject {
        return Err(Rejected::SelfAttestation { operator: a.issuer });
    }
    if !(0.0..=1.0).contains(&a.weight) {
        return Err(Rejected::BadWeight {
            issuer: a.issuer,
            weight: a.weight,
        });
    }
    if a.expires_at <= a.issued_at
        || a.expires_at > a.issued_at + Duration::days(MAX_ATTESTATION_DAYS)
    {
        return Err(Rejected::BadExpiry {
            issuer: a.issuer,
            issued_at: a.issued_at,
            expires_at: a.expires_at,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
