//! `ui credits balance | history | send <operator> <amount>`: the user's
//! mutual-credit account (SPEC §17, MYCELIAL.md "Ledger").
//!
//! The ledger counts integer milli-units; the CLI reads and prints units with
//! three decimals, converting exactly ([`amount`]). A transfer is the signed
//! request `POST /api/v1/credits/transfer` `{"to", "amount", "nonce"}`: the
//! request signature is the sender's, and the daemon refuses a transfer that
//! would take the sender past their credit limit (409 `credit_limit_exceeded`)
//! or whose nonce is not above the sender's last one.

mod amount;

pub use amount::{format_units, parse_amount};

use anyhow::Context as _;
use chrono::Utc;
use orchestrator_shared_types::PublicKey;
use serde_json::{json, Value};

use super::policy::parse_operator;
use super::Context;
use crate::cli::{CreditsCommand, OutputFormat};
use crate::client::{ApiClient, ClientError};
use crate::output::{emit, print_json, seconds, short, Table};
use crate::views::view;
use orchestrator_api::{Balance, LedgerEntry, TransferRequest};

/// The error code of a transfer that would overdraw the sender.
pub const CREDIT_LIMIT_EXCEEDED: &str = "credit_limit_exceeded";

/// Runs `ui credits ...`.
pub fn run(ctx: &Context, cmd: &CreditsCommand) -> anyhow::Result<()> {
    match cmd {
        CreditsCommand::Balance => balance(ctx.output(), &ctx.client()?),
        CreditsCommand::History => history(ctx.output(), &ctx.client()?),
        CreditsCommand::Send { operator, amount } => {
            // Check the arguments before asking for the passphrase.
            let to = parse_operator(operator)?;
            let amount = parse_amount(amount)?;
            let limits = super::limits::load(&ctx.config_dir()?)?;
            let client = ctx.client()?;
            if client.public_key() != Some(to) {
                super::limits::check_transfer(&limits, &client, amount)?;
            }
            let transfer = Transfer {
                to,
                amount,
                nonce: nonce_now(),
            };
            send(ctx.output(), &client, &transfer)
        }
    }
}

/// `ui credits balance`: `GET /api/v1/credits/balance`.
pub fn balance(output: OutputFormat, client: &ApiClient) -> anyhow::Result<()> {
    let answer = client
        .credit_balance()
        .context("reading your credit balance")?;
    emit(output, &answer.raw, &balance_table(&answer.data).render());
    Ok(())
}

/// ACCOUNT, BALANCE, HELD, LIMIT, AVAILABLE, in units.
pub fn balance_table(b: &Balance) -> Table {
    let mut table = Table::new(["ACCOUNT", "BALANCE", "HELD", "LIMIT", "AVAILABLE"]);
    table.row([
        short(&b.account),
        format_units(b.balance),
        format_units(b.held),
        format_units(b.limit),
        format_units(b.available),
    ]);
    table
}

/// `ui credits history`: every page of `GET /api/v1/credits/history`.
pub fn history(output: OutputFormat, client: &ApiClient) -> anyhow::Result<()> {
    let items = match client
        .credit_history()
        .context("reading your credit history")?
        .raw
    {
        Value::Array(items) => items,
        _ => Vec::new(),
    };
    match output {
        OutputFormat::Json => print_json(&json!({ "items": items, "next_cursor": null })),
        OutputFormat::Table => {
            let me = client.public_key().map(|k| k.to_hex());
            print!("{}", history_table(&items, me.as_deref())?.render());
        }
    }
    Ok(())
}

/// SEQ, KIND, WITH (the other account), CHANGE and HELD (the user's balance
/// and holds, in units), AT; the user's own key shows as `you`.
pub fn history_table(items: &[Value], me: Option<&str>) -> anyhow::Result<Table> {
    let who = |key: Option<&str>| match key {
        None | Some("") => "-".to_owned(),
        Some(k) if me.is_some_and(|me| me.eq_ignore_ascii_case(k)) => "you".to_owned(),
        Some(k) => short(k),
    };
    let mut table = Table::new(["SEQ", "KIND", "WITH", "CHANGE", "HELD", "AT"]);
    for item in items {
        let e: LedgerEntry = view(item, "credit history entry")?;
        table.row([
            e.seq.to_string(),
            e.kind.clone(),
            match e.counterparty.as_deref() {
                Some("commons") => "commons".to_owned(),
                other => who(other),
            },
            format_units(e.balance_delta),
            format_units(e.held_delta),
            seconds(e.at),
        ]);
    }
    Ok(table)
}

/// A transfer to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// The operator paid.
    pub to: PublicKey,
    /// Milli-units, more than zero.
    pub amount: i64,
    /// Above every nonce the sender used before (see [`nonce_now`]).
    pub nonce: u64,
}

impl Transfer {
    /// The request body: `{"to": HEX, "amount": MILLI_UNITS, "nonce": N}`.
    pub fn body(&self) -> TransferRequest {
        TransferRequest {
            to: self.to.to_hex(),
            amount: self.amount,
            nonce: self.nonce,
        }
    }
}

/// The nonce of a transfer sent now: microseconds since the Unix epoch.
///
/// The daemon wants each sender's nonces to strictly increase. A clock keeps
/// that for one user sending from one machine, one transfer at a time, and
/// needs no state on disk. It fails only when the clock steps back (an NTP
/// correction) or the same identity sends from two machines within the same
/// microsecond or with skewed clocks: the daemon then refuses the transfer,
/// nothing moves, and sending again succeeds once the clock has passed the
/// last nonce.
pub fn nonce_now() -> u64 {
    u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0)
}

/// `ui credits send`: `POST /api/v1/credits/transfer`, then the new balance.
pub fn send(output: OutputFormat, client: &ApiClient, transfer: &Transfer) -> anyhow::Result<()> {
    let units = format_units(transfer.amount);
    let to = transfer.to.to_hex();
    if client.public_key() == Some(transfer.to) {
        anyhow::bail!("{to} is your own key: send credits to another operator");
    }
    let answer = match client.transfer_credits(&transfer.body()) {
        // The transfer is made: an answer without a readable balance still
        // reports it.
        Err(ClientError::Decode { .. }) => {
            emit(output, &Value::Null, &sent_text(transfer, None));
            return Ok(());
        }
        other => other,
    };
    let answer = answer.map_err(|err| match &err {
        ClientError::Api {
            code: Some(code), ..
        } if code == CREDIT_LIMIT_EXCEEDED => anyhow::Error::new(err).context(format!(
            "sending {units} to operator {to} would take you past your credit \
                     limit (see `ui credits balance`)"
        )),
        _ => anyhow::Error::new(err).context(format!("sending {units} to operator {to}")),
    })?;
    emit(
        output,
        &answer.raw,
        &sent_text(transfer, Some(&answer.data)),
    );
    Ok(())
}

/// What `ui credits send` prints once the daemon took the transfer.
pub fn sent_text(transfer: &Transfer, b: Option<&Balance>) -> String {
    let sent = format!(
        "sent {} to operator {}",
        format_units(transfer.amount),
        transfer.to.to_hex()
    );
    match b {
        Some(b) => format!(
            "{sent}\nbalance {}, available {}",
            format_units(b.balance),
            format_units(b.available)
        ),
        None => sent,
    }
}

#[cfg(test)]
mod tests;
