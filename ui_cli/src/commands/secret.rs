//! `ui secret set|list|rm|rewrap` (SPEC §15, §18): a secret is sealed on
//! this machine with age ([`orchestrator_secrets`]) to the Ed25519 keys of
//! the nodes your trust policy allows, and to your own key so that you can
//! seal it again later (`rewrap`). The cluster stores the ciphertext only.
//!
//! Which nodes: every node the daemon lists that `policy/trust.toml` does
//! not exclude by operator or label ([`TrustRules::excludes`]); when the
//! policy asks a minimum reputation or attestations, a node of an operator
//! you do not trust must also meet them as the daemon computes your view of
//! its reputation. A node that joins later can run the secret's workloads
//! only after `ui secret rewrap`.

use std::io::Read;

use anyhow::Context as _;
use orchestrator_api::PutSecret;
use orchestrator_secrets::{KeyIdentity, MAX_SECRET_BYTES};
use orchestrator_shared_types::{PublicKey, TrustRules};
use serde_json::json;
use zeroize::Zeroizing;

use super::Context;
use crate::cli::{SecretCommand, SecretSetArgs};
use crate::client::ApiClient;
use crate::output::emit;

/// Runs `ui secret ...`.
pub fn run(ctx: &Context, cmd: &SecretCommand) -> anyhow::Result<()> {
    match cmd {
        SecretCommand::Set(args) => set(ctx, args),
        SecretCommand::List => list(ctx),
        SecretCommand::Rm { name } => {
            let client = ctx.client()?;
            let gone = client
                .delete_secret(name)
                .with_context(|| format!("deleting secret {name}"))?;
            emit(ctx.output(), &gone.raw, &format!("secret {name} deleted\n"));
            Ok(())
        }
        SecretCommand::Rewrap { names } => rewrap(ctx, names),
    }
}

/// The keys to seal to: the nodes `rules` allow, then `me`. Returns them,
/// how many are nodes', and how many nodes were left out.
pub fn recipients(
    client: &ApiClient,
    rules: &TrustRules,
    me: PublicKey,
) -> anyhow::Result<(Vec<PublicKey>, usize, usize)> {
    let nodes = client.list_nodes().context("listing the nodes")?.data;
    let asks_reputation = rules.min_reputation > 0.0 || rules.required_attestations > 0;
    let reputations: std::collections::HashMap<_, _> = if asks_reputation {
        client
            .reputations(&rules.trusted_operators)
            .context("reading the nodes' reputations")?
            .data
            .into_iter()
            .map(|r| (r.node, r))
            .collect()
    } else {
        Default::default()
    };
    let mut keys = Vec::new();
    let mut left_out = 0;
    for n in &nodes {
        let mut allowed = !rules.excludes(&n.operator, &n.labels);
        if allowed && asks_reputation && !rules.trusted_operators.contains(&n.operator) {
            // A node that joined since the nodes were listed has none yet.
            allowed = reputations.get(&n.id).is_some_and(|r| {
                r.composite >= rules.min_reputation
                    && r.qualifying_attestations >= rules.required_attestations
            });
        }
        if allowed {
            keys.push(PublicKey(n.id.0));
        } else {
            left_out += 1;
        }
    }
    if keys.is_empty() {
        anyhow::bail!(
            "no node of the {} the daemon lists is allowed by your trust policy ({}): \
             no node could run a workload that needs this secret",
            nodes.len(),
            super::trust_push::summary(rules)
        );
    }
    let nodes = keys.len();
    if !keys.contains(&me) {
        keys.push(me);
    }
    Ok((keys, nodes, left_out))
}

/// Reads the value: from `--from-file`, else standard input, at most
/// [`MAX_SECRET_BYTES`].
fn read_value(args: &SecretSetArgs) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut value = Zeroizing::new(Vec::new());
    let limit = MAX_SECRET_BYTES as u64 + 1;
    match &args.from_file {
        Some(path) => std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut value))
            .with_context(|| format!("reading {}", path.display()))?,
        None => std::io::stdin()
            .take(limit)
            .read_to_end(&mut value)
            .context("reading the value from standard input")?,
    };
    if value.len() > MAX_SECRET_BYTES {
        anyhow::bail!("the value is more than {MAX_SECRET_BYTES} bytes");
    }
    if value.is_empty() {
        anyhow::bail!("the value is empty (give it on standard input or with --from-file)");
    }
    Ok(value)
}

/// `ui secret set NAME`.
fn set(ctx: &Context, args: &SecretSetArgs) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    let rules = super::trust_push::local_rules(&dir)?;
    let value = read_value(args)?;
    let client = ctx.client()?;
    let me = client
        .public_key()
        .ok_or_else(|| anyhow::anyhow!("no identity: create one with `ui init`"))?;
    // The daemon places by the same policy the secret is sealed by.
    super::trust_push::sync_and_say(&client, &dir, "")?;
    let (keys, nodes, left_out) = recipients(&client, &rules, me)?;
    let sealed = orchestrator_secrets::seal(&value, &keys)?;
    let stored = client
        .put_secret(
            &args.name,
            &PutSecret {
                recipients: keys.clone(),
                sealed,
            },
        )
        .with_context(|| format!("storing secret {}", args.name))?;
    emit(
        ctx.output(),
        &stored.raw,
        &format!(
            "secret {} sealed to {nodes} nodes and your key ({left_out} nodes left out by \
             your trust policy); the cluster keeps only the ciphertext\n",
            args.name,
        ),
    );
    Ok(())
}

/// `ui secret list`.
fn list(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let me = client.public_key();
    let secrets = client.list_secrets().context("listing your secrets")?;
    let mut text = String::from("NAME\tNODES\tUPDATED\n");
    for s in &secrets.data {
        let nodes = s.recipients.iter().filter(|k| Some(**k) != me).count();
        text.push_str(&format!(
            "{}\t{nodes}\t{}\n",
            s.name,
            s.updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    emit(ctx.output(), &secrets.raw, &text);
    Ok(())
}

/// `ui secret rewrap [NAME...]`: opens each secret with your key and seals
/// it again to the nodes your trust policy allows now.
fn rewrap(ctx: &Context, names: &[String]) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    let rules = super::trust_push::local_rules(&dir)?;
    let key = ctx.signing_key()?;
    let me = PublicKey(key.verifying_key().to_bytes());
    let identity = KeyIdentity::new(&key)?;
    let client = ctx.client_with_key(key)?;
    // A policy changed since (`ui policy trust`) reaches the daemon too.
    super::trust_push::sync_and_say(&client, &dir, "")?;
    let all = client.list_secrets().context("listing your secrets")?.data;
    let chosen: Vec<_> = if names.is_empty() {
        all
    } else {
        for n in names {
            if !all.iter().any(|s| &s.name == n) {
                anyhow::bail!("you have no secret {n}");
            }
        }
        all.into_iter()
            .filter(|s| names.contains(&s.name))
            .collect()
    };
    let (keys, nodes, left_out) = recipients(&client, &rules, me)?;
    let mut done = Vec::new();
    for s in &chosen {
        let value = identity
            .open(&s.sealed)
            .with_context(|| format!("opening secret {} with your key", s.name))?;
        let sealed = orchestrator_secrets::seal(&value, &keys)?;
        client
            .put_secret(
                &s.name,
                &PutSecret {
                    recipients: keys.clone(),
                    sealed,
                },
            )
            .with_context(|| format!("storing secret {}", s.name))?;
        done.push(s.name.clone());
    }
    emit(
        ctx.output(),
        &json!({ "rewrapped": done, "nodes": nodes, "left_out": left_out }),
        &format!(
            "sealed {} secrets again to {nodes} nodes and your key ({left_out} nodes left out \
             by your trust policy)\n",
            done.len(),
        ),
    );
    Ok(())
}
