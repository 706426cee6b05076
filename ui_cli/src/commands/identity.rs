//! `ui identity show | export | import <file>`.

use std::io::Read;

use anyhow::Context as _;
use serde_json::json;
use user_config::{passphrase_from_env_or_prompt, IdentityStore};

use super::Context;
use crate::cli::IdentityCommand;
use crate::output::emit;

/// Runs `ui identity ...`.
pub fn run(ctx: &Context, cmd: &IdentityCommand) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    let store = IdentityStore::new(&dir);
    match cmd {
        IdentityCommand::Show => {
            let key = store.public_key().context("reading your public key")?;
            emit(
                ctx.output(),
                &json!({
                    "public_key": key.to_hex(),
                    "identity_file": dir.identity_file(),
                }),
                &key.to_hex(),
            );
        }
        IdentityCommand::Export => {
            let armored = store.export_armored().context("exporting your identity")?;
            emit(ctx.output(), &json!({ "armored": armored }), &armored);
        }
        IdentityCommand::Import { file, force } => {
            if store.exists() && !force {
                anyhow::bail!(
                    "an identity already exists in {}: use --force to replace it \
                     (export it first to keep it)",
                    dir.root().display()
                );
            }
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading the identity from standard input")?;
                text
            } else {
                std::fs::read_to_string(file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            dir.ensure()
                .with_context(|| format!("creating {}", dir.root().display()))?;
            let passphrase = passphrase_from_env_or_prompt("Passphrase of the imported identity: ")
                .context("reading the passphrase")?;
            let identity = store
                .import_armored(&text, &passphrase, *force)
                .context("importing the identity")?;
            let key = identity.public_key().to_hex();
            emit(
                ctx.output(),
                &json!({ "public_key": key, "imported": true }),
                &format!("imported identity {key}"),
            );
        }
    }
    Ok(())
}
