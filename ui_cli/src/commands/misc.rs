//! `ui health`, `ui version` and `ui completions`.

use clap::CommandFactory;
use serde_json::json;

use super::Context;
use crate::cli::{Cli, CompletionsArgs, OutputFormat};
use crate::output::{emit, print_json, Table};
use orchestrator_api::{HealthReport, OverallStatus};

/// `ui health`: `GET /health` (unsigned); fails when the daemon is degraded.
pub fn health(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.unsigned_client()?;
    // A degraded daemon may answer 503 with the same body, which reads too.
    let answer = match client.health() {
        Ok(a) => a,
        Err(crate::client::ClientError::Api {
            status: 503,
            code: None,
            message,
            ..
        }) => anyhow::bail!("the server is unavailable (HTTP 503): {message}"),
        Err(e) => return Err(e.into()),
    };
    let h = &answer.data;
    match ctx.output() {
        OutputFormat::Json => print_json(&answer.raw),
        OutputFormat::Table => print!("{}", health_table(h).render()),
    }
    match h.status {
        OverallStatus::Ok => Ok(()),
        status => Err(anyhow::anyhow!("{} is {status}", client.server())),
    }
}

/// COMPONENT, STATUS, MESSAGE, after an `overall` row.
pub fn health_table(h: &HealthReport) -> Table {
    let mut table = Table::new(["COMPONENT", "STATUS", "MESSAGE"]);
    table.row(["overall".to_owned(), h.status.to_string(), String::new()]);
    for (name, c) in &h.components {
        table.row([
            name.clone(),
            c.status.to_string(),
            c.message.clone().unwrap_or_default(),
        ]);
    }
    table
}

/// `ui version`: the client's version (the API has no version route yet).
pub fn version(ctx: &Context) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    emit(
        ctx.output(),
        &json!({ "client": version }),
        &format!("ui {version}"),
    );
    Ok(())
}

/// `ui completions <shell>`: the completion script on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "ui", &mut std::io::stdout());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::GlobalArgs;
    use crate::client::test_server::serve_once;
    use crate::views::view;

    fn ctx(server: &str) -> Context {
        Context::new(GlobalArgs {
            server: Some(server.to_owned()),
            config_dir: Some("/nonexistent".into()),
            output: OutputFormat::Json,
        })
    }

    #[test]
    fn degraded_health_fails_and_is_unsigned() {
        let (url, server) = serve_once(
            "503 Service Unavailable",
            r#"{"status":"degraded","components":{"store":{"status":"failing","message":"x"}}}"#,
        );
        let err = health(&ctx(&url)).expect_err("degraded");
        assert!(err.to_string().ends_with("is degraded"), "{err}");
        let (head, _) = server.join().expect("server thread");
        assert!(head.starts_with("get /health "), "{head}");
        assert!(!head.contains("x-auth-signature"), "{head}");
    }

    #[test]
    fn healthy_is_ok() {
        let (url, server) = serve_once("200 OK", r#"{"status":"ok","components":{}}"#);
        health(&ctx(&url)).expect("healthy");
        server.join().expect("server thread");
    }

    #[test]
    fn health_rows() {
        let h: HealthReport = view(
            &json!({"status": "degraded", "components": {
                "store": {"status": "failing", "message": "disk full"},
                "runtime": {"status": "ok"}}}),
            "health",
        )
        .expect("parses");
        assert_eq!(
            health_table(&h).render(),
            "COMPONENT   STATUS     MESSAGE\n\
             overall     degraded\n\
             runtime     ok\n\
             store       failing    disk full\n"
        );
    }
}
