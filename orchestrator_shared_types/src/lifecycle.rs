//! The lifecycle state machines of nodes and instances.
//!
//! `ontology/state_machines/*.json` holds the same machines as data; a test
//! checks that these functions allow exactly the transitions listed there.

use crate::instance::InstanceStatus;
use crate::node::NodeStatus;

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
                | (Succeeded, Pending)
                | (Failed, Pending)
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
