//! `orchestrator_daemon migrate`: a real SQLite daemon's state copied into a
//! real etcd, then served by two control planes on it — the same workloads
//! (names and ids), the audit log going on as one chain, the same audience
//! and credit ledger. Copying into a prefix that holds anything is refused
//! and changes nothing; a missing source is refused and nothing is created.
//!
//! Needs `UNIVRS_TEST_ETCD` (`scripts/test-etcd start`); the end-to-end test
//! is skipped without it, saying so.

mod ha_common;

use std::path::Path;
use std::process::{Command, Output};

use chrono::Utc;
use etcd_client::{Client, GetOptions};
use ha_common::{client, endpoints, manifest, running, spawn, user, wait_for, Group, BIN};

/// Runs `orchestrator_daemon migrate` with `args`.
fn migrate(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("migrate")
        .args(args)
        .output()
        .expect("running orchestrator_daemon migrate")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every key under `prefix/` with its value and the revision it was last
/// written at.
fn snapshot(endpoints: &str, prefix: &str) -> Vec<(Vec<u8>, Vec<u8>, i64)> {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let endpoints: Vec<&str> = endpoints.split(',').collect();
    rt.block_on(async {
        let mut etcd = Client::connect(&endpoints, None)
            .await
            .expect("etcd client");
        let resp = etcd
            .get(format!("{prefix}/"), Some(GetOptions::new().with_prefix()))
            .await
            .expect("reading the prefix");
        resp.kvs()
            .iter()
            .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()))
            .collect()
    })
}

/// The credit limit of `subject` as the control plane at `addr` says.
fn limit_of(addr: &str, subject: &ed25519_dalek::SigningKey) -> Option<i64> {
    orchestrator_api::client::ApiClient::new(&format!("http://{addr}"), Some(subject.clone()))
        .expect("a client")
        .credit_balance()
        .ok()
        .map(|b| b.data.limit)
}

#[test]
fn a_sqlite_control_plane_moves_to_etcd_with_its_state_audit_log_and_identity() {
    let Some(ep) = endpoints() else { return };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut old = spawn(dir.path(), "sqlite", &["--store".into(), "sqlite".into()]);
    let c = client(&old.addr);
    let wanted = [("web", 2), ("db", 1), ("cache", 3)];
    for (name, replicas) in wanted {
        let created = c
            .create_workload("application/json", &manifest(name, replicas))
            .expect("a workload created");
        assert_eq!(created.status, 201);
    }
    for (name, replicas) in wanted {
        wait_for(&format!("{replicas} instances of {name}"), || {
            (running(&old.addr, name)?.0 == replicas as usize).then_some(())
        });
    }
    // An attestation: the ledger sets a limit, signed by its authority.
    let subject = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let now = Utc::now();
    let attestation = mycelial::evidence::sign_attestation(
        &user(),
        mycelial::evidence::Attestation {
            issuer: orchestrator_shared_types::PublicKey(user().verifying_key().to_bytes()),
            subject: orchestrator_shared_types::PublicKey(subject.verifying_key().to_bytes()),
            weight: 1.0,
            issued_at: now,
            expires_at: now + chrono::Duration::days(30),
        },
    )
    .expect("signed");
    c.attest(&attestation).expect("attested");
    let limit = wait_for("the attested operator's limit", || {
        limit_of(&old.addr, &subject).filter(|l| *l > 0)
    });
    let mut before: Vec<(String, String)> = c
        .list_workloads()
        .expect("the workloads")
        .data
        .iter()
        .map(|w| (w.name().to_owned(), w.workload.id.to_string()))
        .collect();
    before.sort();
    let audited = c.verify_audit().expect("audit verification").data;
    assert!(audited.ok && audited.entries >= 4, "{audited:?}");
    let ledger_id = format!("standalone-{}", old.node_id);

    // Stopped as an operator stops it: SIGTERM, then wait for the exit.
    let stopped = Command::new("kill")
        .args(["-TERM", &old.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(stopped.success());
    let exit = old.child.wait().expect("waiting for the daemon");
    assert!(exit.success(), "the daemon stopped cleanly: {exit}");

    let prefix = format!("/univrs-test-migrate/{}", uuid::Uuid::new_v4());
    let from = format!("sqlite:{}", old.data.display());
    let to = format!("etcd:{ep}");
    let args = ["--from", &from, "--to", &to, "--etcd-prefix", &prefix];
    let out = migrate(&args);
    let said = text(&out);
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().last(), Some("verified"), "{said}");
    // Rows: what (may have spaces), count, hash.
    let count_of = |what: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                let n = words.len();
                (n >= 3 && words[..n - 2].join(" ") == what).then(|| words[n - 2].parse().ok())?
            })
            .unwrap_or_else(|| panic!("no row {what:?}: {said}"))
    };
    assert_eq!(count_of("workloads"), 3, "{said}");
    assert_eq!(count_of("instances"), 6, "{said}");
    assert!(count_of("records audit") >= audited.entries, "{said}");
    assert_eq!(count_of("records cluster"), 2, "{said}");
    assert!(said.contains("ledger's authority key"), "{said}");

    // Again, into the prefix that now holds the cluster: refused, untouched.
    let copied = snapshot(&ep, &prefix);
    let again = migrate(&args);
    let said = text(&again);
    assert!(!again.status.success(), "{said}");
    assert!(
        said.contains("already holds") && said.contains("nothing was copied"),
        "{said}"
    );
    assert_eq!(snapshot(&ep, &prefix), copied, "the refusal wrote nothing");

    // Two control planes on the migrated prefix.
    let mut g = Group::on_prefix(ep, "1s", prefix);
    g.start(&[]);
    g.start(&[]);
    let leader = g.agreed_leader(&[0, 1]);
    let follower = 1 - leader;
    let (laddr, faddr) = (
        g.planes[leader].addr.clone(),
        g.planes[follower].addr.clone(),
    );
    for addr in [&laddr, &faddr] {
        let info = client(addr).info().expect("GET /api/v1/info");
        assert_eq!(
            info.audience, ledger_id,
            "the audience is the old ledger id"
        );
        assert_eq!(info.cluster_id.as_deref(), Some(ledger_id.as_str()));
    }
    let mut after: Vec<(String, String)> = client(&faddr)
        .list_workloads()
        .expect("the workloads, through the follower")
        .data
        .iter()
        .map(|w| (w.name().to_owned(), w.workload.id.to_string()))
        .collect();
    after.sort();
    assert_eq!(after, before, "the same workloads, names and ids");
    let verified = client(&faddr)
        .verify_audit()
        .expect("audit verification in etcd")
        .data;
    assert!(
        verified.ok && verified.entries >= audited.entries,
        "{verified:?} after {audited:?}"
    );
    // The chain goes on in etcd: a write is audited after the old entries.
    client(&faddr)
        .scale_workload("web", 1)
        .expect("scaled through the follower");
    let verified = client(&laddr).verify_audit().expect("verification").data;
    assert!(
        verified.ok && verified.entries > audited.entries,
        "{verified:?}"
    );
    let lnode = g.planes[leader].node_id.clone();
    wait_for("the leader to run `db` on its node", || {
        let (n, nodes) = running(&laddr, "db")?;
        (n == 1 && nodes.iter().all(|x| *x == lnode)).then_some(())
    });
    // The ledger replayed under its id and authority: the limit is there.
    let replayed = wait_for("the leader to answer for the ledger", || {
        limit_of(&faddr, &subject)
    });
    assert_eq!(replayed, limit, "the limit the old ledger set is replayed");
    assert!(
        !g.log_of(leader).contains("starting to lead failed"),
        "{}",
        g.log_of(leader)
    );
}

#[test]
fn a_missing_source_is_refused_and_nothing_is_created() {
    // The source is read before etcd is dialled: no etcd needed.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let to = "etcd:http://127.0.0.1:9";
    let missing = dir.path().join("none");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("an empty directory");
    for from in [&missing, &empty, &empty.join("state.db")] {
        let out = migrate(&["--from", &format!("sqlite:{}", from.display()), "--to", to]);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains("no SQLite state at"), "{said}");
    }
    assert!(!missing.exists(), "no directory was created");
    assert!(
        is_empty(&empty),
        "nothing was created in the empty directory"
    );

    // A database without the node key of its data directory is refused too.
    std::fs::write(empty.join("state.db"), b"").expect("a file");
    let out = migrate(&["--from", &format!("sqlite:{}", empty.display()), "--to", to]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("no node key in"), "{said}");

    let out = migrate(&["--from", "/var/lib/univrs", "--to", to]);
    assert!(text(&out).contains("sqlite:PATH"), "{}", text(&out));
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}
