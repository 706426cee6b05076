//! `ui`: the command-line interface of the Univrs orchestrator (SPEC §16).
//!
//! HTTP goes through `ureq` (blocking, rustls, no async runtime; see [`client`]
//! for why).
//!
//! - [`cli`]: the clap argument structs.
//! - [`commands`]: one module per command group, and the shared context
//!   (server URL, config directory, output format).
//! - [`client`]: signed HTTP requests to a daemon's REST API.
//! - [`profile`]: the user's identity, config and policy files, through `user_config`.
//! - [`views`]: the parts of the server's answers that tables show.
//! - [`output`]: tables and JSON.
//!
//! Errors print as `error: ...` on stderr with exit code 1; usage errors are
//! clap's, with exit code 2.

mod cli;
mod client;
mod commands;
mod output;
mod profile;
mod views;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `outer: inner: innermost`, skipping a cause whose
/// text the outer message already contains.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_reads_outer_to_inner_without_repeats() {
        let err = anyhow::Error::new(client::api_error(
            409,
            r#"{"error":{"code":"conflict","message":"name taken"}}"#,
        ))
        .context("deploying hello");
        assert_eq!(
            error_text(&err),
            "deploying hello: name taken (conflict, HTTP 409)"
        );
        let io = std::io::Error::other("connection refused");
        let err = anyhow::Error::new(io).context("cannot reach x: connection refused");
        assert_eq!(error_text(&err), "cannot reach x: connection refused");
    }
}
