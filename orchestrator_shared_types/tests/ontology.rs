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
    ]
}

#[test]
fn json_schemas_match_the_rust_types() {
    let dir = ontology().join("schemas");
    let update = std::env::var_os("UPDATE_ONTOLOGY").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (file, schema) in schemas() {
        let path = dir.join(file);
        let mut generated = serde_json::to_string_pretty(&schema).unwrap();
        generated.push('\n');
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
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
