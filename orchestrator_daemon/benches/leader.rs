//! Control planes on etcd (`--store etcd`), as real daemon processes with
//! the mock runtime:
//!
//! 1. **Leader failover**: three control planes, lease TTL 1 s; kill -9 the
//!    leader, then measure until (a) a survivor names a new leader and
//!    (b) the new leader acts: a workload created right after the kill,
//!    through a survivor, runs. Five trials (the killed one is replaced by a
//!    fresh control plane each time); p50 and max.
//! 2. **API writes per second**: workloads created one after another through
//!    the API of the etcd leader, against a daemon on SQLite (the embedded
//!    default) in the same run.
//!
//! Run: `./scripts/test-etcd start && UNIVRS_TEST_ETCD=$(./scripts/test-etcd
//! endpoints) cargo bench -p orchestrator_daemon --features etcd --bench leader`
//! (add `-- N` for the number of writes; default 300).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/ha_common/mod.rs"]
mod ha_common;

use std::time::{Duration, Instant};

use ha_common::{client, endpoints, manifest, network, running, spawn, wait_for, Group, ROOMY};

const TRIALS: usize = 5;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn p50_max(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}

fn failover(ep: &str) {
    let mut g = Group::new(ep.to_owned(), "1s");
    let mut live: Vec<usize> = (0..3).map(|_| g.start(&ROOMY)).collect();
    let (mut elected, mut acting) = (Vec::new(), Vec::new());
    for trial in 0..TRIALS {
        let leader = g.agreed_leader(&live);
        let survivor = *live.iter().find(|i| **i != leader).unwrap();
        let saddr = g.planes[survivor].addr.clone();
        let dead = g.planes[leader].node_id.clone();
        let killed = Instant::now();
        g.kill(leader);
        live.retain(|i| *i != leader);
        let name = format!("trial-{trial}");
        let mut created = false;
        let mut named = None;
        wait_for("the new leader to act", || {
            if named.is_none() {
                if let Some(l) = network(&saddr).ok().and_then(|n| n.leader) {
                    if l.node_id.to_string() != dead {
                        named = Some(killed.elapsed());
                    }
                }
            }
            if !created {
                created = client(&saddr)
                    .create_workload("application/json", &manifest(&name, 1))
                    .is_ok();
            }
            let (n, _) = running(&saddr, &name)?;
            (created && n == 1).then_some(())
        });
        let acted = killed.elapsed();
        let named = named.unwrap_or(acted);
        println!(
            "trial {}: kill -9 → new leader named {:>7.1} ms, → acting (a new workload runs) {:>7.1} ms",
            trial + 1,
            ms(named),
            ms(acted)
        );
        elected.push(named);
        acting.push(acted);
        live.push(g.start(&ROOMY));
    }
    let (e50, emax) = p50_max(elected);
    let (a50, amax) = p50_max(acting);
    println!("leader failover, lease TTL 1 s, {TRIALS} trials:");
    println!("  kill → new leader named:  p50 {e50:>7.1} ms  max {emax:>7.1} ms");
    println!("  kill → new leader acting: p50 {a50:>7.1} ms  max {amax:>7.1} ms");
}

/// Seconds to create `n` workloads one after another at `addr`.
fn writes(addr: &str, n: usize, tag: &str) -> Duration {
    let c = client(addr);
    let start = Instant::now();
    for i in 0..n {
        let r = c
            .create_workload("application/json", &manifest(&format!("{tag}-{i}"), 0))
            .expect("a write");
        assert_eq!(r.status, 201);
    }
    start.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let Some(ep) = endpoints() else {
        println!("skipped: UNIVRS_TEST_ETCD is not set (scripts/test-etcd start)");
        return;
    };
    failover(&ep);

    let dir = tempfile::tempdir().unwrap();
    let mut sqlite_args: Vec<String> = vec!["--store".into(), "sqlite".into()];
    sqlite_args.extend(ROOMY.iter().map(|a| a.to_string()));
    let sqlite = spawn(dir.path(), "sqlite", &sqlite_args);
    let mut g = Group::new(ep, "1s");
    g.start(&ROOMY);
    g.start(&ROOMY);
    let leader = g.agreed_leader(&[0, 1]);
    let follower = 1 - leader;
    // Warm both up alike.
    writes(&sqlite.addr, 10, "warm");
    writes(&g.planes[leader].addr, 10, "warm");
    let s = writes(&sqlite.addr, n, "w");
    let e = writes(&g.planes[leader].addr, n, "w");
    let f = writes(&g.planes[follower].addr, n, "f");
    println!("API writes (workload create, one client, one after another), {n} each:");
    for (what, d) in [
        ("SQLite (embedded default)", s),
        ("etcd, at the leader", e),
        ("etcd, through a follower", f),
    ] {
        println!(
            "  {what:<28} {:>8.0} writes/s  ({:.2} ms each)",
            n as f64 / d.as_secs_f64(),
            ms(d) / n as f64
        );
    }
}
