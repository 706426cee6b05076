//! Placing and starting instances that use secrets (SPEC §15, §18). A
//! secret is sealed to the nodes its owner chose; only those can open it. So
//! an instance that names secrets is placed by the scheduler among the nodes
//! every one of them is sealed to ([`Gate`]), and a no-placement reason says
//! how many nodes that left out, and how to let more in (`ui secret rewrap`
//! after trusting them). Its containers are given the sealed values
//! ([`sealed_values`]); the node opens them.

use std::collections::{BTreeMap, BTreeSet};

use orchestrator_shared_types::secret::{SealedSecret, RECORD};
use orchestrator_shared_types::{Node, WorkloadDefinition};
use scheduler_interface::ScheduleDecision;
use state_store_interface::StateStore;

use crate::error::Result;

/// `w`'s owner's secrets that `w` names, by name, or why they cannot be had.
async fn load(
    store: &dyn StateStore,
    w: &WorkloadDefinition,
) -> Result<std::result::Result<BTreeMap<String, SealedSecret>, String>> {
    let mut out = BTreeMap::new();
    for name in w.spec.secrets() {
        let key = SealedSecret::record_key(&w.owner, name);
        let Some(text) = store.get_record(RECORD, &key).await? else {
            return Ok(Err(format!(
                "secret {name:?} does not exist: set it with `ui secret set {name}`"
            )));
        };
        match serde_json::from_str::<SealedSecret>(&text) {
            Ok(s) => {
                out.insert(name.to_owned(), s);
            }
            Err(e) => {
                return Ok(Err(format!(
                    "the record of secret {name:?} is unreadable: {e}"
                )))
            }
        }
    }
    Ok(Ok(out))
}

/// The sealed values of the secrets `w` names, by name, for its containers;
/// or why they cannot be given.
pub(super) async fn sealed_values(
    store: &dyn StateStore,
    w: &WorkloadDefinition,
) -> std::result::Result<BTreeMap<String, String>, String> {
    match load(store, w).await {
        Ok(Ok(all)) => Ok(all.into_iter().map(|(n, s)| (n, s.sealed)).collect()),
        Ok(Err(reason)) => Err(reason),
        Err(e) => Err(format!("reading the workload's secrets: {e}")),
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which nodes an instance of a workload may be placed on, as its secrets
/// allow.
#[derive(Debug)]
pub(super) enum Gate {
    /// It names no secret: any node.
    Open,
    /// Only `nodes`, those every secret is sealed to; `note` says how many
    /// others that left out, for a no-placement reason.
    Restricted {
        nodes: Vec<Node>,
        note: Option<String>,
    },
    /// None: the reason.
    Closed(String),
}

impl Gate {
    /// The gate of `w` over `nodes`.
    pub(super) async fn of(
        store: &dyn StateStore,
        w: &WorkloadDefinition,
        nodes: &[Node],
    ) -> Result<Gate> {
        if w.spec.secrets().is_empty() {
            return Ok(Gate::Open);
        }
        let secrets = match load(store, w).await? {
            Ok(s) => s,
            Err(reason) => return Ok(Gate::Closed(reason)),
        };
        let names: Vec<&str> = secrets.keys().map(String::as_str).collect();
        let openable = |n: &Node| {
            secrets
                .values()
                .all(|s| s.recipients.iter().any(|k| k.0 == n.id.0))
        };
        let allowed: Vec<Node> = nodes.iter().filter(|n| openable(n)).cloned().collect();
        let excluded = nodes.len() - allowed.len();
        if allowed.is_empty() {
            let sealed_to: BTreeSet<_> = secrets
                .values()
                .flat_map(|s| s.recipients.iter().map(|k| k.0))
                .collect();
            return Ok(Gate::Closed(format!(
                "no node can open secret(s) {}: none of the {} node(s) here is among the keys \
                 they are sealed to ({} in all); trust more nodes, then run `ui secret rewrap`",
                quoted(&names),
                nodes.len(),
                sealed_to.len()
            )));
        }
        let note = (excluded > 0).then(|| {
            format!(
                "{excluded} of {} node(s) cannot open secret(s) {} (not sealed to them; \
                 trust them, then run `ui secret rewrap`)",
                nodes.len(),
                quoted(&names)
            )
        });
        Ok(Gate::Restricted {
            nodes: allowed,
            note,
        })
    }

    /// `decisions` with the gate's note added to every no-placement reason.
    pub(super) fn explain(&self, decisions: Vec<ScheduleDecision>) -> Vec<ScheduleDecision> {
        let Gate::Restricted {
            note: Some(note), ..
        } = self
        else {
            return decisions;
        };
        decisions
            .into_iter()
            .map(|d| match d {
                ScheduleDecision::NoPlacement(reason) => {
                    ScheduleDecision::NoPlacement(format!("{reason}; {note}"))
                }
                other => other,
            })
            .collect()
    }
}
