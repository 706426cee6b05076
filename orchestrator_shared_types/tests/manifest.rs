//! Manifests: the reference manifest, field-naming errors, and no panics on junk.
#![allow(clippy::unwrap_used)]

use orchestrator_shared_types::{RestartPolicy, WorkloadSpec};
use proptest::prelude::*;

const HELLO: &str = r#"
name: hello
replicas: 3
containers:
  - name: main
    image: 127.0.0.1:5000/test/busybox:1
    command: ["sleep", "3600"]
    env: {GREETING: hi}
    resources:
      requests: {cpu: 100m, memory: 32Mi}
      limits: {cpu: 500m, memory: 64Mi}
restart_policy: Always
"#;

fn err(yaml: &str) -> String {
    WorkloadSpec::from_yaml(yaml).unwrap_err().to_string()
}

#[test]
fn the_reference_manifest_is_accepted_exactly_as_written() {
    let spec = WorkloadSpec::from_yaml(HELLO).unwrap();
    assert_eq!(spec.name, "hello");
    assert_eq!(spec.replicas, 3);
    assert_eq!(spec.restart_policy, RestartPolicy::Always);
    let c = &spec.containers[0];
    assert_eq!(c.command, ["sleep", "3600"]);
    assert_eq!(c.env["GREETING"], "hi");
    assert_eq!(c.resources.requests.cpu.unwrap().millis(), 100);
    assert_eq!(c.resources.limits.memory.unwrap().bytes(), 64 << 20);
    assert_eq!(spec.instance_request().cpu_millis, 100);
}

#[test]
fn yaml_and_json_round_trip() {
    let spec = WorkloadSpec::from_yaml(HELLO).unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(WorkloadSpec::from_json(&json).unwrap(), spec);
    let yaml = serde_yaml_ng::to_string(&spec).unwrap();
    assert_eq!(WorkloadSpec::from_yaml(&yaml).unwrap(), spec);
}

#[test]
fn a_bad_quantity_names_its_field() {
    let e = err(&HELLO.replace("memory: 64Mi", "memory: 64Mo"));
    assert!(
        e.starts_with(r#"containers[0].resources.limits.memory: "64Mo" is not a quantity"#),
        "{e}"
    );
}

#[test]
fn errors_name_the_field_and_the_problem() {
    let cases = [
        (HELLO.replace("replicas: 3", "replicas: -1"), "replicas:"),
        (
            HELLO.replace("replicas: 3", "replicas: 20000"),
            "replicas: 20000 is more than the maximum",
        ),
        (HELLO.replace("replicas: 3", "replicas: many"), "replicas:"),
        (
            HELLO.replace("name: hello", "name: Hello_World"),
            "name: \"Hello_World\" is not a DNS label",
        ),
        (
            HELLO.replace("restart_policy: Always", "restart_policy: Sometimes"),
            "restart_policy: unknown variant",
        ),
        (
            HELLO.replace(
                "restart_policy: Always",
                "restart_policy: Always\nreplica: 2",
            ),
            "unknown field `replica`",
        ),
        (
            HELLO.replace("cpu: 100m", "cpu: 900m"),
            "containers[0].resources.requests.cpu: request 900m exceeds limit 500m",
        ),
        (
            HELLO.replace("image: 127.0.0.1:5000/test/busybox:1", "image: \"\""),
            "containers[0].image: must not be empty",
        ),
        (
            HELLO.replace("GREETING: hi", "1BAD: hi"),
            "containers[0].env.1BAD: not a valid variable name",
        ),
        (
            HELLO.replace(
                "    env: {GREETING: hi}\n",
                "    env: {GREETING: hi}\n    secret_env: [{name: TOKEN, secret: Api_Token}]\n",
            ),
            "containers[0].secret_env[0].secret: \"Api_Token\" is not a secret name",
        ),
        (
            HELLO.replace("cpu: 500m", "cpu: -1"),
            "containers[0].resources.limits.cpu: \"-1\" is not a quantity",
        ),
    ];
    for (yaml, want) in cases {
        let e = err(&yaml);
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = HELLO
        .replace("name: hello", "name: \"\"")
        .replace("name: main", "name: MAIN");
    let e = WorkloadSpec::from_yaml(&yaml).unwrap_err();
    let fields: Vec<_> = e.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["name", "containers[0].name"]);
}

#[test]
fn empty_and_non_mapping_documents_are_errors() {
    for doc in ["", "[]", "42", "name: x", "containers: []\nname: x", "{"] {
        assert!(WorkloadSpec::from_yaml(doc).is_err(), "{doc:?}");
    }
    assert!(WorkloadSpec::from_json("{\"name\":\"x\"} trailing").is_err());
}

#[test]
fn probes_and_placement_parse() {
    let yaml = format!(
        "{HELLO}placement:\n  node_selector: {{disk: ssd}}\n  max_per_node: 1\n  tolerations: [{{key: gpu, operator: Exists}}]\n"
    )
    .replace(
        "    env: {GREETING: hi}\n",
        "    env: {GREETING: hi}\n    liveness_probe: {http_get: {path: /healthz, port: 8080}, period_seconds: 5}\n",
    );
    let spec = WorkloadSpec::from_yaml(&yaml).unwrap();
    assert_eq!(spec.placement.max_per_node, Some(1));
    assert_eq!(
        spec.containers[0]
            .liveness_probe
            .as_ref()
            .unwrap()
            .period_seconds,
        5
    );
    let bad = yaml.replace("port: 8080", "port: 70000");
    assert!(err(&bad).contains("containers[0].liveness_probe.http_get.port: 70000 is not a port"));
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        let _ = WorkloadSpec::from_yaml(&s);
        let _ = WorkloadSpec::from_json(&s);
    }

    #[test]
    fn mutated_reference_manifests_never_panic(pos in 0usize..300, byte in any::<u8>()) {
        let mut bytes = HELLO.as_bytes().to_vec();
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        if let Ok(s) = String::from_utf8(bytes) {
            let _ = WorkloadSpec::from_yaml(&s);
        }
    }
}
