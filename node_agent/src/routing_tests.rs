//! Tests of the routing runtime's handling of what other nodes report.

use super::*;
use container_runtime_interface::ContainerState;
use orchestrator_shared_types::admission::{JoinRole, ListedMember};
use orchestrator_shared_types::{InstanceId, WorkloadId};

fn status(address: Option<&str>) -> ContainerStatus {
    ContainerStatus {
        id: ContainerId("u-1".into()),
        node_id: NodeId([0; 32]),
        instance_id: InstanceId::new(),
        workload_id: WorkloadId::SYSTEM,
        name: "main".into(),
        state: ContainerState::Running,
        exit_code: None,
        reason: None,
        started_at: None,
        finished_at: None,
        ready: true,
        address: address.map(str::to_owned),
        ports: Vec::new(),
    }
}

#[test]
fn a_node_cannot_claim_an_address_outside_its_subnet() {
    let (worker, legacy) = (NodeId([1; 32]), NodeId([2; 32]));
    let list = MemberList {
        cluster_id: "c".into(),
        version: 1,
        issued_at: chrono::Utc::now(),
        members: vec![
            ListedMember {
                node_id: worker,
                role: JoinRole::Worker,
                subnet: Some("10.88.1.0/24".parse().expect("subnet")),
            },
            ListedMember {
                node_id: legacy,
                role: JoinRole::Worker,
                subnet: None,
            },
        ],
    };
    let vetted = |node, address| route_remote(status(address), node, Some(&list)).address;
    assert_eq!(vetted(worker, Some("10.88.1.7")), Some("10.88.1.7".into()));
    // Another node's subnet, the control plane's, the outside, garbage.
    for claimed in ["10.88.2.7", "10.88.0.3", "192.0.2.1", "10.88.1.7/24", "x"] {
        assert_eq!(vetted(worker, Some(claimed)), None, "{claimed}");
    }
    assert_eq!(vetted(worker, None), None);
    // A member without a subnet (a cluster made before the network):
    // nothing to check against, as before.
    assert_eq!(vetted(legacy, Some("10.88.2.7")), Some("10.88.2.7".into()));
    let routed = route_remote(status(Some("10.88.2.7")), worker, Some(&list));
    assert_eq!(routed.node_id, worker);
    assert_eq!(routed.id, routed_id(&worker, &ContainerId("u-1".into())));
}
