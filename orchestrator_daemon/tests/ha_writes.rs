//! No acknowledged write is lost: 1,000 workloads are created through the
//! API by four writers while the process that acknowledges them is killed
//! with SIGKILL at a random point — the leader of three control planes on
//! etcd, and a daemon on SQLite (restarted on its data directory). Every
//! write answered 2xx is there afterwards, and none is there twice.
//!
//! A writer whose request fails (connection refused or reset, 502, 503)
//! sends it again, to the next control plane: a create of the same name by
//! the same owner is an update, so a write that was applied but not
//! acknowledged is not made twice.

mod ha_common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ha_common::{client, endpoints, manifest, spawn, wait_for, Group, DEADLINE, ROOMY};
use rand::Rng;

const WRITES: usize = 1000;
const WRITERS: usize = 4;

/// What the writers saw.
#[derive(Default)]
struct Outcome {
    /// Names answered 2xx.
    acked: HashSet<String>,
    /// Requests that failed and were sent again.
    retried: usize,
}

/// Runs the writers against `addrs` (read afresh at every request, so a
/// restarted daemon's new address is used); calls `kill` once, after a
/// random number of acknowledged writes.
fn write_all(addrs: &Mutex<Vec<String>>, kill: impl FnOnce() + Send) -> Outcome {
    let kill_after = rand::thread_rng().gen_range(WRITES / 10..WRITES * 9 / 10);
    let done = AtomicUsize::new(0);
    let outcome = Mutex::new(Outcome::default());
    let kill = Mutex::new(Some(kill));
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (done, outcome, kill) = (&done, &outcome, &kill);
            s.spawn(move || {
                let mut turn = w;
                for i in (w..WRITES).step_by(WRITERS) {
                    let name = format!("w-{i}");
                    let deadline = Instant::now() + DEADLINE;
                    loop {
                        let addr = {
                            let a = addrs.lock().expect("addresses");
                            a[turn % a.len()].clone()
                        };
                        match client(&addr).create_workload("application/json", &manifest(&name, 0))
                        {
                            Ok(r) if (200..300).contains(&r.status) => break,
                            other => {
                                assert!(
                                    Instant::now() < deadline,
                                    "{name} not written within the deadline: {:?}",
                                    other.err()
                                );
                                outcome.lock().expect("outcome").retried += 1;
                                turn += 1;
                                // Back off a little before the next control plane.
                                std::thread::sleep(Duration::from_millis(20));
                            }
                        }
                    }
                    outcome.lock().expect("outcome").acked.insert(name);
                    if done.fetch_add(1, Ordering::SeqCst) + 1 == kill_after {
                        if let Some(k) = kill.lock().expect("kill").take() {
                            k();
                        }
                    }
                }
            });
        }
    });
    let out = outcome.into_inner().expect("outcome");
    eprintln!(
        "{} writes acknowledged, {} sent again; killed after {kill_after}",
        out.acked.len(),
        out.retried
    );
    out
}

/// Every acknowledged name is stored, and no name or id twice.
fn check(addr: &str, out: &Outcome) {
    let listed = client(addr).list_workloads().expect("listing").data;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut ids = HashSet::new();
    for w in &listed {
        *names.entry(w.name().to_owned()).or_default() += 1;
        let id = w.workload.id;
        assert!(ids.insert(id), "workload id {id} listed twice");
    }
    let twice: Vec<_> = names.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    let lost: Vec<_> = out
        .acked
        .iter()
        .filter(|n| !names.contains_key(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:?}",
        lost.len()
    );
    assert_eq!(out.acked.len(), WRITES);
}

#[test]
fn no_acknowledged_write_is_lost_when_the_etcd_leader_is_killed() {
    let Some(ep) = endpoints() else { return };
    let mut g = Group::new(ep, "1s");
    for _ in 0..3 {
        g.start(&ROOMY);
    }
    let leader = g.agreed_leader(&[0, 1, 2]);
    let addrs = Mutex::new(g.planes.iter().map(|p| p.addr.clone()).collect());
    let pid = g.planes[leader].child.id();
    let out = write_all(&addrs, || {
        let ok = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -9 of the leader");
    });
    g.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let next = g.agreed_leader(&survivors);
    check(&g.planes[next].addr, &out);
    // A follower reads the same.
    let other = survivors
        .iter()
        .find(|i| **i != next)
        .copied()
        .unwrap_or(next);
    check(&g.planes[other].addr, &out);
}

#[test]
fn no_acknowledged_write_is_lost_when_the_sqlite_daemon_is_killed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut args: Vec<String> = vec!["--store".into(), "sqlite".into()];
    args.extend(ROOMY.iter().map(|a| a.to_string()));
    let first = spawn(dir.path(), "sqlite", &args);
    let addrs = Mutex::new(vec![first.addr.clone()]);
    let first = Mutex::new(Some(first));
    let out = write_all(&addrs, || {
        // kill -9 (the Drop of ControlPlane), then the same data directory
        // again, on a new port.
        drop(first.lock().expect("daemon").take());
        let again = spawn(dir.path(), "sqlite", &args);
        *addrs.lock().expect("addresses") = vec![again.addr.clone()];
        *first.lock().expect("daemon") = Some(again);
    });
    let addr = addrs.lock().expect("addresses")[0].clone();
    wait_for("the restarted daemon to answer", || {
        client(&addr).list_workloads().ok().map(|_| ())
    });
    check(&addr, &out);
}
