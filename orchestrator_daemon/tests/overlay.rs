//! The cluster network across nodes (issue 16 §4), on two hosts of a lab
//! (network namespaces joined by a switch) running real daemons on the youki
//! runtime, images from the test registry through a forwarder on the lab's
//! network; root, as CI has.
//!
//! - each member is handed its own subnet of the cluster range at
//!   admission, listed in the signed member list, and its bridge takes it;
//! - an instance on a worker finds the server on the control plane's host by
//!   name (the worker's DNS server, fed by the control plane's directory)
//!   and fetches its page through the WireGuard overlay, by name and by
//!   address; nothing of the page crosses the wire in clear (a capture on
//!   the switch sees only WireGuard);
//! - another owner's instance on the worker neither resolves the name nor
//!   connects to the server's address;
//! - through the overlay, an instance reaches no port of the other node;
//! - a host on the nodes' network that routes the instances' subnet through
//!   a node reaches no instance.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod multihost_common;

use std::path::PathBuf;
use std::time::Duration;

use multihost_common::capture::contains_ignoring_case;
use multihost_common::youki::{deploy_web, manifest, namespaces, registry_forwarder, running};
use multihost_common::{eventually, sh, Lab, API_PORT};
use serde_json::{json, Value};

/// The lab's network: 10.250.`NET`.0/24 (unique among the lab tests).
const NET: u8 = 6;
const DEADLINE: Duration = Duration::from_secs(60);
/// What the server's page says.
const PAGE: &str = "overlay-page-4242";

/// A route of the test machine, removed when dropped (a failed assertion
/// included).
struct Route(String);

impl Route {
    fn add(dest: &str, via: &str) -> Self {
        sh(&["ip", "route", "add", dest, "via", via]);
        Self(dest.to_owned())
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["route", "del", &self.0])
            .output();
    }
}

/// Runs `script` once as workload `name` of `key` on `host` and returns
/// what it printed, up to its `END`.
async fn run_once(
    lab: &Lab,
    key: &ed25519_dalek::SigningKey,
    (name, host): (&str, &str),
    image: &str,
    script: &str,
    labels: Value,
) -> String {
    let mut m = manifest(name, ("host", host), image, script);
    m["restart_policy"] = json!("Never");
    m["labels"] = labels;
    let (status, body) = lab
        .call_as(key, 0, "POST", "/api/v1/workloads", Some(&m))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let path = orchestrator_api::routes::workload_logs(name, None, false);
    let started = std::time::Instant::now();
    loop {
        let out = match lab.call_as(key, 0, "GET", &path, None).await {
            Some((200, Value::String(text))) => text,
            _ => String::new(),
        };
        if out.contains("END") {
            return out;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{name} did not finish: {out}\n--- host 1 log:\n{}",
            lab.log_tail(1, 30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_on_two_nodes_reach_their_owners_instances_by_name_over_the_encrypted_overlay_only(
) {
    let daemon = PathBuf::from(env!("CARGO_BIN_EXE_orchestrator_daemon"));
    let mut lab = Lab::new("uo", NET, 2, &daemon);
    lab.runtime = "youki";
    let forwarder = format!("10.250.{NET}.1:5000");
    let image = registry_forwarder(&forwarder).await;
    for i in 0..2 {
        lab.set_args(i, &["--insecure-registry", &forwarder]);
    }
    lab.start(0);
    lab.wait_up(0, DEADLINE).await;
    lab.start(1);
    lab.wait_up(1, DEADLINE).await;

    // Subnets handed out at admission, in the signed member list.
    eventually(
        DEADLINE,
        "both members are listed with their subnets",
        || async {
            let v = lab
                .get(0, "/api/v1/cluster/members")
                .await
                .unwrap_or_default();
            let text = v.to_string();
            text.contains("10.88.0.0/24") && text.contains("10.88.1.0/24")
        },
    )
    .await
    .unwrap();

    let namespaces_before = namespaces(&lab);
    let mut capture = lab.capture(&lab.path("overlay.pcap"));
    // The server on host 0 (the control plane), ready once it listens.
    deploy_web(&lab, ("host", "h0"), &image, PAGE).await;
    let started = std::time::Instant::now();
    let web = loop {
        if let Some((a, _, _)) = running(&lab, "web").await {
            break a;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the server never ran on host 0 with an address: {}\n--- host 0 log:\n{}",
            lab.get(0, "/api/v1/workloads/web/instances")
                .await
                .unwrap_or_default(),
            lab.log_tail(0, 30),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(web.starts_with("10.88.0."), "host 0's subnet: {web}");

    let took = eventually(DEADLINE, "the server is Ready", || async {
        lab.get(0, "/api/v1/workloads/web/instances")
            .await
            .is_some_and(|v| v["items"][0]["ready"] == true)
    })
    .await
    .unwrap();
    assert!(took < Duration::from_secs(5), "readiness took {took:?}");

    // The same owner's client on host 1 (a worker): the name resolves there
    // (the control plane's directory), the page comes through the tunnel,
    // and host 0's own ports stay out of reach through it.
    let owner = lab.key.clone();
    let out = run_once(
        &lab,
        &owner,
        ("client", "h1"),
        &image,
        &format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do nslookup web >/dev/null 2>&1 && break; sleep 0.5; done; \
             nslookup web; \
             for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://web:8088/ && break; sleep 0.5; done; \
             echo DIRECT; \
             wget -q -O - http://{web}:8088/; echo NODE; \
             timeout 3 wget -q -O /dev/null http://10.88.0.1:{API_PORT}/health \
             && echo NODE-REACHED || echo node-refused; echo END"
        ),
        json!({}),
    )
    .await;
    let (by_name, rest) = out.split_once("DIRECT").unwrap();
    let (direct, node) = rest.split_once("NODE").unwrap();
    assert!(
        by_name.contains(&web),
        "the name resolves on the worker: {out}"
    );
    assert!(
        by_name.contains(PAGE),
        "the page, by name, across nodes: {out}"
    );
    assert!(direct.contains(PAGE), "the page, by address: {out}");
    assert!(
        node.contains("node-refused") && !node.contains("NODE-REACHED"),
        "another node's API through the tunnel: {out}"
    );

    // Another owner's instance on host 1: no name, no connection — even
    // with a manifest whose labels claim to be the owner's.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let owner_hex = hex::encode(owner.verifying_key().to_bytes());
    let out = run_once(
        &lab,
        &stranger,
        ("intruder", "h1"),
        &image,
        &format!(
            "nslookup web; echo DIRECT; timeout 3 wget -O - http://{web}:8088/ 2>&1; echo END"
        ),
        json!({ "univrs.io/owner": owner_hex }),
    )
    .await;
    let (lookup, direct) = out.split_once("DIRECT").unwrap();
    assert!(
        lookup.contains("NXDOMAIN") && !lookup.contains(&web),
        "another owner's name: {out}"
    );
    assert!(
        !direct.contains(PAGE) && !direct.contains("HTTP/1.1"),
        "another owner's instance is refused across nodes: {out}"
    );

    // On the wire between the hosts: WireGuard, and the page never in clear.
    let tunnelled = eventually(
        Duration::from_secs(10),
        "the capture holds tunnel packets",
        || async { capture.count("udp port 51820") > 0 },
    )
    .await;
    let pcap = capture.finish();
    assert!(
        tunnelled.is_ok(),
        "the instances' traffic crossed in the tunnel: {} packets captured, {} of the tunnel",
        capture.count(""),
        capture.count("udp port 51820")
    );
    assert!(
        !contains_ignoring_case(&pcap, PAGE.as_bytes()),
        "the page crossed in clear"
    );
    assert_eq!(
        capture.count("tcp port 8088"),
        0,
        "no plain TCP to the server"
    );

    // A host on the nodes' network (the test process, not a member) that
    // routes the instances' subnet through host 0 reaches no instance.
    // Only the server's own address: the test machine's route to its own
    // bridge (the same subnet, for other tests) stays as it is.
    let h0 = lab.hosts[0].ip.clone();
    let direct = {
        let _route = Route::add(&format!("{web}/32"), &h0);
        tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(format!("{web}:8088")),
        )
        .await
    };
    assert!(
        !matches!(direct, Ok(Ok(_))),
        "a stranger on the network connected to an instance"
    );

    // Gone again: the workloads, their containers and namespaces.
    for (key, name) in [(&owner, "client"), (&stranger, "intruder"), (&owner, "web")] {
        let (status, body) = lab
            .call_as(key, 0, "DELETE", &format!("/api/v1/workloads/{name}"), None)
            .await
            .unwrap();
        assert!(status < 300, "{body}");
    }
    eventually(
        DEADLINE,
        "the workloads and their instances are gone",
        || async {
            let mut left = 0;
            for (key, name) in [(&owner, "client"), (&stranger, "intruder"), (&owner, "web")] {
                let path = format!("/api/v1/workloads/{name}/instances");
                left += match lab.call_as(key, 0, "GET", &path, None).await {
                    Some((404, _)) => 0,
                    Some((200, v)) => v["items"].as_array().map_or(1, Vec::len),
                    _ => 1,
                };
            }
            left == 0 && namespaces(&lab) == namespaces_before
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: namespaces left {:?}", namespaces(&lab)));
}
