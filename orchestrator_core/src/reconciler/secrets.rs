//! Placing and starting instances that use secrets (SPEC §15, §18). A
//! secret is sealed to the nodes its owner chose; only those can open it. So
//! an instance that names secrets is placed by the scheduler among the nodes
//! every one of them is sealed to ([`Gate`]), and a no-placement reason says
//! how many nodes that left out, and how to let more in (`ui secret rewrap`
//! after trusting them). Its containers are given the sealed values
//! ([`Secrets::sealed_for`]); the node opens them.

use std::collections::{BTreeMap, BTreeSet};

use orchestrator_shared_types::secret::{SealedSecret, RECORD};
use orchestrator_shared_types::{ContainerConfig, Node, WorkloadDefinition};
use scheduler_interface::ScheduleDecision;
use state_store_interface::StateStore;

use crate::error::Result;

/// The secrets a workload names, read once per pass of the reconciler over
/// it: for placement ([`Gate::of`]) and for its containers
/// ([`Secrets::sealed_for`]).
#[derive(Debug)]
pub(super) struct Secrets(std::result::Result<BTreeMap<String, SealedSecret>, String>);

impl Secrets {
    /// No secret: for a pass that starts nothing.
    pub(super) fn none() -> Secrets {
        Secrets(Ok(BTreeMap::new()))
    }

    /// `w`'s owner's secrets that `w` names, by name, or why they cannot be
    /// had. A workload that names none reads nothing.
    pub(super) async fn load(store: &dyn StateStore, w: &WorkloadDefinition) -> Result<Secrets> {
        let mut out = BTreeMap::new();
        for name in w.spec.secrets() {
            let key = SealedSecret::record_key(&w.owner, name);
            let Some(text) = store.get_record(RECORD, &key).await? else {
                return Ok(Secrets(Err(format!(
                    "secret {name:?} does not exist: set it with `ui secret set {name}`"
                ))));
            };
            match serde_json::from_str::<SealedSecret>(&text) {
                Ok(s) => {
                    out.insert(name.to_owned(), s);
                }
                Err(e) => {
                    return Ok(Secrets(Err(format!(
                        "the record of secret {name:?} is unreadable: {e}"
                    ))))
                }
            }
        }
        Ok(Secrets(Ok(out)))
    }

    /// The sealed values of the secrets `config` names, by name; or why
    /// they cannot be given.
    pub(super) fn sealed_for(
        &self,
        config: &ContainerConfig,
    ) -> std::result::Result<BTreeMap<String, String>, String> {
        let all = self.0.as_ref().map_err(Clone::clone)?;
        Ok(config
            .secret_names()
            .filter_map(|n| Some((n.to_owned(), all.get(n)?.sealed.clone())))
            .collect())
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
    /// The gate of `secrets`, a workload's, over `nodes`.
    pub(super) fn of(secrets: &Secrets, nodes: &[Node]) -> Gate {
        let secrets = match &secrets.0 {
            Ok(s) if s.is_empty() => return Gate::Open,
            Ok(s) => s,
            Err(reason) => return Gate::Closed(reason.clone()),
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
            return Gate::Closed(format!(
                "no node can open secret(s) {}: none of the {} node(s) here is among the keys \
                 they are sealed to ({} in all); trust more nodes, then run `ui secret rewrap`",
                quoted(&names),
                nodes.len(),
                sealed_to.len()
            ));
        }
        let note = (excluded > 0).then(|| {
            format!(
                "{excluded} of {} node(s) cannot open secret(s) {} (not sealed to them; \
                 trust them, then run `ui secret rewrap`)",
                nodes.len(),
                quoted(&names)
            )
        });
        Gate::Restricted {
            nodes: allowed,
            note,
        }
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
