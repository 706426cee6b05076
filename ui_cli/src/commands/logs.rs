//! `ui logs <name> [-f] [--tail N]`: the NDJSON log stream, as text.

use std::io::Write;

use anyhow::Context as _;

use orchestrator_api::LogEntry;

use super::Context;
use crate::cli::{LogsArgs, OutputFormat};
use crate::output::short;

/// One log line as printed: the text, after the short instance id when
/// `prefix` (the workload has more than one instance).
pub fn format_entry(entry: &LogEntry, prefix: bool) -> String {
    if prefix {
        format!("[{}] {}", short(&entry.instance.to_string()), entry.line)
    } else {
        entry.line.clone()
    }
}

/// Runs `ui logs`.
pub fn run(ctx: &Context, args: &LogsArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let instances = client.list_instances(&args.name)?;
    let prefix = instances.data.len() > 1;
    let tail = args.tail.map(|n| n as usize);
    let lines = client.workload_log_lines(&args.name, tail, args.follow)?;
    let stdout = std::io::stdout();
    for line in lines {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let text = match ctx.output() {
            OutputFormat::Json => line,
            OutputFormat::Table => {
                let entry: LogEntry = serde_json::from_str(&line)
                    .with_context(|| format!("unexpected log entry from the server: {line}"))?;
                format_entry(&entry, prefix)
            }
        };
        let mut out = stdout.lock();
        // A closed stdout (`ui logs x | head`) ends the command quietly.
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_prefixed_only_with_several_instances() {
        let entry = LogEntry {
            instance: "9f1c2d3e-4b5a-4c6d-8e7f-001122334455"
                .parse()
                .expect("instance id"),
            container: "main".into(),
            timestamp: chrono::Utc::now(),
            stream: "stdout".into(),
            line: "mock: started main".into(),
        };
        assert_eq!(format_entry(&entry, false), "mock: started main");
        assert_eq!(
            format_entry(&entry, true),
            "[9f1c2d3e4b5a] mock: started main"
        );
    }
}
