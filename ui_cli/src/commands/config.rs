//! `ui config show | path`.

use anyhow::Context as _;
use serde_json::json;

use super::Context;
use crate::cli::ConfigCommand;
use crate::output::emit;

/// Runs `ui config ...`.
pub fn run(ctx: &Context, cmd: &ConfigCommand) -> anyhow::Result<()> {
    let dir = ctx.config_dir()?;
    match cmd {
        ConfigCommand::Path => emit(
            ctx.output(),
            &json!({
                "config_dir": dir.root(),
                "chosen_by": dir.source().to_string(),
            }),
            &dir.root().display().to_string(),
        ),
        ConfigCommand::Show => {
            let config = crate::profile::load_config(&dir)?;
            let server = ctx.server()?;
            let text = toml::to_string_pretty(&config).context("printing config.toml")?;
            emit(
                ctx.output(),
                &json!({
                    "config_file": dir.config_file(),
                    "config": config,
                    "server_in_effect": server,
                }),
                &format!(
                    "# {}\n{}\n# server in effect: {server}\n",
                    dir.config_file().display(),
                    text.trim_end()
                ),
            );
        }
    }
    Ok(())
}
