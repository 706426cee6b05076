//! For labs whose hosts run real containers (`lab.runtime = "youki"`): the
//! test registry on the lab's network, manifests of busybox workloads, and
//! what the instances left behind.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::Lab;

/// The test registry on loopback (`UNIVRS_TEST_REGISTRY`).
pub fn registry() -> String {
    std::env::var("UNIVRS_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// Forwards the lab's `listen` (`10.250.NET.1:5000`, the test process's
/// port on the switch) to the test registry on loopback, which the hosts
/// cannot reach themselves; the busybox image there.
pub async fn registry_forwarder(listen: &str) -> String {
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(registry()).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    format!("{listen}/test/busybox:1")
}

/// One replica of `script` in `image`, placed by `selector` (`key=value`).
pub fn manifest(name: &str, selector: (&str, &str), image: &str, script: &str) -> Value {
    json!({
        "name": name,
        "replicas": 1,
        "placement": {"node_selector": {selector.0: selector.1}},
        "containers": [{
            "name": "main",
            "image": image,
            "command": ["sh", "-c", script],
            "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}
        }],
        "restart_policy": "Always"
    })
}

/// The workload `web`: busybox httpd on port 8088 serving `page` (shell
/// words: `page-$RANDOM` gives each start a page of its own), Ready once
/// it listens, placed by `selector`; created through host 0.
pub async fn deploy_web(lab: &Lab, selector: (&str, &str), image: &str, page: &str) {
    let server = format!(
        "trap 'exit 0' TERM; mkdir -p /www && echo {page} > /www/index.html \
         && httpd -f -p 8088 -h /www & wait"
    );
    let mut web = manifest("web", selector, image, &server);
    web["containers"][0]["readiness_probe"] =
        json!({"tcp_socket": {"port": 8088}, "period_seconds": 1});
    let (status, body) = lab
        .call(0, "POST", "/api/v1/workloads", Some(&web))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
}

/// The running instance of `name` (address, node id, ready), as host 0
/// lists it.
pub async fn running(lab: &Lab, name: &str) -> Option<(String, String, bool)> {
    let v = lab
        .get(0, &format!("/api/v1/workloads/{name}/instances"))
        .await?;
    v["items"].as_array()?.iter().find_map(|i| {
        (i["status"] == "Running").then(|| {
            Some((
                i["address"].as_str()?.to_owned(),
                i["node_id"].as_str()?.to_owned(),
                i["ready"] == true,
            ))
        })?
    })
}

/// The network namespaces of instances (`/run/netns/u-…`), leaving out
/// the lab nodes' warm attachments (made ahead of time for instances yet
/// to come, `--warm-networks`) once each node has made its own.
pub fn namespaces(lab: &Lab) -> BTreeSet<String> {
    let dirs: Vec<&std::path::Path> = (0..lab.hosts.len()).map(|i| lab.data_dir(i)).collect();
    let warm = super::warm::settled(&dirs, orchestrator_daemon::DEFAULT_WARM_NETWORKS);
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("u-") && !warm.ids.contains(n))
                .collect()
        })
        .unwrap_or_default()
}
