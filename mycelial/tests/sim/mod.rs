//! A small world for the simulations of MYCELIAL.md §4: keys from a seeded
//! generator, nodes, a control-plane observer that signs what it sees, and
//! the scheduler's choice built from `rules::check` and `sample`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ed25519_dalek::SigningKey;
use mycelial::engine::Reputation;
use mycelial::evidence::{
    sign_attestation, sign_observation, Attestation, Entry, Observation, ObservationKind, ASN_LABEL,
};
use mycelial::{rules, sample, TrustRules};
use orchestrator_shared_types::{Node, NodeId, NodeStatus, PublicKey, Resources};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

/// Start of every simulation.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

/// A key from the seeded generator.
pub fn keypair(rng: &mut StdRng) -> SigningKey {
    SigningKey::from_bytes(&rng.gen())
}

/// The public key of `k`, as an operator or user.
pub fn pk(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

/// A ready node with key `key`, run by `operator`.
pub fn node(
    key: &SigningKey,
    operator: &PublicKey,
    joined_at: DateTime<Utc>,
    asn: Option<&str>,
) -> Node {
    let mut labels = BTreeMap::new();
    if let Some(a) = asn {
        labels.insert(ASN_LABEL.to_owned(), a.to_owned());
    }
    Node {
        id: NodeId(key.verifying_key().to_bytes()),
        address: String::new(),
        status: NodeStatus::Ready,
        unschedulable: false,
        labels,
        taints: vec![],
        resources_capacity: Resources::new(4000, 8 << 30),
        resources_allocatable: Resources::new(4000, 8 << 30),
        operator: *operator,
        joined_at,
    }
}

/// An attestation of `subject` by `issuer`, valid 365 days from `issued_at`.
pub fn attestation(
    issuer: &SigningKey,
    subject: &PublicKey,
    weight: f64,
    issued_at: DateTime<Utc>,
) -> Entry {
    let a = Attestation {
        issuer: pk(issuer),
        subject: *subject,
        weight,
        issued_at,
        expires_at: issued_at + Duration::days(365),
    };
    Entry::Attestation(sign_attestation(issuer, a).expect("signing an attestation"))
}

/// The engine and the control plane's node, which observes every other node.
pub struct World {
    /// The engine.
    pub rep: Reputation,
    /// The control plane operator (it attests and is a seed in some sims).
    pub cp_operator: SigningKey,
    /// The control plane's node key: it signs observations.
    pub observer: SigningKey,
}

impl World {
    /// A world whose control plane joined long before `t0()`.
    pub fn new(rng: &mut StdRng) -> Self {
        let cp_operator = keypair(rng);
        let observer = keypair(rng);
        let rep = Reputation::new(t0());
        let n = node(
            &observer,
            &pk(&cp_operator),
            t0() - Duration::days(1000),
            Some("AS-CP"),
        );
        assert!(rep.register(&n).expect("registering the control plane"));
        Self {
            rep,
            cp_operator,
            observer,
        }
    }

    /// Gossips an entry to the engine; it must be new and accepted.
    pub fn feed(&self, e: Entry) {
        assert!(self.rep.receive(e).expect("a valid entry"));
    }

    /// An observation of `subject` signed by the control plane.
    pub fn observation(&self, subject: &Node, at: DateTime<Utc>, kind: ObservationKind) -> Entry {
        let o = Observation {
            observer: NodeId(self.observer.verifying_key().to_bytes()),
            subject: subject.id,
            at,
            kind,
        };
        Entry::Observation(sign_observation(&self.observer, o).expect("signing an observation"))
    }

    /// Observes a heartbeat.
    pub fn heartbeat(&self, subject: &Node, at: DateTime<Utc>, answered: bool) {
        self.feed(self.observation(subject, at, ObservationKind::Heartbeat { answered }));
    }

    /// Observes an outcome; failures are charged (the spec ran fine elsewhere).
    pub fn outcome(&self, subject: &Node, at: DateTime<Utc>, success: bool) {
        let kind = ObservationKind::Outcome {
            success,
            ran_elsewhere: !success,
        };
        self.feed(self.observation(subject, at, kind));
    }
}

/// A workload owner.
pub struct User {
    /// Its key.
    pub key: PublicKey,
    /// Its trust rules (the trusted operators seed its trust).
    pub rules: TrustRules,
}

/// The scheduler's choice for one workload of `user` at `now`: hard filters
/// (`rules::check`) then sampling by `C² × fit` with fit = 1; users with no
/// rules pick uniformly among all schedulable nodes 5 % of the time.
pub fn place(
    rep: &Reputation,
    user: &User,
    nodes: &[Node],
    now: DateTime<Utc>,
    rng: &mut StdRng,
) -> Option<usize> {
    if user.rules.is_empty() && rng.gen::<f64>() < 0.05 {
        let open: Vec<usize> = (0..nodes.len())
            .filter(|&i| nodes[i].is_schedulable())
            .collect();
        return open.choose(rng).copied();
    }
    let standings = rep.standings_at(&user.key, &user.rules.trusted_operators, nodes, now);
    let weights: Vec<f64> = nodes
        .iter()
        .zip(&standings)
        .map(|(n, s)| {
            if n.is_schedulable() && rules::check(&user.rules, n, s).is_ok() {
                sample::weight(s.composite, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    sample::weighted_index(&weights, rng)
}
