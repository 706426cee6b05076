//! Several control planes sharing one real etcd (`--store etcd`), run as
//! real daemon processes: one leads, the others forward to it; a leader
//! killed with SIGKILL is replaced and its workloads converge on the new
//! one; a leader stopped past its lease writes nothing that sticks and
//! rejoins as a follower; the credit ledger replays under the next leader;
//! one audit chain across leaders; bad etcd settings are refused.
//! (What followers forward: `ha_forward.rs`.)
//!
//! Needs `UNIVRS_TEST_ETCD` (`scripts/test-etcd start`); skipped without.

mod ha_common;

use std::time::Instant;

use chrono::Utc;
use etcd_client::Client;
use ha_common::{client, endpoints, manifest, network, running, user, wait_for, Group};

#[test]
fn a_killed_leader_is_replaced_and_its_workloads_converge_on_the_new_one() {
    let Some(ep) = endpoints() else { return };
    let mut g = Group::new(ep, "1s");
    for _ in 0..3 {
        g.start(&[]);
    }
    let leader = g.agreed_leader(&[0, 1, 2]);
    let follower = (leader + 1) % 3;
    let (laddr, faddr) = (
        g.planes[leader].addr.clone(),
        g.planes[follower].addr.clone(),
    );
    assert_eq!(
        network(&faddr).expect("network status").role,
        "control-plane"
    );

    // Written through a follower: forwarded to the leader, which places it.
    let created = client(&faddr)
        .create_workload("application/json", &manifest("before", 2))
        .expect("a workload created through a follower");
    assert_eq!(created.status, 201);
    let lnode = g.planes[leader].node_id.clone();
    wait_for("2 instances of `before` on the leader", || {
        let (n, nodes) = running(&faddr, "before")?;
        (n == 2 && nodes.iter().all(|x| *x == lnode)).then_some(())
    });
    assert!(
        client(&laddr).list_workloads().expect("list").data.len() == 1,
        "the leader sees the workload written through the follower"
    );

    // A workload created just before the leader dies.
    client(&faddr)
        .create_workload("application/json", &manifest("just-before", 2))
        .expect("created");
    let killed = Instant::now();
    g.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let next = g.agreed_leader(&survivors);
    let elected = killed.elapsed();
    assert_ne!(next, leader, "the dead leader is still named");
    let naddr = g.planes[next].addr.clone();
    let nnode = g.planes[next].node_id.clone();
    for name in ["before", "just-before"] {
        wait_for(
            &format!("2 instances of `{name}` on the new leader"),
            || {
                let (n, nodes) = running(&naddr, name)?;
                (n == 2 && nodes.iter().all(|x| *x == nnode)).then_some(())
            },
        );
    }
    let converged = killed.elapsed();
    eprintln!(
        "kill -9 of the leader → a new leader named by every survivor: {:.0} ms; \
         → both workloads running on it: {:.0} ms",
        elected.as_secs_f64() * 1000.0,
        converged.as_secs_f64() * 1000.0
    );
    // Every survivor names the new leader, and forwards to it.
    for &i in &survivors {
        let n = network(&g.planes[i].addr).expect("network");
        assert_eq!(n.leader.expect("a leader").node_id.to_string(), nnode);
        assert_eq!(
            client(&g.planes[i].addr)
                .list_workloads()
                .expect("list")
                .data
                .len(),
            2
        );
    }
    assert!(g.log_of(next).contains("this control plane leads"));
    // One audit log for the cluster, in etcd: the creates acknowledged by
    // the dead leader are in it, and its chain verifies across the change.
    let v = client(&naddr).verify_audit().expect("audit verify").data;
    assert!(
        v.ok,
        "the audit chain breaks across the failover: {:?}",
        v.error
    );
    let actions: Vec<String> = client(&naddr)
        .audit(None, None)
        .expect("audit")
        .data
        .into_iter()
        .map(|e| e.action)
        .collect();
    let creates = actions
        .iter()
        .filter(|a| a.starts_with("POST /api/v1/workloads"))
        .count();
    assert!(
        creates >= 2,
        "the dead leader's audit entries are gone: {actions:?}"
    );
}

#[test]
fn a_leader_stopped_past_its_lease_writes_nothing_that_sticks_and_rejoins_as_a_follower() {
    let Some(ep) = endpoints() else { return };
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let endpoints: Vec<String> = ep.split(',').map(str::to_owned).collect();
    let mut etcd = rt
        .block_on(Client::connect(&endpoints, None))
        .expect("etcd client");
    let mut g = Group::new(ep, "1s");
    g.start(&[]);
    g.start(&[]);
    let leader = g.agreed_leader(&[0, 1]);
    let other = 1 - leader;
    let (laddr, oaddr) = (g.planes[leader].addr.clone(), g.planes[other].addr.clone());
    let (lnode, onode) = (
        g.planes[leader].node_id.clone(),
        g.planes[other].node_id.clone(),
    );
    client(&oaddr)
        .create_workload("application/json", &manifest("steady", 2))
        .expect("created");
    wait_for("2 instances on the leader", || {
        let (n, nodes) = running(&oaddr, "steady")?;
        (n == 2 && nodes.iter().all(|x| *x == lnode)).then_some(())
    });

    g.signal(leader, "STOP");
    // The other takes over once the stopped leader's lease expires.
    wait_for("the other control plane to lead", || {
        let l = network(&oaddr).ok()?.leader?;
        (l.node_id.to_string() == onode).then_some(())
    });
    let deposed_at = rt.block_on(ha_common::revision(&mut etcd));
    wait_for("the workload to run on the new leader", || {
        let (n, nodes) = running(&oaddr, "steady")?;
        (n == 2 && nodes.iter().all(|x| *x == onode)).then_some(())
    });

    g.signal(leader, "CONT");
    // It notices the lost lease, stops acting and follows the new leader.
    wait_for("the stopped leader to step down", || {
        g.log_of(leader)
            .contains("lost its lease and stopped acting")
            .then_some(())
    });
    wait_for("the old leader to name the new one", || {
        let l = network(&laddr).ok()?.leader?;
        (l.node_id.to_string() == onode).then_some(())
    });
    // Through the old leader, now a follower, the API reaches the new one.
    client(&laddr)
        .scale_workload("steady", 3)
        .expect("scaled through the old leader");
    wait_for("3 instances on the new leader", || {
        let (n, nodes) = running(&oaddr, "steady")?;
        (n == 3 && nodes.iter().all(|x| *x == onode)).then_some(())
    });

    // From etcd's history: after the new leader took over, nothing says an
    // instance runs on the old leader's node — only the old leader, which
    // still runs them, could have written that.
    let puts = rt.block_on(ha_common::puts_since(&mut etcd, &g.prefix, deposed_at));
    assert!(
        !puts.is_empty(),
        "the new leader's writes are in the history"
    );
    let stuck: Vec<_> = puts
        .iter()
        .filter(|v| {
            v.get("node_id").and_then(|n| n.as_str()) == Some(lnode.as_str())
                && v.get("status")
                    .map(|s| s.to_string().to_lowercase().contains("running"))
                    .unwrap_or(false)
        })
        .collect();
    assert!(
        stuck.is_empty(),
        "the deposed leader's writes stuck after revision {deposed_at}: {stuck:?}"
    );
    // It campaigns again, as a follower.
    assert_eq!(
        network(&laddr)
            .expect("network")
            .leader
            .expect("a leader")
            .node_id
            .to_string(),
        onode
    );
}

#[test]
fn etcd_settings_that_cannot_work_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    for (args, says) in [
        (
            vec!["--etcd-endpoints", "http://127.0.0.1:2379"],
            "--store etcd only",
        ),
        (vec!["--store", "etcd"], "needs --etcd-endpoints"),
        (
            vec!["--store", "etcd", "--etcd-endpoints", "127.0.0.1:2379"],
            "not a client URL",
        ),
        (
            vec![
                "--store",
                "etcd",
                "--etcd-endpoints",
                "http://127.0.0.1:2379",
                "--etcd-prefix",
                "univrs",
            ],
            "must start with /",
        ),
        (
            vec![
                "--store",
                "etcd",
                "--etcd-endpoints",
                "http://127.0.0.1:2379",
                "--lease-ttl",
                "0s",
            ],
            "between 1 and 60",
        ),
        (
            vec![
                "--store",
                "etcd",
                "--etcd-endpoints",
                "http://127.0.0.1:2379",
                "--gossip-addr",
                "127.0.0.1:17946",
                "--role",
                "worker",
            ],
            "--store etcd is for control planes",
        ),
        (
            vec![
                "--store",
                "etcd",
                "--etcd-endpoints",
                "http://127.0.0.1:2379",
                "--gossip-addr",
                "127.0.0.1:17946",
                "--cluster-id",
                "mine",
            ],
            "takes the cluster's identity from etcd",
        ),
    ] {
        let out = std::process::Command::new(ha_common::BIN)
            .args(["--runtime", "mock", "--data-dir"])
            .arg(&data)
            .args(&args)
            .output()
            .expect("running orchestrator_daemon");
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid configuration"), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} does not say {says:?}: {err}");
        assert!(!data.exists(), "{args:?} created the data dir");
    }
}

#[test]
fn an_unreachable_etcd_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = std::process::Command::new(ha_common::BIN)
        .args([
            "--runtime",
            "mock",
            "--api-addr",
            "127.0.0.1:0",
            "--store",
            "etcd",
        ])
        .args(["--etcd-endpoints", &format!("http://127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("running orchestrator_daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("etcd"), "{err}");
    assert!(
        err.contains(&port.to_string()),
        "the error names the endpoint: {err}"
    );
}

/// The credit ledger's control entries (a limit set after an attestation)
/// are signed by the cluster's ledger key, not by the leader's node key:
/// the next leader replays them and leads.
#[test]
fn the_credit_ledger_survives_a_change_of_leader() {
    let Some(ep) = endpoints() else { return };
    let mut g = Group::new(ep, "1s");
    for _ in 0..2 {
        g.start(&[]);
    }
    let leader = g.agreed_leader(&[0, 1]);
    let other = 1 - leader;
    let oaddr = g.planes[other].addr.clone();
    let (issuer, subject) = (user(), ed25519_dalek::SigningKey::from_bytes(&[8; 32]));
    let now = Utc::now();
    let attestation = mycelial::evidence::sign_attestation(
        &issuer,
        mycelial::evidence::Attestation {
            issuer: orchestrator_shared_types::PublicKey(issuer.verifying_key().to_bytes()),
            subject: orchestrator_shared_types::PublicKey(subject.verifying_key().to_bytes()),
            weight: 1.0,
            issued_at: now,
            expires_at: now + chrono::Duration::days(30),
        },
    )
    .expect("signed");
    client(&oaddr)
        .attest(&attestation)
        .expect("attested through a follower");
    let as_subject = |addr: &str| {
        orchestrator_api::client::ApiClient::new(&format!("http://{addr}"), Some(subject.clone()))
            .expect("a client")
            .credit_balance()
            .ok()
            .map(|b| b.data.limit)
    };
    let limit = wait_for("the leader to set the attested operator's limit", || {
        as_subject(&oaddr).filter(|l| *l > 0)
    });
    g.kill(leader);
    let next = g.agreed_leader(&[other]);
    assert_eq!(next, other);
    let after = wait_for("the new leader to answer for the ledger", || {
        as_subject(&oaddr)
    });
    assert_eq!(after, limit, "the limit set by the old leader is replayed");
    assert!(
        !g.log_of(other).contains("starting to lead failed"),
        "{}",
        g.log_of(other)
    );
}
