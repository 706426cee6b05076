//! Losing one etcd member stops nothing: three control planes on a
//! three-member etcd of their own (started by this test, so that killing a
//! member does not disturb the other tests' cluster); the member that leads
//! etcd's raft is killed with SIGKILL, and the API keeps answering, writes
//! keep being acknowledged, and a workload created afterwards converges.
//!
//! Runs where the other etcd tests run (`UNIVRS_TEST_ETCD` set, which says
//! Debian's etcd-server is installed); skipped without.

mod ha_common;

use std::time::{Duration, Instant};

use etcd_client::Client;
use ha_common::{client, endpoints, etcd_cluster, manifest, running, wait_for, Group};

#[test]
fn losing_one_etcd_member_stops_nothing() {
    if endpoints().is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let began = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut members = etcd_cluster(dir.path(), "127.0.0.1");
    let urls: Vec<String> = members.iter().map(|m| m.client_url.clone()).collect();
    // Which member leads etcd's raft, once the cluster has a leader.
    let raft_leader = wait_for("the test etcd to elect a leader", || {
        rt.block_on(async {
            for (i, url) in urls.iter().enumerate() {
                let options = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_millis(500))
                    .with_timeout(Duration::from_secs(1));
                let Ok(mut c) = Client::connect([url.as_str()], Some(options)).await else {
                    continue;
                };
                let Ok(s) = c.status().await else { continue };
                if s.leader() != 0 && s.leader() == s.header().map(|h| h.member_id()).unwrap_or(0) {
                    return Some(i);
                }
            }
            None
        })
    });

    eprintln!("etcd elected a leader after {:?}", began.elapsed());
    let mut g = Group::new(urls.join(","), "2s");
    for _ in 0..3 {
        g.start(&[]);
    }
    let leader = g.agreed_leader(&[0, 1, 2]);
    let follower = (leader + 1) % 3;
    let faddr = g.planes[follower].addr.clone();
    client(&faddr)
        .create_workload("application/json", &manifest("before", 2))
        .expect("created");
    wait_for("`before` running", || {
        (running(&faddr, "before")?.0 == 2).then_some(())
    });

    eprintln!(
        "control planes up and `before` running after {:?}",
        began.elapsed()
    );
    // The member that leads etcd's raft goes.
    let killed = Instant::now();
    drop(members.remove(raft_leader));

    // Writes go on being acknowledged, through every control plane.
    for (i, p) in g.planes.iter().enumerate() {
        let name = format!("after-{i}");
        wait_for(&format!("a write through control plane {i}"), || {
            client(&p.addr)
                .create_workload("application/json", &manifest(&name, 1))
                .ok()
                .map(|_| ())
        });
    }
    let writable = killed.elapsed();
    for i in 0..3 {
        let name = format!("after-{i}");
        wait_for(&format!("`{name}` running"), || {
            (running(&faddr, &name)?.0 == 1).then_some(())
        });
    }
    let converged = killed.elapsed();
    if std::env::var("HA_DEBUG").is_ok() {
        for i in 0..3 {
            eprintln!("=== cp{i}\n{}", g.log_of(i));
        }
    }
    // Still one leader that every control plane names.
    let now_leading = g.agreed_leader(&[0, 1, 2]);
    eprintln!(
        "etcd raft leader killed: writes through all three control planes within {:.0} ms, \
         running within {:.0} ms; control-plane leader {}",
        writable.as_secs_f64() * 1000.0,
        converged.as_secs_f64() * 1000.0,
        if now_leading == leader {
            "unchanged"
        } else {
            "changed"
        }
    );
    // Every workload is there, once (names are unique per owner).
    wait_for("the four workloads listed", || {
        let n = client(&faddr).list_workloads().ok()?.data.len();
        assert!(n <= 4, "{n} workloads where 4 were written");
        (n == 4).then_some(())
    });
}
