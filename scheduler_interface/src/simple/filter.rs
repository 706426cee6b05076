//! Filter: whether an instance may go on a node, and if not, why.
//!
//! Checks run cheapest first (status, taints, labels, `max_per_node`, then
//! resource fit, which needs a ledger lookup), and the first failing one names
//! the [`Exclusion`] that a `NoPlacement` reason counts.

use orchestrator_shared_types::{
    ports::node_offers_network, HostPort, NetworkMode, Node, NodeStatus, Placement, Resources,
    TaintEffect, TrustRules,
};

/// Why a node was excluded for an instance (the first filter that failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exclusion {
    /// Status `NotReady`.
    NotReady,
    /// Status `Unknown`.
    Unknown,
    /// Status `Down`.
    Down,
    /// Ready but cordoned (`unschedulable`).
    Cordoned,
    /// A `NoSchedule` or `NoExecute` taint the workload does not tolerate.
    Taint,
    /// A node-selector label is missing or differs.
    NodeSelector,
    /// The owner's trust rules exclude it: a denied operator, an operator
    /// not allowed, or a required label missing.
    Trust,
    /// The owner's trust rules ask for reputation or attestations, which a
    /// scheduler that does not weigh reputation cannot check: refused, never
    /// assumed (the operator is not one the owner trusts).
    TrustUnweighed,
    /// A required node-affinity term does not match.
    NodeAffinity,
    /// The node does not offer the workload's network (`host` without the
    /// operator's `--allow-host-network`, `bridge` without the CNI plugins).
    Network,
    /// The node already holds `max_per_node` instances of the workload.
    MaxPerNode,
    /// Another instance takes a port this one takes on the node.
    HostPort,
    /// Not enough unreserved cpu.
    InsufficientCpu,
    /// Enough cpu, but not enough unreserved memory.
    InsufficientMemory,
}

impl Exclusion {
    /// Every exclusion, in the order a reason lists them.
    pub(crate) const ALL: [Exclusion; 14] = [
        Exclusion::NotReady,
        Exclusion::Unknown,
        Exclusion::Down,
        Exclusion::Cordoned,
        Exclusion::Taint,
        Exclusion::NodeSelector,
        Exclusion::Trust,
        Exclusion::TrustUnweighed,
        Exclusion::NodeAffinity,
        Exclusion::Network,
        Exclusion::MaxPerNode,
        Exclusion::HostPort,
        Exclusion::InsufficientCpu,
        Exclusion::InsufficientMemory,
    ];

    /// How a reason names it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Exclusion::NotReady => "not ready",
            Exclusion::Unknown => "status unknown",
            Exclusion::Down => "down",
            Exclusion::Cordoned => "cordoned",
            Exclusion::Taint => "untolerated taint",
            Exclusion::NodeSelector => "node selector mismatch",
            Exclusion::Trust => "excluded by the owner's trust rules",
            Exclusion::TrustUnweighed => {
                "not trusted, and the owner's trust rules need reputation this scheduler does \
                 not weigh (--scheduler mycelial does)"
            }
            Exclusion::NodeAffinity => "node affinity mismatch",
            Exclusion::Network => "network mode not offered",
            Exclusion::MaxPerNode => "max per node reached",
            Exclusion::HostPort => "host port in use",
            Exclusion::InsufficientCpu => "insufficient cpu",
            Exclusion::InsufficientMemory => "insufficient memory",
        }
    }
}

/// How many nodes each filter excluded during one walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exclusions([u32; Exclusion::ALL.len()]);

impl Exclusions {
    /// Counts one node excluded for `e`.
    #[inline]
    pub(crate) fn add(&mut self, e: Exclusion) {
        self.0[e as usize] += 1;
    }

    /// Whether no node was excluded.
    #[cfg(feature = "mycelial")]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// How many nodes were excluded for `e`.
    pub(crate) fn get(&self, e: Exclusion) -> u32 {
        self.0[e as usize]
    }

    /// `"0/10 nodes fit: 4 not ready, 3 insufficient cpu, 3 node selector mismatch"`.
    pub(crate) fn reason(&self, total_nodes: usize) -> String {
        let mut s = format!("0/{total_nodes} nodes fit");
        if total_nodes == 0 {
            s.push_str(": the cluster has no nodes");
            return s;
        }
        let mut first = true;
        for e in Exclusion::ALL {
            let n = self.get(e);
            if n > 0 {
                s.push_str(if first { ": " } else { ", " });
                first = false;
                s.push_str(&format!("{n} {}", e.describe()));
            }
        }
        s
    }
}

/// What the filters learnt about a node that passed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Feasible {
    /// Reserved on the node before this instance.
    pub(crate) reserved: Resources,
    /// `PreferNoSchedule` taints the workload does not tolerate (scored down).
    pub(crate) soft_taints: u32,
    /// Instances of the workload already on the node (existing and placed).
    pub(crate) same_workload: u32,
}

/// The filters for one workload.
pub(crate) struct Filter<'a> {
    placement: &'a Placement,
    request: Resources,
    host_ports: &'a [HostPort],
    network: NetworkMode,
    /// The owner's trust rules, for a scheduler that checks them here (the
    /// simple one); `None` where they are checked with reputation after.
    trust: Option<&'a TrustRules>,
}

impl<'a> Filter<'a> {
    /// Filters for instances on `network` that each need `request` and take
    /// `host_ports` on their node.
    pub(crate) fn new(
        placement: &'a Placement,
        request: Resources,
        host_ports: &'a [HostPort],
        network: NetworkMode,
    ) -> Self {
        Self {
            placement,
            request,
            host_ports,
            network,
            trust: None,
        }
    }

    /// Also applies the owner's `rules` as hard filters, without weighing
    /// reputation: a rule that needs it excludes every node whose operator
    /// the owner does not trust.
    pub(crate) fn with_trust(mut self, rules: &'a TrustRules) -> Self {
        self.trust = (!rules.is_empty()).then_some(rules);
        self
    }

    /// Whether `node` passes every filter. The lookups are called only for
    /// nodes that pass the cheaper checks: `reserved` gives the node's current
    /// reservations, `same_workload` how many instances of this workload it has.
    #[inline]
    pub(crate) fn check(
        &self,
        node: &Node,
        reserved: impl FnOnce() -> Resources,
        same_workload: impl FnOnce() -> u32,
        ports_in_use: impl FnOnce(&[HostPort]) -> bool,
    ) -> Result<Feasible, Exclusion> {
        let soft_taints = self.check_node(node)?;
        self.check_room(node, soft_taints, reserved, same_workload, ports_in_use)
    }

    /// The filters that depend only on the node and the workload (status,
    /// cordon, taints, labels), so hold for every instance of one call; the
    /// untolerated `PreferNoSchedule` taints when it passes.
    #[inline]
    pub(crate) fn check_node(&self, node: &Node) -> Result<u32, Exclusion> {
        match node.status {
            NodeStatus::Ready => {}
            NodeStatus::NotReady => return Err(Exclusion::NotReady),
            NodeStatus::Unknown => return Err(Exclusion::Unknown),
            NodeStatus::Down => return Err(Exclusion::Down),
        }
        if node.unschedulable {
            return Err(Exclusion::Cordoned);
        }
        let soft_taints = self.taints(node)?;
        self.labels(node)?;
        if let Some(rules) = self.trust {
            trust(rules, node)?;
        }
        if !node_offers_network(&node.labels, self.network) {
            return Err(Exclusion::Network);
        }
        Ok(soft_taints)
    }

    /// The filters that depend on what is already placed (`max_per_node`,
    /// resource fit), for a node that passed [`Filter::check_node`] with
    /// `soft_taints`; the lookups are as in [`Filter::check`].
    #[inline]
    pub(crate) fn check_room(
        &self,
        node: &Node,
        soft_taints: u32,
        reserved: impl FnOnce() -> Resources,
        same_workload: impl FnOnce() -> u32,
        ports_in_use: impl FnOnce(&[HostPort]) -> bool,
    ) -> Result<Feasible, Exclusion> {
        let same_workload = same_workload();
        if self
            .placement
            .max_per_node
            .is_some_and(|max| same_workload >= max)
        {
            return Err(Exclusion::MaxPerNode);
        }
        if !self.host_ports.is_empty() && ports_in_use(self.host_ports) {
            return Err(Exclusion::HostPort);
        }
        let reserved = reserved();
        fit(node.resources_allocatable, reserved, self.request)?;
        Ok(Feasible {
            reserved,
            soft_taints,
            same_workload,
        })
    }

    /// Fails on an untolerated hard taint; otherwise counts untolerated
    /// `PreferNoSchedule` taints.
    #[inline]
    fn taints(&self, node: &Node) -> Result<u32, Exclusion> {
        let mut soft = 0;
        for t in &node.taints {
            if self
                .placement
                .tolerations
                .iter()
                .any(|tol| tol.tolerates(t))
            {
                continue;
            }
            match t.effect {
                TaintEffect::PreferNoSchedule => soft += 1,
                TaintEffect::NoSchedule | TaintEffect::NoExecute => return Err(Exclusion::Taint),
            }
        }
        Ok(soft)
    }

    #[inline]
    fn labels(&self, node: &Node) -> Result<(), Exclusion> {
        let p = self.placement;
        if !p
            .node_selector
            .iter()
            .all(|(k, v)| node.labels.get(k) == Some(v))
        {
            return Err(Exclusion::NodeSelector);
        }
        if !p.node_affinity.iter().all(|r| r.matches(&node.labels)) {
            return Err(Exclusion::NodeAffinity);
        }
        Ok(())
    }
}

/// The owner's trust rules on `node`, reputation not weighed: denied and
/// allowed operators and required labels as the mycelial scheduler checks
/// them; a minimum reputation or attestations pass only the owner's trusted
/// operators (whose nodes pass those rules by definition).
fn trust(rules: &TrustRules, node: &Node) -> Result<(), Exclusion> {
    if rules.excludes(&node.operator, &node.labels) {
        return Err(Exclusion::Trust);
    }
    let trusted = rules.trusted_operators.contains(&node.operator);
    if !trusted && (rules.min_reputation > 0.0 || rules.required_attestations > 0) {
        return Err(Exclusion::TrustUnweighed);
    }
    Ok(())
}

/// Whether `request` fits in `allocatable` minus `reserved`.
#[inline]
pub(crate) fn fit(
    allocatable: Resources,
    reserved: Resources,
    request: Resources,
) -> Result<(), Exclusion> {
    let free = allocatable.saturating_sub(reserved);
    if free.cpu_millis < request.cpu_millis {
        Err(Exclusion::InsufficientCpu)
    } else if free.memory_bytes < request.memory_bytes {
        Err(Exclusion::InsufficientMemory)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod trust_tests;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use orchestrator_shared_types::{
        LabelOperator, LabelRequirement, NodeId, PublicKey, Taint, Toleration, TolerationOperator,
    };

    use super::*;

    fn node() -> Node {
        Node {
            id: NodeId([1; 32]),
            address: "127.0.0.1:1".into(),
            status: NodeStatus::Ready,
            unschedulable: false,
            labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
            taints: vec![],
            resources_capacity: Resources::new(1000, 1000),
            resources_allocatable: Resources::new(1000, 1000),
            operator: PublicKey([2; 32]),
            joined_at: Utc::now(),
        }
    }

    fn check(
        p: &Placement,
        n: &Node,
        reserved: Resources,
        count: u32,
    ) -> Result<Feasible, Exclusion> {
        Filter::new(p, Resources::new(100, 100), &[], NetworkMode::Bridge).check(
            n,
            || reserved,
            || count,
            |_| false,
        )
    }

    fn taint(key: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: "x".into(),
            effect,
        }
    }

    #[test]
    fn status_and_cordon_come_first() {
        let p = Placement::default();
        for (status, e) in [
            (NodeStatus::NotReady, Exclusion::NotReady),
            (NodeStatus::Unknown, Exclusion::Unknown),
            (NodeStatus::Down, Exclusion::Down),
        ] {
            let n = Node { status, ..node() };
            assert_eq!(check(&p, &n, Resources::ZERO, 0), Err(e));
        }
        let n = Node {
            unschedulable: true,
            ..node()
        };
        assert_eq!(check(&p, &n, Resources::ZERO, 0), Err(Exclusion::Cordoned));
        assert!(check(&p, &node(), Resources::ZERO, 0).is_ok());
    }

    #[test]
    fn resource_fit_counts_reservations() {
        let p = Placement::default();
        assert!(check(&p, &node(), Resources::new(900, 900), 0).is_ok());
        assert_eq!(
            check(&p, &node(), Resources::new(901, 0), 0),
            Err(Exclusion::InsufficientCpu)
        );
        assert_eq!(
            check(&p, &node(), Resources::new(0, 901), 0),
            Err(Exclusion::InsufficientMemory)
        );
        // Over-reserved nodes (allocatable shrank) saturate instead of wrapping.
        assert_eq!(
            check(&p, &node(), Resources::new(5000, 0), 0),
            Err(Exclusion::InsufficientCpu)
        );
    }

    #[test]
    fn labels_selector_and_affinity() {
        let mut p = Placement::default();
        p.node_selector.insert("zone".into(), "b".into());
        assert_eq!(
            check(&p, &node(), Resources::ZERO, 0),
            Err(Exclusion::NodeSelector)
        );
        p.node_selector.insert("zone".into(), "a".into());
        assert!(check(&p, &node(), Resources::ZERO, 0).is_ok());
        p.node_affinity.push(LabelRequirement {
            key: "gpu".into(),
            operator: LabelOperator::Exists,
            values: vec![],
        });
        assert_eq!(
            check(&p, &node(), Resources::ZERO, 0),
            Err(Exclusion::NodeAffinity)
        );
    }

    #[test]
    fn taints_exclude_or_are_counted() {
        let mut p = Placement::default();
        let mut n = node();
        n.taints = vec![taint("soft", TaintEffect::PreferNoSchedule)];
        assert_eq!(
            check(&p, &n, Resources::ZERO, 0).map(|f| f.soft_taints),
            Ok(1)
        );
        n.taints.push(taint("hard", TaintEffect::NoExecute));
        assert_eq!(check(&p, &n, Resources::ZERO, 0), Err(Exclusion::Taint));
        p.tolerations.push(Toleration {
            key: String::new(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        });
        assert_eq!(
            check(&p, &n, Resources::ZERO, 0).map(|f| f.soft_taints),
            Ok(0)
        );
    }

    #[test]
    fn max_per_node() {
        let p = Placement {
            max_per_node: Some(2),
            ..Placement::default()
        };
        assert!(check(&p, &node(), Resources::ZERO, 1).is_ok());
        assert_eq!(
            check(&p, &node(), Resources::ZERO, 2),
            Err(Exclusion::MaxPerNode)
        );
    }

    #[test]
    fn reason_lists_each_filter_with_its_count() {
        let mut e = Exclusions::default();
        for _ in 0..4 {
            e.add(Exclusion::NotReady);
        }
        for _ in 0..3 {
            e.add(Exclusion::InsufficientCpu);
            e.add(Exclusion::NodeSelector);
        }
        assert_eq!(
            e.reason(10),
            "0/10 nodes fit: 4 not ready, 3 node selector mismatch, 3 insufficient cpu"
        );
        assert_eq!(
            Exclusions::default().reason(0),
            "0/0 nodes fit: the cluster has no nodes"
        );
    }
}
