//! The lifecycle state machines of nodes and instances, and the one way to
//! move along them.
//!
//! `ontology/state_machines/*.json` holds the same machines as data; a test
//! checks that [`InstanceStatus::can_transition_to`] and
//! [`NodeStatus::can_transition_to`] allow exactly the transitions listed there.
//! Every status change in the code base goes through
//! [`WorkloadInstance::transition`] or [`Node::transition`], which refuse a move
//! the machine forbids with a [`TransitionError`] and leave the record as it
//! was. Constructors set the initial status and deserialisation restores a
//! stored one; nothing else assigns `status` (a test scans the sources).

use chrono::{DateTime, Utc};

use crate::ids::{InstanceId, NodeId};
use crate::instance::{InstanceStatus, WorkloadInstance};
use crate::node::{Node, NodeStatus};

/// A status change that the object's state machine forbids.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// An instance may not move from `from` to `to`.
    #[error("instance {id} may not move from {from:?} to {to:?} (ontology/state_machines/instance.json)")]
    Instance {
        /// The instance.
        id: InstanceId,
        /// Its status, unchanged.
        from: InstanceStatus,
        /// The status refused.
        to: InstanceStatus,
    },
    /// A node may not move from `from` to `to`.
    #[error("node {id} may not move from {from:?} to {to:?} (ontology/state_machines/node.json)")]
    Node {
        /// The node.
        id: NodeId,
        /// Its status, unchanged.
        from: NodeStatus,
        /// The status refused.
        to: NodeStatus,
    },
}

impl InstanceStatus {
    /// Every status.
    pub const ALL: [InstanceStatus; 5] = [
        InstanceStatus::Pending,
        InstanceStatus::Running,
        InstanceStatus::Succeeded,
        InstanceStatus::Failed,
        InstanceStatus::Unknown,
    ];

    /// Whether an instance may move from `self` to `next` (staying put is not a transition).
    pub fn can_transition_to(self, next: InstanceStatus) -> bool {
        use InstanceStatus::*;
        matches!(
            (self, next),
            (Pending, Running | Succeeded | Failed | Unknown)
                | (Running, Pending | Succeeded | Failed | Unknown)
                | (Unknown, Pending | Running | Succeeded | Failed)
                | (Succeeded, Pending | Unknown)
                | (Failed, Pending | Unknown)
        )
    }
}

impl NodeStatus {
    /// Every status.
    pub const ALL: [NodeStatus; 4] = [
        NodeStatus::Ready,
        NodeStatus::NotReady,
        NodeStatus::Unknown,
        NodeStatus::Down,
    ];

    /// Whether a node may move from `self` to `next` (staying put is not a transition).
    pub fn can_transition_to(self, next: NodeStatus) -> bool {
        use NodeStatus::*;
        matches!(
            (self, next),
            (Unknown, Ready | NotReady | Down)
                | (Ready, NotReady | Unknown | Down)
                | (NotReady, Ready | Unknown | Down)
                | (Down, Ready | Unknown)
        )
    }
}

impl WorkloadInstance {
    /// Moves the instance to `next` for `reason` at `at`: sets its status,
    /// reason and `updated_at`, and clears `ready` unless `next` is
    /// `Running` (only a running instance can be ready). A move the instance state machine forbids is
    /// refused with [`TransitionError::Instance`] and changes nothing.
    /// Moving to the status it already has is not a transition: it is allowed
    /// and only records the new reason and time.
    pub fn transition(
        &mut self,
        next: InstanceStatus,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), TransitionError> {
        if self.status != next && !self.status.can_transition_to(next) {
            return Err(TransitionError::Instance {
                id: self.id,
                from: self.status,
                to: next,
            });
        }
        self.status = next;
        self.reason = reason;
        self.updated_at = at;
        if next != InstanceStatus::Running {
            self.ready = false;
        }
        Ok(())
    }
}

impl Node {
    /// Moves the node to `next`. A move the node state machine forbids is
    /// refused with [`TransitionError::Node`] and changes nothing. Moving to
    /// the status it already has is not a transition and does nothing.
    pub fn transition(&mut self, next: NodeStatus) -> Result<(), TransitionError> {
        if self.status != next && !self.status.can_transition_to(next) {
            return Err(TransitionError::Node {
                id: self.id,
                from: self.status,
                to: next,
            });
        }
        self.status = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PublicKey, WorkloadId};
    use crate::resources::Resources;

    fn instance() -> WorkloadInstance {
        WorkloadInstance::pending(WorkloadId::new(), 1, NodeId([7; 32]))
    }

    fn node(status: NodeStatus) -> Node {
        Node {
            id: NodeId([9; 32]),
            address: "127.0.0.1:1".into(),
            status,
            unschedulable: false,
            labels: Default::default(),
            taints: Vec::new(),
            resources_capacity: Resources::default(),
            resources_allocatable: Resources::default(),
            operator: PublicKey([1; 32]),
            joined_at: Utc::now(),
        }
    }

    #[test]
    fn an_instance_moves_along_the_machine() {
        let mut i = instance();
        let at = Utc::now() + chrono::Duration::seconds(5);
        i.transition(InstanceStatus::Running, None, at).unwrap();
        assert_eq!((i.status, i.updated_at), (InstanceStatus::Running, at));
        i.ready = true;
        i.transition(InstanceStatus::Succeeded, Some("Completed".into()), at)
            .unwrap();
        assert_eq!(i.status, InstanceStatus::Succeeded);
        assert!(!i.ready, "only a running instance is ready");
        assert_eq!(i.reason.as_deref(), Some("Completed"));
        // Staying put is allowed and only records the reason.
        i.transition(InstanceStatus::Succeeded, Some("Again".into()), at)
            .unwrap();
        assert_eq!(i.reason.as_deref(), Some("Again"));
    }

    #[test]
    fn an_illegal_instance_move_is_refused_and_changes_nothing() {
        for from in InstanceStatus::ALL {
            for to in InstanceStatus::ALL {
                if from == to || from.can_transition_to(to) {
                    continue;
                }
                let mut i = instance();
                if from != InstanceStatus::Pending {
                    i.transition(from, Some("Setup".into()), Utc::now())
                        .unwrap();
                }
                let before = i.clone();
                let err = i
                    .transition(
                        to,
                        Some("Refused".into()),
                        Utc::now() + chrono::Duration::days(1),
                    )
                    .unwrap_err();
                assert_eq!(err, TransitionError::Instance { id: i.id, from, to });
                assert_eq!(i, before, "{from:?} -> {to:?} changed the record");
            }
        }
        // And the machine does forbid something: a finished instance does not run again
        // without going through Pending.
        let mut i = instance();
        i.transition(InstanceStatus::Succeeded, None, Utc::now())
            .unwrap();
        assert!(i
            .transition(InstanceStatus::Running, None, Utc::now())
            .is_err());
        assert_eq!(i.status, InstanceStatus::Succeeded);
    }

    #[test]
    fn an_illegal_node_move_is_refused_and_changes_nothing() {
        let mut n = node(NodeStatus::Down);
        let before = n.clone();
        let err = n.transition(NodeStatus::NotReady).unwrap_err();
        assert_eq!(
            err,
            TransitionError::Node {
                id: n.id,
                from: NodeStatus::Down,
                to: NodeStatus::NotReady
            }
        );
        assert_eq!(n, before);
        assert!(err.to_string().contains("Down to NotReady"), "{err}");

        n.transition(NodeStatus::Ready).unwrap();
        assert_eq!(n.status, NodeStatus::Ready);
        n.transition(NodeStatus::Ready).unwrap();
        n.transition(NodeStatus::NotReady).unwrap();
        assert_eq!(n.status, NodeStatus::NotReady);
    }
}
