//! The membership as this node sees it ([`State`]), how one record per node is
//! chosen among its chitchat generations ([`select`]), and how a new
//! membership is diffed against the previous one into [`ClusterEvent`]s.
//!
//! The cordon overlay is kept here too: the control plane is the only
//! scheduler, so its own cordon decisions are applied on top of whatever the
//! nodes publish, in every answer and every event.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chitchat::ChitchatId;
use cluster_manager_interface::{ClusterEvent, Peer, ROLE_LABEL};
use orchestrator_shared_types::{Node, NodeId, NodeStatus};
use tracing::warn;

use super::record::RecordBody;

/// A chitchat id in the cluster state whose record verified.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// Who gossips it.
    pub chitchat_id: ChitchatId,
    /// Whether the failure detector considers it alive.
    pub live: bool,
    /// Its last verified record.
    pub body: Arc<RecordBody>,
}

/// A remote member: the record chosen for its node id, with the status
/// liveness gives it (cordon overlay not applied).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Member {
    /// The record; `Down` while the failure detector says dead.
    pub node: Node,
    /// Where the chosen generation gossips.
    pub gossip_addr: SocketAddr,
    /// The chosen generation.
    pub generation: u64,
    /// Whether the chosen generation is alive.
    pub live: bool,
}

/// Picks, for every node id but `local`, the record to believe: the live
/// generation with the highest generation number, else (all dead) the highest
/// generation, shown `Down`. Ties go to the highest record sequence number.
pub(crate) fn select(
    candidates: impl IntoIterator<Item = Candidate>,
    local: &NodeId,
) -> BTreeMap<NodeId, Member> {
    let mut best: BTreeMap<NodeId, Candidate> = BTreeMap::new();
    for candidate in candidates {
        let id = candidate.body.node.id;
        if id == *local {
            // Our own earlier generations: the local record is authoritative.
            continue;
        }
        let rank = |c: &Candidate| (c.live, c.chitchat_id.generation_id, c.body.seq);
        match best.get(&id) {
            Some(current) if rank(current) >= rank(&candidate) => {}
            _ => {
                best.insert(id, candidate);
            }
        }
    }
    best.into_iter()
        .map(|(id, c)| {
            let mut node = c.body.node.clone();
            if !c.live {
                if let Err(e) = node.transition(NodeStatus::Down) {
                    warn!(node = %id.short(), error = %e, "showing a dead member as published");
                }
            }
            let member = Member {
                node,
                gossip_addr: c.chitchat_id.gossip_advertise_addr,
                generation: c.chitchat_id.generation_id,
                live: c.live,
            };
            (id, member)
        })
        .collect()
}

/// The membership: the local record, the remote members and the cordon overlay.
#[derive(Debug)]
pub(crate) struct State {
    /// Set by `shutdown` (or when gossip died): changes are refused and the
    /// membership stays as it was last seen.
    pub shut_down: bool,
    /// The local record as last given by the caller (overlay not applied).
    local: Node,
    local_gossip_addr: SocketAddr,
    generation: u64,
    /// Sequence number of the local record last published.
    local_seq: u64,
    members: BTreeMap<NodeId, Member>,
    /// Cordon flags set through this manager, which win over the records.
    cordons: BTreeMap<NodeId, bool>,
    /// With pinned control planes, the nodes admitted (the pinned ones and
    /// those on the newest signed member list); `None`: no admission gate.
    pub admitted: Option<std::collections::BTreeSet<NodeId>>,
    /// The control planes this node obeys: the pinned keys and the
    /// control planes on the followed member list (empty: none pinned).
    pub control_planes: Vec<NodeId>,
    /// The newest member list a pinned key signed (this node's own
    /// included), as followed.
    pub member_list: Option<orchestrator_shared_types::admission::MemberList>,
    /// Control-plane keys pinned since the start
    /// ([`ChitchatClusterManager::pin_control_planes`](super::ChitchatClusterManager::pin_control_planes)),
    /// taken up by the membership task at its next round.
    pub pinned_since: Vec<NodeId>,
}

impl State {
    /// A membership of `local` alone, gossiping from `gossip_addr` as `generation`.
    pub fn new(local: Node, gossip_addr: SocketAddr, generation: u64) -> Self {
        Self {
            shut_down: false,
            local,
            local_gossip_addr: gossip_addr,
            generation,
            local_seq: 0,
            members: BTreeMap::new(),
            cordons: BTreeMap::new(),
            admitted: None,
            control_planes: Vec::new(),
            member_list: None,
            pinned_since: Vec::new(),
        }
    }

    /// `node` with the cordon overlay applied.
    fn overlaid(&self, mut node: Node) -> Node {
        if let Some(flag) = self.cordons.get(&node.id) {
            node.unschedulable = *flag;
        }
        node
    }

    /// The local record as answered and published.
    pub fn local(&self) -> Node {
        self.overlaid(self.local.clone())
    }

    /// The local record as last given by the caller (overlay not applied).
    pub fn local_raw(&self) -> &Node {
        &self.local
    }

    /// Sequence number of the local record last published.
    pub fn local_seq(&self) -> u64 {
        self.local_seq
    }

    /// The local record that [`Self::set_local`] with these arguments would publish.
    pub fn local_with(&self, local: &Node, cordon: Option<bool>) -> Node {
        let mut node = local.clone();
        if let Some(flag) = cordon.or_else(|| self.cordons.get(&local.id).copied()) {
            node.unschedulable = flag;
        }
        node
    }

    /// Stores a new local record (and cordon flag, if any). If the published
    /// record changes, bumps the sequence number and returns the event.
    pub fn set_local(&mut self, local: Node, cordon: Option<bool>) -> Option<ClusterEvent> {
        let before = self.local();
        if let Some(flag) = cordon {
            self.cordons.insert(local.id, flag);
        }
        self.local = local;
        let after = self.local();
        if after == before {
            return None;
        }
        self.local_seq += 1;
        Some(ClusterEvent::NodeUpdated(after))
    }

    /// Sets the cordon flag of a remote member; returns its record and the
    /// event if that changed it, or `None` if it is not a member.
    pub fn cordon_member(
        &mut self,
        id: &NodeId,
        unschedulable: bool,
    ) -> Option<(Node, Option<ClusterEvent>)> {
        let before = self.overlaid(self.members.get(id)?.node.clone());
        self.cordons.insert(*id, unschedulable);
        let after = self.overlaid(before.clone());
        let event = (after != before).then(|| ClusterEvent::NodeUpdated(after.clone()));
        Some((after, event))
    }

    /// A member (or the local node) as answered.
    pub fn get(&self, id: &NodeId) -> Option<Node> {
        if *id == self.local.id {
            return Some(self.local());
        }
        self.members
            .get(id)
            .map(|member| self.overlaid(member.node.clone()))
    }

    /// Every member, the local node first.
    pub fn list(&self) -> Vec<Node> {
        std::iter::once(self.local())
            .chain(
                self.members
                    .values()
                    .map(|member| self.overlaid(member.node.clone())),
            )
            .collect()
    }

    /// Every member as the gossip protocol sees it, the local node first.
    pub fn peers(&self) -> Vec<Peer> {
        let local = self.local();
        let me = Peer {
            node_id: local.id,
            gossip_addr: self.local_gossip_addr.to_string(),
            api_addr: local.address.clone(),
            generation: self.generation,
            role: role(&local),
            status: local.status,
            live: true,
            is_self: true,
        };
        let others = self.members.values().map(|member| {
            let node = self.overlaid(member.node.clone());
            Peer {
                node_id: node.id,
                gossip_addr: member.gossip_addr.to_string(),
                api_addr: node.address.clone(),
                generation: member.generation,
                role: role(&node),
                status: node.status,
                live: member.live,
                is_self: false,
            }
        });
        std::iter::once(me).chain(others).collect()
    }

    /// Members (the local node included) that are alive, and those that are not.
    pub fn live_and_dead(&self) -> (u64, u64) {
        let dead = self.members.values().filter(|m| !m.live).count();
        let live = 1 + self.members.len() - dead;
        (to_u64(live), to_u64(dead))
    }

    /// Replaces the remote members with `members` and returns the events that
    /// take a subscriber from the old membership to the new one: `NodeAdded`
    /// for new node ids, `NodeUpdated` for changed records (overlay applied),
    /// `NodeRemoved` for node ids gone (whose cordon flag is forgotten too).
    ///
    /// A member's status moves through [`Node::transition`]: a new record
    /// whose status the node state machine does not allow after the one held
    /// (a `Down` node back as `NotReady`, say) is refused with a warning, and
    /// the member stays as it was until a record it may move to arrives.
    pub fn replace_members(&mut self, mut members: BTreeMap<NodeId, Member>) -> Vec<ClusterEvent> {
        for (id, new) in &mut members {
            let Some(old) = self.members.get(id) else {
                continue;
            };
            let mut moved = old.node.clone();
            if let Err(e) = moved.transition(new.node.status) {
                warn!(node = %id.short(), error = %e, "keeping the member's last record");
                *new = old.clone();
            }
        }
        let mut events = Vec::new();
        for (id, old) in &self.members {
            if !members.contains_key(id) {
                events.push(ClusterEvent::NodeRemoved(*id));
            } else if let Some(new) = members.get(id) {
                if new.node != old.node {
                    events.push(ClusterEvent::NodeUpdated(self.overlaid(new.node.clone())));
                }
            }
        }
        for (id, new) in &members {
            if !self.members.contains_key(id) {
                events.push(ClusterEvent::NodeAdded(self.overlaid(new.node.clone())));
            }
        }
        for event in &events {
            if let ClusterEvent::NodeRemoved(id) = event {
                self.cordons.remove(id);
            }
        }
        self.members = members;
        events
    }
}

fn role(node: &Node) -> String {
    node.labels.get(ROLE_LABEL).cloned().unwrap_or_default()
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_node;

    fn candidate(seed: u64, generation: u64, live: bool, seq: u64) -> Candidate {
        let node = test_node(seed, 1000, 1 << 30);
        let addr = SocketAddr::from(([127, 0, 0, 1], 7000 + u16::try_from(generation).unwrap()));
        Candidate {
            chitchat_id: ChitchatId::new(node.id.to_string(), generation, addr),
            live,
            body: Arc::new(RecordBody {
                node,
                generation,
                seq,
            }),
        }
    }

    #[test]
    fn the_live_generation_wins_and_dead_ones_are_down() {
        let local = test_node(1, 1, 1).id;
        let chosen = select(
            [
                candidate(2, 5, false, 9),
                candidate(2, 3, true, 1),
                candidate(3, 1, false, 1),
                candidate(3, 2, false, 1),
                candidate(1, 9, true, 1),
            ],
            &local,
        );
        assert_eq!(chosen.len(), 2, "the local node is never a remote member");
        let two = &chosen[&test_node(2, 1, 1).id];
        assert_eq!((two.generation, two.live), (3, true));
        assert_eq!(two.node.status, NodeStatus::Ready);
        let three = &chosen[&test_node(3, 1, 1).id];
        assert_eq!((three.generation, three.live), (2, false));
        assert_eq!(three.node.status, NodeStatus::Down);
    }

    #[test]
    fn the_highest_live_generation_wins() {
        let local = test_node(1, 1, 1).id;
        let chosen = select([candidate(2, 4, true, 1), candidate(2, 6, true, 1)], &local);
        assert_eq!(chosen[&test_node(2, 1, 1).id].generation, 6);
    }

    fn members(cands: Vec<Candidate>) -> BTreeMap<NodeId, Member> {
        select(cands, &test_node(1, 1, 1).id)
    }

    #[test]
    fn replacing_members_emits_the_difference() {
        let mut state = State::new(test_node(1, 1, 1), "127.0.0.1:1".parse().unwrap(), 1);
        let events = state.replace_members(members(vec![candidate(2, 1, true, 1)]));
        assert!(
            matches!(&events[..], [ClusterEvent::NodeAdded(n)] if n.status == NodeStatus::Ready)
        );
        assert!(state
            .replace_members(members(vec![candidate(2, 1, true, 1)]))
            .is_empty());

        let events = state.replace_members(members(vec![
            candidate(2, 1, false, 1),
            candidate(3, 1, true, 1),
        ]));
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(&events[0], ClusterEvent::NodeUpdated(n) if n.status == NodeStatus::Down));
        assert!(matches!(&events[1], ClusterEvent::NodeAdded(_)));
        assert_eq!(state.live_and_dead(), (2, 1));
        assert_eq!(state.list().len(), 3);

        let events = state.replace_members(members(vec![candidate(3, 1, true, 1)]));
        assert_eq!(
            events,
            vec![ClusterEvent::NodeRemoved(test_node(2, 1, 1).id)]
        );
    }

    #[test]
    fn a_member_move_the_node_machine_forbids_is_refused() {
        let mut state = State::new(test_node(1, 1, 1), "127.0.0.1:1".parse().unwrap(), 1);
        let two = test_node(2, 1, 1).id;
        state.replace_members(members(vec![candidate(2, 1, false, 1)]));
        assert_eq!(state.get(&two).unwrap().status, NodeStatus::Down);
        let before = state.list();

        // It comes back alive, but publishing itself NotReady: Down -> NotReady
        // is not a move of the node state machine, so the member stays Down.
        let mut unhealthy = candidate(2, 1, true, 2);
        let mut node = unhealthy.body.node.clone();
        node.transition(NodeStatus::NotReady).unwrap();
        unhealthy.body = Arc::new(RecordBody {
            node,
            generation: 1,
            seq: 2,
        });
        let events = state.replace_members(members(vec![unhealthy]));
        assert!(events.is_empty(), "refused, so nothing changed: {events:?}");
        assert_eq!(state.list(), before);
        assert_eq!(state.get(&two).unwrap().status, NodeStatus::Down);
        assert_eq!(state.live_and_dead(), (1, 1));

        // Back Ready is allowed.
        let events = state.replace_members(members(vec![candidate(2, 1, true, 3)]));
        assert!(
            matches!(&events[..], [ClusterEvent::NodeUpdated(n)] if n.status == NodeStatus::Ready),
            "{events:?}"
        );
    }

    #[test]
    fn the_cordon_overlay_wins_and_is_forgotten_with_the_node() {
        let mut state = State::new(test_node(1, 1, 1), "127.0.0.1:1".parse().unwrap(), 1);
        let two = test_node(2, 1, 1).id;
        assert!(state.cordon_member(&two, true).is_none(), "not a member");
        state.replace_members(members(vec![candidate(2, 1, true, 1)]));
        let (node, event) = state.cordon_member(&two, true).unwrap();
        assert!(node.unschedulable);
        assert!(matches!(event, Some(ClusterEvent::NodeUpdated(n)) if n.unschedulable));
        assert!(
            state.cordon_member(&two, true).unwrap().1.is_none(),
            "no change"
        );
        // A new record of the node keeps the overlay.
        let events = state.replace_members(members(vec![candidate(2, 1, true, 2)]));
        assert!(events.is_empty(), "only seq changed: {events:?}");
        assert!(state.get(&two).unwrap().unschedulable);
        assert!(state.peers()[1].node_id == two);

        state.replace_members(BTreeMap::new());
        state.replace_members(members(vec![candidate(2, 1, true, 1)]));
        assert!(!state.get(&two).unwrap().unschedulable, "overlay forgotten");
    }

    #[test]
    fn local_changes_bump_the_sequence_only_when_the_record_changes() {
        let local = test_node(1, 1, 1);
        let mut state = State::new(local.clone(), "127.0.0.1:1".parse().unwrap(), 1);
        assert!(state.set_local(local.clone(), None).is_none());
        assert_eq!(state.local_seq(), 0);
        assert!(state.local_with(&local, Some(true)).unschedulable);
        let event = state.set_local(local.clone(), Some(true));
        assert!(matches!(event, Some(ClusterEvent::NodeUpdated(n)) if n.unschedulable));
        assert_eq!(state.local_seq(), 1);
        // The caller's record does not undo the cordon.
        assert!(state.set_local(local.clone(), None).is_none());
        assert!(state.local().unschedulable);
        let peers = state.peers();
        assert!(peers[0].is_self && peers[0].live && peers[0].generation == 1);
    }
}
