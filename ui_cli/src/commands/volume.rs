//! `ui volume list|rm`: the user's volumes, and wiping one.

use super::Context;
use crate::cli::{OutputFormat, VolumeCommand};
use crate::output::{emit, print_json, seconds, short, Table};

/// Runs `ui volume ...`.
pub fn run(ctx: &Context, cmd: &VolumeCommand) -> anyhow::Result<()> {
    let client = ctx.client()?;
    match cmd {
        VolumeCommand::List => {
            let answer = client.list_volumes()?;
            if ctx.output() == OutputFormat::Json {
                print_json(&answer.raw);
                return Ok(());
            }
            if answer.data.is_empty() {
                println!("no volumes");
                return Ok(());
            }
            let mut table = Table::new(["NAME", "SIZE", "NODE", "USED BY", "CREATED"]);
            for v in &answer.data {
                let used = if v.deleting {
                    "(being deleted)".to_owned()
                } else if v.used_by.is_empty() {
                    "-".to_owned()
                } else {
                    v.used_by.join(",")
                };
                table.row([
                    v.name.clone(),
                    v.size.clone(),
                    short(&v.node.to_string()),
                    used,
                    seconds(v.created_at),
                ]);
            }
            print!("{}", table.render());
            Ok(())
        }
        VolumeCommand::Rm(args) => {
            let answer = client.delete_volume(&args.name)?;
            emit(
                ctx.output(),
                &answer.raw,
                &format!(
                    "volume {} wiped and deleted (it was {} on node {})",
                    answer.data.name,
                    answer.data.size,
                    short(&answer.data.node.to_string())
                ),
            );
            Ok(())
        }
    }
}
