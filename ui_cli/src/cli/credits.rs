//! The arguments of the reputation and credit commands: `ui credits ...`,
//! `ui attest` and `ui operator prove` (SPEC §17, MYCELIAL.md).

use clap::{Args, Subcommand};

/// `ui credits ...`.
#[derive(Debug, Subcommand)]
pub enum CreditsCommand {
    /// Your balance, what is held for running instances, your credit limit and
    /// what you may still spend.
    Balance,
    /// Every entry of your account, oldest first.
    History,
    /// Transfer credits to another operator.
    ///
    /// The transfer's nonce is the current time in microseconds: the daemon
    /// wants each sender's nonces to strictly increase, so a transfer sent
    /// while your clock runs behind an earlier one (or from two machines at
    /// once) is refused and nothing moves; send it again.
    Send {
        /// The operator's public key: 64 hex characters, or standard base64
        /// of its 32 bytes.
        operator: String,
        /// How much, in units with at most 3 decimals (e.g. `12.5`).
        #[arg(allow_negative_numbers = true)]
        amount: String,
    },
}

/// `ui attest`.
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The operator vouched for: 64 hex characters, or standard base64 of its
    /// 32 bytes.
    pub operator: String,
    /// How strongly, from 0 to 1 (0 withdraws an earlier attestation).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub weight: f64,
    /// How long it counts: a number and a unit, `s`, `m`, `h` or `d` (at
    /// most 365d).
    #[arg(long, value_name = "DURATION", default_value = "365d")]
    pub expires: String,
}

/// `ui operator ...`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Sign the proof that you operate a node, for its daemon's
    /// `--operator-proof` (the daemon refuses `--operator YOUR_KEY` without
    /// it, and peers believe the claim only with it).
    Prove {
        /// The node's id: 64 hex characters, as `orchestrator_daemon node-id`
        /// prints them on the node.
        node_id: String,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ui").chain(args.iter().copied()))
    }

    #[test]
    fn credits_subcommands() {
        assert!(matches!(
            parse(&["credits", "balance"]).expect("parses").command,
            Command::Credits(CreditsCommand::Balance)
        ));
        assert!(matches!(
            parse(&["credits", "history", "-o", "json"])
                .expect("parses")
                .command,
            Command::Credits(CreditsCommand::History)
        ));
        let Command::Credits(CreditsCommand::Send { operator, amount }) =
            parse(&["credits", "send", "ab", "12.5"])
                .expect("parses")
                .command
        else {
            panic!("not credits send")
        };
        assert_eq!((operator.as_str(), amount.as_str()), ("ab", "12.5"));
        assert!(parse(&["credits", "send", "ab"]).is_err());
        assert!(parse(&["credits"]).is_err());
    }

    #[test]
    fn a_negative_amount_reaches_the_amount_parser() {
        // So that the user reads why, not clap's "unexpected argument".
        let Command::Credits(CreditsCommand::Send { amount, .. }) =
            parse(&["credits", "send", "ab", "-5"])
                .expect("parses")
                .command
        else {
            panic!("not credits send")
        };
        assert_eq!(amount, "-5");
    }

    #[test]
    fn attest_defaults_to_full_weight_for_a_year() {
        let Command::Attest(a) = parse(&["attest", "ab"]).expect("parses").command else {
            panic!("not attest")
        };
        assert_eq!((a.weight, a.expires.as_str()), (1.0, "365d"));
        let Command::Attest(a) = parse(&["attest", "ab", "--weight", "0.25", "--expires", "30d"])
            .expect("parses")
            .command
        else {
            panic!("not attest")
        };
        assert_eq!((a.weight, a.expires.as_str()), (0.25, "30d"));
        assert!(parse(&["attest", "ab", "--weight", "much"]).is_err());
        assert!(parse(&["attest"]).is_err());
    }
}
