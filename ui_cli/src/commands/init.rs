//! `ui init [--force]`: the identity and the default config and policy files.

use anyhow::Context as _;
use serde_json::json;
use user_config::{new_passphrase_from_env_or_prompt, Identity, IdentityStore};

use super::Context;
use crate::cli::InitArgs;
use crate::output::emit;

/// Runs `ui init`.
pub fn run(ctx: &Context, args: &InitArgs) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    dir.ensure()
        .with_context(|| format!("creating {}", dir.root().display()))?;
    let store = IdentityStore::new(&dir);
    let existed = store.exists();
    if existed && !args.force {
        let key = store.public_key().context("reading your public key")?;
        emit(
            ctx.output(),
            &json!({
                "created": false,
                "public_key": key.to_hex(),
                "config_dir": dir.root(),
            }),
            &format!(
                "an identity already exists in {} (public key {}); nothing changed \
                 (use --force to replace it)",
                dir.root().display(),
                key.to_hex()
            ),
        );
        return Ok(());
    }
    let passphrase = new_passphrase_from_env_or_prompt("Passphrase for your new identity: ")
        .context("reading a passphrase for the new identity")?;
    let identity = if existed {
        let identity = Identity::generate();
        store
            .save(&identity, &passphrase, true)
            .context("replacing your identity")?;
        identity
    } else {
        store
            .create(&passphrase)
            .context("creating your identity")?
    };
    let written = crate::profile::write_default_files(&dir)?;
    let key = identity.public_key().to_hex();
    let mut text = format!(
        "{} identity in {}\npublic key: {key}\n",
        if existed {
            "replaced the"
        } else {
            "created an"
        },
        dir.root().display()
    );
    for path in &written {
        text.push_str(&format!("wrote {}\n", path.display()));
    }
    emit(
        ctx.output(),
        &json!({
            "created": true,
            "replaced": existed,
            "public_key": key,
            "config_dir": dir.root(),
            "files_written": written,
        }),
        &text,
    );
    Ok(())
}
