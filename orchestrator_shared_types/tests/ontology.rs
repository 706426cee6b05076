//! The code against `ontology/` (SPEC §20): the JSON Schemas must be what the
//! Rust types generate, the state machines must allow exactly what
//! `can_transition_to` allows, and the example manifest must parse.
//!
//! After changing a type on purpose, regenerate the schemas with
//! `UPDATE_ONTOLOGY=1 cargo test -p orchestrator_shared_types --test ontology`.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::path::{Path, PathBuf};

use orchestrator_api::{ErrorBody, ScaleRequest, WorkloadStatus};
use orchestrator_shared_types::agent::AgentPolicy;
use orchestrator_shared_types::{
    InstanceStatus, Node, NodeStatus, WorkloadDefinition, WorkloadInstance, WorkloadSpec,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

const REGENERATE: &str =
    "UPDATE_ONTOLOGY=1 cargo test -p orchestrator_shared_types --test ontology";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ontology() -> PathBuf {
    repo_root().join("ontology")
}

/// Every checked-in schema: file name and the schema the types generate now.
fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        (
            "workload_spec.schema.json",
            schemars::schema_for!(WorkloadSpec),
        ),
        (
            "workload_definition.schema.json",
            schemars::schema_for!(WorkloadDefinition),
        ),
        (
            "workload_instance.schema.json",
            schemars::schema_for!(WorkloadInstance),
        ),
        ("node.schema.json", schemars::schema_for!(Node)),
        // REST API bodies beyond the domain types above.
        (
            "agent_policy.schema.json",
            schemars::schema_for!(AgentPolicy),
        ),
        ("error_body.schema.json", schemars::schema_for!(ErrorBody)),
        (
            "scale_request.schema.json",
            schemars::schema_for!(ScaleRequest),
        ),
        (
            "workload_status.schema.json",
            schemars::schema_for!(WorkloadStatus),
        ),
    ]
}

/// With `UPDATE_ONTOLOGY=1`, writes every schema once, before any test reads
/// the directory (the tests run in parallel).
fn regenerate_if_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("UPDATE_ONTOLOGY").is_none_or(|v| v != "1") {
        return;
    }
    ONCE.call_once(|| {
        let dir = ontology().join("schemas");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        for (file, schema) in schemas() {
            let mut generated = serde_json::to_string_pretty(&schema)
                .unwrap_or_else(|e| panic!("printing the schema of {file}: {e}"));
            generated.push('\n');
            std::fs::write(dir.join(file), &generated)
                .unwrap_or_else(|e| panic!("writing ontology/schemas/{file}: {e}"));
        }
    });
}

#[test]
fn json_schemas_match_the_rust_types() {
    regenerate_if_asked();
    let dir = ontology().join("schemas");
    let mut stale = Vec::new();
    for (file, schema) in schemas() {
        let path = dir.join(file);
        let mut generated = serde_json::to_string_pretty(&schema).unwrap();
        generated.push('\n');
        match std::fs::read_to_string(&path) {
            Ok(checked_in) if checked_in == generated => {}
            Ok(_) => stale.push(format!(
                "ontology/schemas/{file} differs from the Rust types"
            )),
            Err(e) => stale.push(format!("ontology/schemas/{file} cannot be read: {e}")),
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nIf the type change is intended, regenerate with `{REGENERATE}` and commit the result.",
        stale.join("\n")
    );
}

#[test]
fn no_schema_file_is_left_over() {
    regenerate_if_asked();
    let expected: BTreeSet<String> = schemas().iter().map(|(f, _)| (*f).to_owned()).collect();
    let present: BTreeSet<String> = std::fs::read_dir(ontology().join("schemas"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        present, expected,
        "ontology/schemas/ holds files no type generates"
    );
}

/// A state machine as `ontology/state_machines/*.json` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateMachine<S> {
    /// What the machine is about.
    description: String,
    states: Vec<S>,
    transitions: Vec<Transition<S>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transition<S> {
    from: S,
    to: S,
    /// Why the move happens.
    description: String,
}

fn load<S: DeserializeOwned>(file: &str) -> StateMachine<S> {
    let path = ontology().join("state_machines").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The machine in `file` lists exactly `all` and exactly the moves `allowed` allows.
fn check_machine<S>(file: &str, all: &[S], allowed: impl Fn(S, S) -> bool)
where
    S: DeserializeOwned + Copy + Debug + Hash + Eq,
{
    let machine: StateMachine<S> = load(file);
    assert!(
        !machine.description.trim().is_empty(),
        "{file} has no description"
    );
    assert_eq!(
        machine.states, all,
        "{file}: states differ from the code's ALL (in order)"
    );

    let mut listed = HashSet::new();
    for t in &machine.transitions {
        assert!(
            !t.description.trim().is_empty(),
            "{file}: {:?} -> {:?} has no description",
            t.from,
            t.to
        );
        assert!(
            listed.insert((t.from, t.to)),
            "{file}: {:?} -> {:?} is listed twice",
            t.from,
            t.to
        );
    }
    let mut wrong = Vec::new();
    for &from in all {
        for &to in all {
            let code = allowed(from, to);
            let data = listed.contains(&(from, to));
            if code != data {
                wrong.push(format!(
                    "{from:?} -> {to:?}: code allows {code}, {file} lists {data}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the code and {file} disagree:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn node_state_machine_matches_the_code() {
    check_machine("node.json", &NodeStatus::ALL, NodeStatus::can_transition_to);
}

#[test]
fn instance_state_machine_matches_the_code() {
    check_machine(
        "instance.json",
        &InstanceStatus::ALL,
        InstanceStatus::can_transition_to,
    );
}

/// The lines of `text` that assign a `status` field directly (`x.status = …`).
fn status_assignments(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices(".status") {
            let rest = line[at + ".status".len()..].trim_start();
            if rest.starts_with('=') && !rest.starts_with("==") {
                found.push((n + 1, code.to_owned()));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name.starts_with("target-")) {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_status_scan_sees_an_assignment() {
    let found = status_assignments("let a = x.status == y;\n    inst.status = InstanceStatus::Failed;\n// n.status = s;\nr.status_writes = v;\n");
    assert_eq!(
        found,
        vec![(2, "inst.status = InstanceStatus::Failed;".to_owned())]
    );
}

/// Every status change goes through `WorkloadInstance::transition` or
/// `Node::transition`, so the state machines above are what the code does.
#[test]
fn statuses_change_only_through_transition() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 50,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    // `transition` itself, and this file's test of the scan.
    let allowed = [
        root.join("orchestrator_shared_types/src/lifecycle.rs"),
        root.join("orchestrator_shared_types/tests/ontology.rs"),
    ];
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !allowed.contains(f)) {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (line, code) in status_assignments(&text) {
            let file = file.strip_prefix(&root).unwrap_or(file);
            offenders.push(format!("{}:{line}: {code}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "a status is assigned around `transition` (use WorkloadInstance::transition or Node::transition):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_example_manifest_parses() {
    let path = repo_root().join("examples").join("hello.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let spec =
        WorkloadSpec::from_yaml(&text).unwrap_or_else(|e| panic!("examples/hello.yaml: {e}"));
    assert_eq!((spec.name.as_str(), spec.replicas), ("hello", 3));
    // And it fits its own schema's top-level shape: every key is a property.
    let schema = serde_json::to_value(schemars::schema_for!(WorkloadSpec)).unwrap();
    let manifest: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    for key in manifest.as_object().unwrap().keys() {
        assert!(
            properties.contains_key(key),
            "examples/hello.yaml: {key} is not in the schema"
        );
    }
    for required in schema["required"].as_array().unwrap() {
        let required = required.as_str().unwrap();
        assert!(
            manifest.get(required).is_some(),
            "examples/hello.yaml lacks required {required}"
        );
    }
}
