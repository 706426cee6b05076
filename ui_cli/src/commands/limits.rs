//! Enforcing `policy/limits.toml` before `ui deploy`, `ui scale` and `ui
//! credits send` send anything (the checks themselves are
//! `user_config::LimitsPolicy::check_apply` and `check_transfer`).

use anyhow::Context as _;
use orchestrator_shared_types::WorkloadSpec;
use user_config::paths::ConfigDir;

use crate::client::ApiClient;
use crate::profile::LimitsPolicy;

/// Reads `policy/limits.toml` (no limits when it does not exist).
pub fn load(dir: &ConfigDir) -> anyhow::Result<LimitsPolicy> {
    LimitsPolicy::load(dir).with_context(|| format!("reading {}", dir.limits_file().display()))
}

/// The refusal of a request past a limit: the limit, then that nothing was sent.
fn refused(e: user_config::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}; nothing was sent (see `ui policy limits`)")
}

/// The manifests of the workloads of `client`'s key (an admin key is also
/// shown other keys' workloads; those are left out).
fn own_workloads(client: &ApiClient) -> anyhow::Result<Vec<WorkloadSpec>> {
    let me = client.public_key();
    let items = client
        .list_workloads()
        .context("reading your workloads to check them against your limits")?
        .data;
    Ok(items
        .into_iter()
        .filter(|w| Some(w.workload.owner) == me)
        .map(|w| w.workload.spec)
        .collect())
}

/// Refuses `spec` (about to be deployed by `client`'s key) if it would take
/// the user's workloads past a limit.
pub fn check_deploy(
    limits: &LimitsPolicy,
    client: &ApiClient,
    spec: &WorkloadSpec,
) -> anyhow::Result<()> {
    if *limits == LimitsPolicy::default() {
        return Ok(());
    }
    let current = if limits.needs_current_workloads() {
        own_workloads(client)?
    } else {
        Vec::new()
    };
    limits.check_apply(&current, spec).map_err(refused)
}

/// Refuses scaling workload `reference` (a name or an id) to `replicas` if it
/// would take the user's workloads past a limit. Another key's workload
/// (scaled with an admin key) is not counted against the user's limits.
pub fn check_scale(
    limits: &LimitsPolicy,
    client: &ApiClient,
    reference: &str,
    replicas: u32,
) -> anyhow::Result<()> {
    if *limits == LimitsPolicy::default() {
        return Ok(());
    }
    let w = client
        .get_workload(reference)
        .with_context(|| format!("reading workload {reference} to check it against your limits"))?
        .data
        .workload;
    if Some(w.owner) != client.public_key() {
        return Ok(());
    }
    let current = if limits.needs_current_workloads() {
        own_workloads(client)?
    } else {
        vec![w.spec.clone()]
    };
    let mut proposed = w.spec;
    proposed.replicas = replicas;
    limits.check_apply(&current, &proposed).map_err(refused)
}

/// Refuses sending `amount` milli-units if it would take the user's balance
/// (less holds) below `-credit_limit`.
pub fn check_transfer(
    limits: &LimitsPolicy,
    client: &ApiClient,
    amount: i64,
) -> anyhow::Result<()> {
    if limits.credit_limit.is_none() {
        return Ok(());
    }
    let b = client
        .credit_balance()
        .context("reading your credit balance to check it against your credit_limit")?
        .data;
    limits
        .check_transfer(b.balance, b.held, amount)
        .map_err(refused)
}
