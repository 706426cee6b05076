//! `ui attest <operator> [--weight W] [--expires D]`: vouch for another
//! operator (SPEC §17, MYCELIAL.md §3 "Attestation trust").
//!
//! The attestation is signed here, with the user's identity key as issuer
//! (`mycelial::evidence::sign_attestation`), and posted as is to
//! `POST /api/v1/attestations`; the daemon verifies it and gossips it, so
//! every scheduler can check the signature without trusting the daemon that
//! received it. A later attestation of the same operator supersedes an
//! earlier one, so `--weight 0` withdraws a vouch.

use anyhow::Context as _;
use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use mycelial::evidence::{sign_attestation, Attestation, MAX_ATTESTATION_DAYS};
use orchestrator_shared_types::PublicKey;
use serde_json::Value;

use super::agent::parse_duration_within;
use super::policy::parse_operator;
use super::Context;
use crate::cli::{AttestArgs, OutputFormat};
use crate::client::ApiClient;
use crate::output::emit;

/// Runs `ui attest`.
pub fn run(ctx: &Context, args: &AttestArgs) -> anyhow::Result<()> {
    // Check the arguments before asking for the passphrase.
    let subject = parse_operator(&args.operator)?;
    check_weight(args.weight)?;
    let validity = parse_duration_within(&args.expires, max_validity())?;
    let key = ctx.signing_key()?;
    let client = ctx.client_with_key(key.clone())?;
    attest(
        ctx.output(),
        &client,
        &key,
        &Vouch {
            subject,
            weight: args.weight,
            validity,
        },
        Utc::now(),
    )?;
    Ok(())
}

/// The longest an attestation counts: [`MAX_ATTESTATION_DAYS`].
pub fn max_validity() -> TimeDelta {
    TimeDelta::days(MAX_ATTESTATION_DAYS)
}

/// Checks a weight: a number from 0 to 1.
pub fn check_weight(weight: f64) -> anyhow::Result<()> {
    if (0.0..=1.0).contains(&weight) {
        Ok(())
    } else {
        anyhow::bail!("--weight {weight} is not a weight: give a number from 0 to 1")
    }
}

/// What the user vouches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vouch {
    /// The operator vouched for.
    pub subject: PublicKey,
    /// How strongly, 0–1.
    pub weight: f64,
    /// How long it counts from now.
    pub validity: TimeDelta,
}

/// The attestation of `vouch` by the owner of `key`, issued at `now`
/// (truncated to the second) and signed.
pub fn signed_attestation(
    key: &SigningKey,
    vouch: &Vouch,
    now: DateTime<Utc>,
) -> anyhow::Result<mycelial::evidence::Signed<Attestation>> {
    let issuer = PublicKey(key.verifying_key().to_bytes());
    if issuer == vouch.subject {
        anyhow::bail!(
            "{} is your own key: attest another operator",
            issuer.to_hex()
        );
    }
    check_weight(vouch.weight)?;
    let issued_at = now.duration_trunc(TimeDelta::seconds(1)).unwrap_or(now);
    let attestation = Attestation {
        issuer,
        subject: vouch.subject,
        weight: vouch.weight,
        issued_at,
        expires_at: issued_at + vouch.validity,
    };
    sign_attestation(key, attestation).context("signing the attestation")
}

/// Signs the attestation and posts it: `POST /api/v1/attestations`. Returns
/// the daemon's answer.
pub fn attest(
    output: OutputFormat,
    client: &ApiClient,
    key: &SigningKey,
    vouch: &Vouch,
    now: DateTime<Utc>,
) -> anyhow::Result<Value> {
    let signed = signed_attestation(key, vouch, now)?;
    let answer = client
        .attest(&signed)
        .with_context(|| format!("attesting operator {}", vouch.subject.to_hex()))?;
    emit(output, &answer.raw, &attested_text(&signed.body));
    Ok(answer.raw)
}

/// What `ui attest` prints once the daemon took the attestation.
pub fn attested_text(a: &Attestation) -> String {
    let until = a.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true);
    if a.weight == 0.0 {
        format!(
            "withdrew your attestation of operator {} (weight 0 until {until})",
            a.subject.to_hex()
        )
    } else {
        format!(
            "attested operator {} with weight {} until {until}",
            a.subject.to_hex(),
            a.weight
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use mycelial::evidence::Signed;
    use serde_json::json;

    use super::*;
    use crate::client::test_server::serve_once;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
            .single()
            .expect("time")
            + TimeDelta::milliseconds(750)
    }

    fn vouch(weight: f64) -> Vouch {
        Vouch {
            subject: PublicKey([0xcd; 32]),
            weight,
            validity: TimeDelta::days(30),
        }
    }

    #[test]
    fn weights_are_from_zero_to_one() {
        for ok in [0.0, 0.25, 1.0] {
            assert!(check_weight(ok).is_ok(), "{ok}");
        }
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            let err = check_weight(bad).expect_err("refused").to_string();
            assert!(err.contains("is not a weight"), "{bad}: {err}");
        }
    }

    #[test]
    fn attestations_last_at_most_a_year() {
        assert_eq!(
            parse_duration_within("365d", max_validity()).expect("ok"),
            TimeDelta::days(365)
        );
        let err = parse_duration_within("366d", max_validity()).expect_err("too long");
        assert!(err.to_string().contains("maximum of 365d"), "{err}");
    }

    #[test]
    fn the_attestation_is_the_users_and_verifies() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let signed = signed_attestation(&key, &vouch(0.5), now()).expect("signed");
        assert!(signed.verify());
        assert_eq!(signed.body.issuer.0, key.verifying_key().to_bytes());
        assert_eq!(signed.body.issued_at.timestamp_subsec_nanos(), 0);
        assert_eq!(
            signed.body.expires_at - signed.body.issued_at,
            TimeDelta::days(30)
        );
        let own = Vouch {
            subject: PublicKey(key.verifying_key().to_bytes()),
            ..vouch(1.0)
        };
        let err = signed_attestation(&key, &own, now()).expect_err("self");
        assert!(err.to_string().contains("your own key"), "{err}");
    }

    #[test]
    fn attest_posts_a_verifiable_attestation() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let answer = json!({
            "issuer": hex_of(&key), "subject": "cd".repeat(32), "weight": 0.75,
            "expires_at": "2026-12-30T10:00:00Z"
        });
        let (url, server) = serve_once("201 Created", &answer.to_string());
        let client = ApiClient::new(&url, Some(key.clone()))
            .expect("client")
            .with_audience("test-audience");
        let got = attest(OutputFormat::Json, &client, &key, &vouch(0.75), now()).expect("posted");
        assert_eq!(got, answer);
        let (head, body) = server.join().expect("server thread");
        assert!(
            head.starts_with("post /api/v1/attestations http/1.1"),
            "{head}"
        );
        assert!(head.contains("x-auth-signature:"), "{head}");
        let posted: Signed<Attestation> =
            serde_json::from_str(&body).expect("a signed attestation");
        assert!(posted.verify(), "{body}");
        assert_eq!(posted.body.issuer.to_hex(), hex_of(&key));
        assert_eq!(posted.body.subject, PublicKey([0xcd; 32]));
        assert_eq!(posted.body.weight, 0.75);
        assert_eq!(
            posted.body.issued_at,
            Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
                .single()
                .expect("time")
        );
        let raw: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(raw["signature"].as_str().map(str::len), Some(128), "{raw}");
        assert_eq!(raw["body"]["expires_at"], json!("2026-12-30T10:00:00Z"));
    }

    #[test]
    fn a_refused_attestation_is_an_error() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let (url, server) = serve_once(
            "400 Bad Request",
            r#"{"error":{"code":"bad_request","message":"the attestation does not verify"}}"#,
        );
        let client = ApiClient::new(&url, Some(key.clone()))
            .expect("client")
            .with_audience("test-audience");
        let err =
            attest(OutputFormat::Table, &client, &key, &vouch(1.0), now()).expect_err("refused");
        assert_eq!(
            format!("{err:#}"),
            format!(
                "attesting operator {}: the attestation does not verify (bad_request, HTTP 400)",
                "cd".repeat(32)
            )
        );
        server.join().expect("server thread");
    }

    #[test]
    fn attested_sentences() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let signed = signed_attestation(&key, &vouch(0.5), now()).expect("signed");
        assert_eq!(
            attested_text(&signed.body),
            format!(
                "attested operator {} with weight 0.5 until 2026-12-30T10:00:00Z",
                "cd".repeat(32)
            )
        );
        let signed = signed_attestation(&key, &vouch(0.0), now()).expect("signed");
        assert!(attested_text(&signed.body).starts_with("withdrew your attestation"));
    }

    fn hex_of(key: &SigningKey) -> String {
        PublicKey(key.verifying_key().to_bytes()).to_hex()
    }
}
