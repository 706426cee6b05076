//! `ui deploy <manifest>`: send the manifest, then wait until every replica runs.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orchestrator_api::client::Reply;
use orchestrator_api::Workload;
use orchestrator_shared_types::WorkloadSpec;

use super::trust_push::Synced;
use super::Context;
use crate::cli::DeployArgs;
use crate::client::ApiClient;
use crate::output::{emit, spinner};

/// How often the workload is polled while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The content type to send a manifest with: JSON for `.json` files or text
/// that starts with `{`, YAML otherwise.
pub fn content_type(path: &Path, text: &str) -> &'static str {
    let is_json_file = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json_file || text.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/yaml"
    }
}

/// One line of progress: `hello: 2/3 running` (plus what else is going on).
pub fn progress_line(w: &Workload) -> String {
    let mut line = format!(
        "{}: {}/{} running",
        w.name(),
        w.status.running,
        w.replicas()
    );
    if w.status.up_to_date != w.replicas() {
        line.push_str(&format!(", {} up to date", w.status.up_to_date));
    }
    if w.status.pending > 0 {
        line.push_str(&format!(", {} pending", w.status.pending));
    }
    if w.status.failed > 0 {
        line.push_str(&format!(", {} failed", w.status.failed));
    }
    line
}

/// The validated manifest. Its own `trust` block, if any, travels with it;
/// your trust policy does not: the daemon holds it ([`super::trust_push`])
/// and enforces both, so that a change of policy reaches workloads
/// deployed before it.
pub fn parse_manifest(path: &Path, text: &str) -> anyhow::Result<WorkloadSpec> {
    if content_type(path, text) == "application/json" {
        WorkloadSpec::from_json(text)
    } else {
        WorkloadSpec::from_yaml(text)
    }
    .with_context(|| format!("reading the manifest {}", path.display()))
}

/// Runs `ui deploy`: refuses a manifest past `policy/limits.toml` before
/// sending it.
pub fn run(ctx: &Context, args: &DeployArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("reading the manifest {}", args.manifest.display()))?;
    let dir = ctx.config_dir()?;
    let mut spec = parse_manifest(&args.manifest, &text)?;
    super::trust_push::local_rules(&dir)?;
    let limits = super::limits::load(&dir)?;
    let client = ctx.client()?;
    super::limits::check_deploy(&limits, &client, &spec)?;
    if let Synced::Unsupported(rules) = super::trust_push::sync_and_say(&client, &dir, "")? {
        // An older daemon: the rules travel with the manifest, as they did.
        if spec.trust.is_empty() {
            spec.trust = rules;
        }
    }
    let body = serde_json::to_vec(&spec)?;
    let stored = client.create_workload("application/json", &body)?;
    let verb = if stored.status == 201 {
        "created"
    } else {
        "updated"
    };
    let w = &stored.data;
    if args.no_wait {
        emit(
            ctx.output(),
            &stored.raw,
            &format!("workload {} {verb} (id {})", w.name(), w.workload.id),
        );
        return Ok(());
    }
    let done = wait(&client, w.name(), Duration::from_secs(args.timeout))?;
    let d = &done.data;
    emit(
        ctx.output(),
        &done.raw,
        &format!(
            "workload {} {verb}: {}/{} running",
            d.name(),
            d.status.running,
            d.replicas()
        ),
    );
    Ok(())
}

/// Polls the workload until every replica runs the current generation, with a
/// spinner on stderr; fails after `timeout`.
fn wait(client: &ApiClient, name: &str, timeout: Duration) -> anyhow::Result<Reply<Workload>> {
    let spinner = spinner(format!("waiting for {name}"));
    let started = Instant::now();
    let result = loop {
        let current = match client.get_workload(name) {
            Ok(v) => v,
            Err(e) => break Err(anyhow::Error::new(e).context(format!("waiting for {name}"))),
        };
        let w = &current.data;
        spinner.set_message(progress_line(w));
        if w.is_rolled_out() {
            break Ok(current);
        }
        if started.elapsed() >= timeout {
            break Err(anyhow::anyhow!(
                "timed out after {}s waiting for {} (see `ui status {}`)",
                timeout.as_secs(),
                progress_line(w),
                w.name()
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    spinner.finish_and_clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::{fixtures, view};
    use serde_json::json;

    #[test]
    fn a_manifest_keeps_its_own_trust_block_and_gets_no_other() {
        let yaml = "name: web\ncontainers:\n  - name: main\n    image: web:1\n";
        let spec = parse_manifest(Path::new("web.yaml"), yaml).unwrap();
        let sent = serde_json::to_value(&spec).unwrap();
        assert!(sent.get("trust").is_none(), "{sent}");
        let own = format!("{yaml}trust:\n  min_reputation: 0.5\n");
        let spec = parse_manifest(Path::new("web.yaml"), &own).unwrap();
        let sent = serde_json::to_value(&spec).unwrap();
        assert_eq!(sent["trust"]["min_reputation"], 0.5);
        // A bad manifest is refused here, naming the field.
        let err = parse_manifest(Path::new("x.yaml"), "name: web\nreplicas: many\n").unwrap_err();
        assert!(format!("{err:#}").contains("replicas"), "{err:#}");
    }

    #[test]
    fn manifests_are_sent_as_yaml_unless_json() {
        assert_eq!(
            content_type(Path::new("a.yaml"), "name: x"),
            "application/yaml"
        );
        assert_eq!(
            content_type(Path::new("a.JSON"), "name"),
            "application/json"
        );
        assert_eq!(
            content_type(Path::new("a.txt"), "  {\"name\":1}"),
            "application/json"
        );
    }

    #[test]
    fn progress_shows_running_over_desired() {
        let w: Workload = view(
            &fixtures::workload(json!({"spec": {"name": "hello", "replicas": 3},
                    "status": {"running": 2, "up_to_date": 2, "pending": 1}})),
            "workload",
        )
        .expect("parses");
        assert_eq!(
            progress_line(&w),
            "hello: 2/3 running, 2 up to date, 1 pending"
        );
        let w: Workload = view(
            &fixtures::workload(json!({"spec": {"name": "hello", "replicas": 3},
                    "status": {"running": 3, "up_to_date": 3}})),
            "workload",
        )
        .expect("parses");
        assert_eq!(progress_line(&w), "hello: 3/3 running");
    }
}
