//! `ui health`, `ui version` and `ui completions`.

use clap::CommandFactory;
use serde_json::json;

use super::Context;
use crate::cli::{Cli, CompletionsArgs, OutputFormat};
use crate::output::{emit, print_json, Table};
use crate::views::{view, Health};

/// `ui health`: `GET /health` (unsigned); fails when the daemon is degraded.
pub fn health(ctx: &Context) -> anyhow::Result<()> {
    let client = ctx.unsigned_client()?;
    let answer = match client.send("GET", "/health", None) {
        Ok(a) => a.json()?,
        // A degraded daemon may answer 503 with the same body.
        Err(crate::client::ClientError::Api {
            status: 503,
            code: None,
            message,
            body,
        }) => serde_json::from_str(&body)
            .map_err(|_| anyhow::anyhow!("the server is unavailable (HTTP 503): {message}"))?,
        Err(e) => return Err(e.into()),
    };
    let h: Health = view(&answer, "health report")?;
    match ctx.output() {
        OutputFormat::Json => print_json(&answer),
        OutputFormat::Table => print!("{}", health_table(&h).render()),
    }
    if h.status == "ok" {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "{} is {}",
            client.server(),
            if h.status.is_empty() {
                "in an unknown state"
            } else {
                &h.status
            }
        ))
    }
}

/// COMPONENT, STATUS, MESSAGE, after an `overall` row.
pub fn health_table(h: &Health) -> Table {
    let mut table = Table::new(["COMPONENT", "STATUS", "MESSAGE"]);
    table.row(["overall", h.status.as_str(), ""]);
    for (name, c) in &h.components {
        table.row([
            name.as_str(),
            c.status.as_str(),
            c.message.as_deref().unwrap_or(""),
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
        let h: Health = view(
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
