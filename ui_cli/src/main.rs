//! `ui`: the command-line interface of the Univrs orchestrator (SPEC §16).
//!
//! HTTP goes through `ureq` (blocking, rustls, no async runtime; see [`client`]
//! for why).
//!
//! - [`cli`]: the clap argument structs.
//! - [`commands`]: one module per command group, and the shared context
//!   (server URL, config directory, output format).
//! - [`client`]: signed HTTP requests to a daemon's REST API, typed by the
//!   API's wire types (both from `orchestrator_api`).
//! - [`profile`]: the user's identity, config and policy files, through `user_config`.
//! - [`views`]: reading the server's JSON into those wire types.
//! - [`output`]: tables and JSON.
//!
//! Errors print as `error: ...` on stderr with exit code 1; usage errors are
//! clap's, with exit code 2.

mod cli;
mod client;
mod commands;
mod dashboard;
mod output;
mod profile;
mod views;

use std::process::ExitCode;

use clap::Parser;

/// Exit status of a command whose reader went away, as for a process killed
/// by SIGPIPE (128 + 13), which is what shells expect of `cmd | head`.
const BROKEN_PIPE_STATUS: i32 = 141;

/// Makes a closed stdout (`ui … | head`) end the process quietly, like any
/// Unix tool, instead of a panic message: Rust ignores SIGPIPE, so `print!`
/// panics on the write error. (Resetting SIGPIPE would need `unsafe`, which
/// the workspace denies.)
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // `print!`'s "failed printing to stdout: Broken pipe (os error 32)",
        // and the same io::Error unwrapped by clap_complete.
        if message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE_STATUS);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            if let Some(hint) = commands::audience_hint(&err) {
                eprintln!("hint: {hint}");
            }
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
