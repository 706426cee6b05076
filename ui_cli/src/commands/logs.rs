//! `ui logs <name> [-f] [--tail N]`: the NDJSON log stream, as text.

use std::io::Write;

use anyhow::Context as _;

use super::Context;
use crate::cli::{LogsArgs, OutputFormat};
use crate::client::segment;
use crate::output::short;
use crate::views::LogEntry;

/// The request target of the logs endpoint.
pub fn logs_path(name: &str, tail: Option<u32>, follow: bool) -> String {
    let mut query = Vec::new();
    if let Some(n) = tail {
        query.push(format!("tail={n}"));
    }
    if follow {
        query.push("follow=true".to_owned());
    }
    let mut path = format!("/api/v1/workloads/{}/logs", segment(name));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

/// One log line as printed: the text, after the short instance id when
/// `prefix` (the workload has more than one instance).
pub fn format_entry(entry: &LogEntry, prefix: bool) -> String {
    if prefix {
        format!("[{}] {}", short(&entry.instance), entry.line)
    } else {
        entry.line.clone()
    }
}

/// Runs `ui logs`.
pub fn run(ctx: &Context, args: &LogsArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let instances = client.get_all(&format!(
        "/api/v1/workloads/{}/instances",
        segment(&args.name)
    ))?;
    let prefix = instances.len() > 1;
    let answer = client.send("GET", &logs_path(&args.name, args.tail, args.follow), None)?;
    let stdout = std::io::stdout();
    for line in answer.lines() {
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
    fn query_is_built_from_flags() {
        assert_eq!(
            logs_path("hello", None, false),
            "/api/v1/workloads/hello/logs"
        );
        assert_eq!(
            logs_path("hello", Some(5), true),
            "/api/v1/workloads/hello/logs?tail=5&follow=true"
        );
    }

    #[test]
    fn entries_are_prefixed_only_with_several_instances() {
        let entry = LogEntry {
            instance: "9f1c2d3e-4b5a-4c6d-8e7f-001122334455".into(),
            line: "mock: started main".into(),
            ..LogEntry::default()
        };
        assert_eq!(format_entry(&entry, false), "mock: started main");
        assert_eq!(
            format_entry(&entry, true),
            "[9f1c2d3e4b5a] mock: started main"
        );
    }
}
