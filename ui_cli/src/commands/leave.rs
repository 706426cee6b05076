//! The right to leave (SPEC §16, issue 18): `ui export FILE` writes one
//! archive of everything you have on the cluster, `ui import FILE`
//! re-applies it to another cluster, and `ui forget --yes` removes it all.
//!
//! The archive is one JSON document ([`Archive`], `format` =
//! [`FORMAT`]), written with mode 0600: your manifests, the trust and
//! automation policies the daemon holds and your local policy files, the
//! agent tokens you signed (ids, agents, tools and validity, never the
//! tokens), your secrets still sealed, your approvals, your credit balance
//! and history, and your entries of the audit log. Import re-applies the
//! policies, seals each secret again to the new cluster's nodes (opening it
//! with your key, on your machine), then the manifests; approvals, credits and audit entries are the old cluster's
//! history and are kept in the archive only.
//!
//! `ui forget` first revokes every agent token you signed (so no agent can
//! act for you meanwhile) and switches agents off, denies your pending
//! approvals, deletes your workloads (every node stops their containers),
//! wipes your volumes once no container holds them, deletes your secrets,
//! and removes your trust policy. The audit log keeps its entries: each is
//! chained to the next by hash, so removing one would break the chain that
//! proves nothing was altered.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use orchestrator_api::routes::Verdict;
use orchestrator_api::{
    Approval, ApprovalFilter, AuditEntry, Balance, LedgerEntry, PutSecret, SealedSecret,
};
use orchestrator_shared_types::agent::AgentPolicy;
use orchestrator_shared_types::{PublicKey, TrustRules, WorkloadSpec};
use serde::{Deserialize, Serialize};
use serde_json::json;
use user_config::agent_tokens::{TokenLog, TokenRecord};
use user_config::paths::ConfigDir;

use super::Context;
use crate::cli::{ExportArgs, ForgetArgs, ImportArgs};
use crate::client::ApiClient;
use crate::output::emit;

/// The `format` of an archive this version writes and reads.
pub const FORMAT: &str = "univrs-export-v1";

/// Largest archive `ui import` reads.
const MAX_ARCHIVE_BYTES: u64 = 64 << 20;

/// Everything one user has on a cluster.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// [`FORMAT`].
    pub format: String,
    /// When it was written.
    pub exported_at: DateTime<Utc>,
    /// Whose it is.
    pub user: PublicKey,
    /// The daemon it was read from.
    pub server: String,
    /// The workloads' manifests.
    pub workloads: Vec<WorkloadSpec>,
    /// The trust policy the daemon held.
    pub trust_policy: TrustRules,
    /// The automation policy the daemon held.
    pub automation_policy: AgentPolicy,
    /// Your policy files (`policy/trust.toml`, …) as they were.
    pub policy_files: BTreeMap<String, String>,
    /// Your secrets, still sealed.
    #[serde(default)]
    pub secrets: Vec<SealedSecret>,
    /// The agent tokens you signed (never the tokens themselves).
    pub agent_tokens: Vec<TokenRecord>,
    /// Your approvals, decided ones included.
    pub approvals: Vec<Approval>,
    /// Your credit balance, when the daemon keeps credit.
    pub credit_balance: Option<Balance>,
    /// Your credit history, oldest first.
    pub credit_history: Vec<LedgerEntry>,
    /// Your entries of the audit log, oldest first.
    pub audit: Vec<AuditEntry>,
    /// Your volumes: names, nodes and sizes (not their data, which stays
    /// on its node).
    #[serde(default)]
    pub volumes: Vec<orchestrator_api::Volume>,
}

/// The caller's key, which every call here needs.
fn me(client: &ApiClient) -> anyhow::Result<PublicKey> {
    client
        .public_key()
        .ok_or_else(|| anyhow::anyhow!("no identity: create one with `ui init`"))
}

/// The caller's own workloads (an admin's list holds everyone's).
fn my_workloads(client: &ApiClient, me: &PublicKey) -> anyhow::Result<Vec<WorkloadSpec>> {
    Ok(client
        .list_workloads()
        .context("listing your workloads")?
        .data
        .into_iter()
        .filter(|w| w.workload.owner == *me)
        .map(|w| w.workload.spec)
        .collect())
}

/// The text of each policy file of `dir` that exists.
fn policy_files(dir: &ConfigDir) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, path) in [
        ("trust.toml", dir.trust_file()),
        ("limits.toml", dir.limits_file()),
        ("automation.toml", dir.automation_file()),
    ] {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                out.insert(name.to_owned(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(out)
}

/// Reads everything the caller has from the daemon of `client`.
fn collect(client: &ApiClient, dir: &ConfigDir) -> anyhow::Result<Archive> {
    let me = me(client)?;
    let mine = me.to_string();
    // Credit is kept by the control plane: where there is none, say so by absence.
    let credit_balance = match client.credit_balance() {
        Ok(b) => Some(b.data),
        Err(orchestrator_api::client::ClientError::Api { status: 503, .. }) => None,
        Err(e) => return Err(e).context("reading your credit balance"),
    };
    let credit_history = if credit_balance.is_some() {
        client
            .credit_history()
            .context("reading your credit history")?
            .data
    } else {
        Vec::new()
    };
    Ok(Archive {
        format: FORMAT.to_owned(),
        exported_at: Utc::now(),
        user: me,
        server: client.server().to_owned(),
        workloads: my_workloads(client, &me)?,
        trust_policy: client
            .get_trust_policy()
            .context("reading your trust policy")?
            .data,
        automation_policy: client
            .get_agent_policy()
            .context("reading your automation policy")?
            .data,
        policy_files: policy_files(dir)?,
        secrets: client.list_secrets().context("listing your secrets")?.data,
        agent_tokens: TokenLog::load(dir)
            .with_context(|| format!("reading {}", dir.root().display()))?
            .tokens,
        approvals: client
            .approvals(ApprovalFilter::All)
            .context("listing your approvals")?
            .data
            .into_iter()
            .filter(|a| a.user == me)
            .collect(),
        credit_balance,
        credit_history,
        volumes: client.list_volumes().context("listing your volumes")?.data,
        audit: client
            .audit(None, None)
            .context("reading your audit entries")?
            .data
            .into_iter()
            .filter(|e| e.key.as_deref() == Some(mine.as_str()))
            .collect(),
    })
}

/// `ui export FILE`.
pub fn export(ctx: &Context, args: &ExportArgs) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    let client = ctx.client()?;
    let archive = collect(&client, &dir)?;
    let text = serde_json::to_vec_pretty(&archive)?;
    user_config::write_private_file(&args.file, &text)
        .with_context(|| format!("writing {}", args.file.display()))?;
    emit(
        ctx.output(),
        &json!({
            "file": args.file,
            "workloads": archive.workloads.len(),
            "secrets": archive.secrets.len(),
            "agent_tokens": archive.agent_tokens.len(),
            "approvals": archive.approvals.len(),
            "credit_entries": archive.credit_history.len(),
            "audit_entries": archive.audit.len(),
        }),
        &format!(
            "exported {} workloads, {} secrets (sealed), your policies, {} agent tokens (ids \
             only), {} approvals, {} credit entries and {} audit entries to {}\n",
            archive.workloads.len(),
            archive.secrets.len(),
            archive.agent_tokens.len(),
            archive.approvals.len(),
            archive.credit_history.len(),
            archive.audit.len(),
            args.file.display()
        ),
    );
    Ok(())
}

/// Reads and checks an archive.
fn read_archive(path: &Path) -> anyhow::Result<Archive> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_ARCHIVE_BYTES {
        anyhow::bail!(
            "{} is {size} bytes, more than an archive may be ({MAX_ARCHIVE_BYTES})",
            path.display()
        );
    }
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let archive: Archive = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an archive of `ui export`", path.display()))?;
    if archive.format != FORMAT {
        anyhow::bail!(
            "{}: format {:?} is not {FORMAT:?}",
            path.display(),
            archive.format
        );
    }
    for w in &archive.workloads {
        w.validate()
            .with_context(|| format!("{}: workload {:?}", path.display(), w.name))?;
    }
    archive
        .trust_policy
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: trust policy: {e}", path.display()))?;
    Ok(archive)
}

/// `ui import FILE`.
pub fn import(ctx: &Context, args: &ImportArgs) -> anyhow::Result<()> {
    let archive = read_archive(&args.file)?;
    let client = ctx.client()?;
    let me = me(&client)?;
    if archive.user != me {
        anyhow::bail!(
            "{} belongs to {}, not to you ({me}): import it with that identity",
            args.file.display(),
            archive.user
        );
    }
    // Policies first, so that the workloads are placed under them.
    client
        .put_trust_policy(&archive.trust_policy)
        .context("pushing your trust policy")?;
    client
        .put_agent_policy(&archive.automation_policy)
        .context("pushing your automation policy")?;
    // Secrets were sealed to the old cluster's nodes: open each with your
    // key and seal it again to the nodes your trust policy allows here.
    let secrets = reseal(ctx, &client, &archive.secrets)?;
    let mut applied = Vec::new();
    for spec in &archive.workloads {
        let body = serde_json::to_vec(spec)?;
        client
            .create_workload("application/json", &body)
            .with_context(|| format!("applying workload {}", spec.name))?;
        applied.push(spec.name.clone());
    }
    emit(
        ctx.output(),
        &json!({ "workloads": applied, "secrets": secrets, "trust_policy": archive.trust_policy,
                 "automation_policy": archive.automation_policy }),
        &format!(
            "imported {} workloads ({}), {} secrets (sealed to this cluster's nodes) and your \
             trust and automation policies to {}; approvals, credits and audit entries stay in \
             the archive\n",
            applied.len(),
            applied.join(", "),
            secrets.len(),
            client.server()
        ),
    );
    Ok(())
}

/// Opens each of `secrets` with your key and seals it again to the nodes
/// your trust policy allows on the cluster of `client`; their names.
fn reseal(
    ctx: &Context,
    client: &ApiClient,
    secrets: &[SealedSecret],
) -> anyhow::Result<Vec<String>> {
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    let key = ctx.signing_key()?;
    let identity = orchestrator_secrets::KeyIdentity::new(&key)?;
    let me = PublicKey(key.verifying_key().to_bytes());
    let rules = super::trust_push::local_rules(&ctx.config_dir()?)?;
    let (keys, _, _) = super::secret::recipients(client, &rules, me)?;
    let mut names = Vec::new();
    for s in secrets {
        let value = identity
            .open(&s.sealed)
            .with_context(|| format!("opening secret {} with your key", s.name))?;
        let sealed = orchestrator_secrets::seal(&value, &keys)?;
        let put = PutSecret {
            recipients: keys.clone(),
            sealed,
        };
        client
            .put_secret(&s.name, &put)
            .with_context(|| format!("storing secret {}", s.name))?;
        names.push(s.name.clone());
    }
    Ok(names)
}

/// How long `ui forget` waits for the containers of deleted workloads to
/// let go of their volumes.
const VOLUME_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Wipes every volume of the caller, waiting while the containers of the
/// workloads just deleted still hold one (409); their names.
fn wipe_volumes(client: &ApiClient) -> anyhow::Result<Vec<String>> {
    let started = std::time::Instant::now();
    let mut wiped = Vec::new();
    loop {
        let left = client.list_volumes().context("listing your volumes")?.data;
        if left.is_empty() {
            return Ok(wiped);
        }
        let mut busy = None;
        for v in &left {
            match client.delete_volume(&v.name) {
                Ok(_) => wiped.push(v.name.clone()),
                Err(orchestrator_api::client::ClientError::Api {
                    status: 409,
                    message,
                    ..
                }) => busy = Some(message),
                Err(e) => {
                    return Err(e).with_context(|| format!("wiping volume {}", v.name));
                }
            }
        }
        if let Some(why) = busy {
            if started.elapsed() > VOLUME_WAIT {
                anyhow::bail!(
                    "a volume is still in use after {} s: {why}; run `ui forget --yes` again",
                    VOLUME_WAIT.as_secs()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

/// `ui forget [--yes]`.
pub fn forget(ctx: &Context, args: &ForgetArgs) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    let client = ctx.client()?;
    let me = me(&client)?;
    let workloads = my_workloads(&client, &me)?;
    let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
    if !args.yes {
        anyhow::bail!(
            "ui forget removes, on {}: your {} workloads ({}), your volumes (wiped), your \
             secrets, your pending approvals, your trust and automation policies, and every \
             agent token you signed. \
             Nothing can bring them back but an archive (`ui export FILE` first). \
             Run `ui forget --yes` to do it",
            client.server(),
            names.len(),
            names.join(", ")
        );
    }
    // Tokens first: no agent may act for you while the rest goes.
    let revoked = client
        .revoke_all_agent_tokens()
        .context("revoking your agent tokens")?;
    client
        .put_agent_policy(&AgentPolicy::default())
        .context("switching agents off")?;
    let mut denied = 0;
    for a in client
        .approvals(ApprovalFilter::Pending)
        .context("listing your approvals")?
        .data
        .into_iter()
        .filter(|a| a.user == me)
    {
        client
            .decide_approval(&a.id, Verdict::Deny)
            .with_context(|| format!("denying approval {}", a.id))?;
        denied += 1;
    }
    for name in &names {
        client
            .delete_workload(name)
            .with_context(|| format!("deleting workload {name}"))?;
    }
    let volumes = wipe_volumes(&client)?;
    let secrets = client.list_secrets().context("listing your secrets")?.data;
    for secret in &secrets {
        client
            .delete_secret(&secret.name)
            .with_context(|| format!("deleting secret {}", secret.name))?;
    }
    client
        .put_trust_policy(&TrustRules::default())
        .context("removing your trust policy")?;
    TokenLog::clear(&dir).with_context(|| format!("clearing {}", dir.root().display()))?;
    emit(
        ctx.output(),
        &json!({
            "workloads": names,
            "secrets": secrets.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "volumes": volumes,
            "approvals_denied": denied,
            "agent_tokens_revoked_before": revoked["revoked_before"],
        }),
        &format!(
            "forgot you on {}: deleted {} workloads, wiped {} volumes, deleted {} secrets, \
             denied {denied} approvals, revoked every agent token, removed your policies; the \
             audit log keeps its entries (its hash chain must verify)\n",
            client.server(),
            names.len(),
            volumes.len(),
            secrets.len()
        ),
    );
    Ok(())
}
