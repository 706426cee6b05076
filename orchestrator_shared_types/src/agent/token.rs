//! Agent tokens: `univrs-agent-v1.<base64url(claims JSON)>.<base64url(signature)>`
//! (no padding), the signature being Ed25519, by the claims' `user`, over
//! [`SIGNING_CONTEXT`] followed by exactly the claims bytes the token carries.
//!
//! The daemon verifies the carried bytes, never a re-serialisation, so a token
//! stays valid whatever JSON formatting its issuer used.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{is_known_tool, is_valid_agent_name, AGENT_NAME_MAX, ALL_TOOLS};
use crate::ids::PublicKey;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "univrs-agent-v1.";

/// The bytes the signature covers before the claims JSON.
pub const SIGNING_CONTEXT: &[u8] = b"univrs-agent-token-v1\n";

/// The claims version this module issues and accepts.
pub const TOKEN_VERSION: u8 = 1;

/// What a token says: who lets which agent use which tools, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    /// Claims version ([`TOKEN_VERSION`]).
    pub v: u8,
    /// The token's id (32 lowercase hex characters), for revocation and audit.
    pub id: String,
    /// The user the agent acts for, whose key signs the token.
    pub user: PublicKey,
    /// The agent's name (1 to 64 characters of `[A-Za-z0-9._-]`).
    pub agent: String,
    /// The MCP tools allowed ([`super::TOOLS`] names, or `"*"` for every tool).
    pub tools: Vec<String>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

impl TokenClaims {
    /// New claims with a random 32-hex-character id and `v` = 1.
    pub fn new(
        user: PublicKey,
        agent: impl Into<String>,
        tools: Vec<String>,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            v: TOKEN_VERSION,
            id: uuid::Uuid::new_v4().simple().to_string(),
            user,
            agent: agent.into(),
            tools,
            issued_at,
            expires_at,
        }
    }

    /// Whether the token allows `tool` (listed, or `"*"` listed).
    pub fn allows(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool || t == ALL_TOOLS)
    }
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// It is not a well-formed v1 token; says which part is wrong.
    #[error("malformed agent token: {0}")]
    Malformed(String),
    /// The signature is not the claims' user's over the carried claims.
    #[error("agent token signature does not verify")]
    BadSignature,
    /// Its `expires_at` has passed.
    #[error("agent token expired at {}", rfc3339(.expires_at))]
    Expired {
        /// When it expired.
        expires_at: DateTime<Utc>,
    },
    /// Its `issued_at` is further in the future than the allowed clock skew.
    #[error("agent token issued at {} is in the future", rfc3339(.issued_at))]
    NotYetValid {
        /// When it claims to be issued.
        issued_at: DateTime<Utc>,
    },
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The bytes that are signed: [`SIGNING_CONTEXT`] then the claims JSON.
fn signing_message(claims_json: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + claims_json.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(claims_json);
    message
}

/// Signs `claims` with `key` into a token.
///
/// `key` should be the key of `claims.user`; otherwise the token never verifies.
pub fn issue_token(key: &SigningKey, claims: &TokenClaims) -> String {
    // Strings, a hex key, a small integer and RFC 3339 times: serialising these
    // cannot fail, and an empty claims part would only make a token that never
    // verifies.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let signature = key.sign(&signing_message(&json));
    format!(
        "{TOKEN_PREFIX}{}.{}",
        B64URL.encode(&json),
        B64URL.encode(signature.to_bytes())
    )
}

/// A token split into its claims bytes, its parsed claims and its signature bytes.
struct Parts {
    json: Vec<u8>,
    claims: TokenClaims,
    signature: Vec<u8>,
}

fn malformed(what: impl Into<String>) -> TokenError {
    TokenError::Malformed(what.into())
}

/// Splits and decodes `token` without checking anything but the encoding.
fn parse(token: &str) -> Result<Parts, TokenError> {
    let rest = token
        .trim()
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| malformed(format!("it does not start with {TOKEN_PREFIX:?}")))?;
    let mut split = rest.split('.');
    let (claims_part, signature_part) = match (split.next(), split.next(), split.next()) {
        (Some(c), Some(s), None) => (c, s),
        _ => {
            return Err(malformed(
                "expected two dot-separated parts (claims and signature) after the prefix",
            ))
        }
    };
    let json = B64URL
        .decode(claims_part)
        .map_err(|e| malformed(format!("claims are not base64url: {e}")))?;
    let signature = B64URL
        .decode(signature_part)
        .map_err(|e| malformed(format!("signature is not base64url: {e}")))?;
    let claims: TokenClaims = serde_json::from_slice(&json)
        .map_err(|e| malformed(format!("claims are not valid JSON: {e}")))?;
    Ok(Parts {
        json,
        claims,
        signature,
    })
}

/// Checks what the claims say about themselves: version, agent name, tools.
fn check_claims(claims: &TokenClaims) -> Result<(), TokenError> {
    if claims.v != TOKEN_VERSION {
        return Err(malformed(format!(
            "unsupported claims version {} (expected {TOKEN_VERSION})",
            claims.v
        )));
    }
    if !is_valid_agent_name(&claims.agent) {
        return Err(malformed(format!(
            "agent name {:?} is not 1 to {AGENT_NAME_MAX} characters of [A-Za-z0-9._-]",
            claims.agent
        )));
    }
    if claims.tools.is_empty() {
        return Err(malformed("tools is empty"));
    }
    if let Some(t) = claims
        .tools
        .iter()
        .find(|t| !is_known_tool(t) && t.as_str() != ALL_TOOLS)
    {
        return Err(malformed(format!("{t:?} in tools is not a known tool")));
    }
    Ok(())
}

/// Parses and verifies `token` at time `now`: its prefix and encoding, claims
/// version 1, a valid agent name, a non-empty list of known tools (or `"*"`),
/// the signature by `claims.user` over the carried claims bytes,
/// `expires_at > now` and `issued_at <= now + max_skew_seconds`.
///
/// Revocation and the trusted-keys list are the caller's to check.
pub fn verify_token(
    token: &str,
    now: DateTime<Utc>,
    max_skew_seconds: i64,
) -> Result<TokenClaims, TokenError> {
    let Parts {
        json,
        claims,
        signature,
    } = parse(token)?;
    check_claims(&claims)?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|s: Vec<u8>| malformed(format!("signature is {} bytes, expected 64", s.len())))?;
    let key = VerifyingKey::from_bytes(claims.user.as_bytes())
        .map_err(|_| malformed("user is not a valid Ed25519 public key"))?;
    key.verify_strict(&signing_message(&json), &Signature::from_bytes(&signature))
        .map_err(|_| TokenError::BadSignature)?;
    if claims.expires_at <= now {
        return Err(TokenError::Expired {
            expires_at: claims.expires_at,
        });
    }
    let latest = now
        .checked_add_signed(Duration::seconds(max_skew_seconds.max(0)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if claims.issued_at > latest {
        return Err(TokenError::NotYetValid {
            issued_at: claims.issued_at,
        });
    }
    Ok(claims)
}

/// The claims of `token`, checking nothing but the encoding (for the audit log
/// of a refused call). Never trust them for anything else.
pub fn decode_unverified(token: &str) -> Option<TokenClaims> {
    parse(token).ok().map(|p| p.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
            .single()
            .unwrap()
    }

    fn claims_for(key: &SigningKey, tools: &[&str]) -> TokenClaims {
        TokenClaims::new(
            PublicKey(key.verifying_key().to_bytes()),
            "bot",
            tools.iter().map(|t| (*t).to_owned()).collect(),
            now(),
            now() + Duration::hours(24),
        )
    }

    /// The token's claims part decoded, and a token carrying `json` instead
    /// with the original signature.
    fn with_claims_json(token: &str, json: &[u8]) -> String {
        let rest = token.strip_prefix(TOKEN_PREFIX).unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        format!("{TOKEN_PREFIX}{}.{sig}", B64URL.encode(json))
    }

    fn claims_json(token: &str) -> Vec<u8> {
        let rest = token.strip_prefix(TOKEN_PREFIX).unwrap();
        B64URL.decode(rest.split_once('.').unwrap().0).unwrap()
    }

    #[test]
    fn issue_then_verify_round_trips() {
        let k = key(1);
        let claims = claims_for(&k, &["list_workloads", "scale_workload"]);
        assert_eq!(claims.v, 1);
        assert_eq!(claims.id.len(), 32);
        assert!(claims.id.bytes().all(|b| b.is_ascii_hexdigit()));
        let token = issue_token(&k, &claims);
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!token.contains('='), "no padding: {token}");
        assert_eq!(verify_token(&token, now(), 60), Ok(claims.clone()));
        assert_eq!(decode_unverified(&token), Some(claims));
        let json: serde_json::Value = serde_json::from_slice(&claims_json(&token)).unwrap();
        assert_eq!(json["user"], hex::encode(k.verifying_key().to_bytes()));
        assert_eq!(json["issued_at"], "2026-11-30T10:00:00Z");
    }

    #[test]
    fn two_claims_get_different_ids() {
        let k = key(1);
        assert_ne!(claims_for(&k, &["*"]).id, claims_for(&k, &["*"]).id);
    }

    #[test]
    fn changed_claims_under_the_old_signature_are_refused() {
        let k = key(1);
        let token = issue_token(&k, &claims_for(&k, &["list_workloads"]));
        let json = String::from_utf8(claims_json(&token)).unwrap();
        // One character flipped in the carried claims.
        let flipped = json.replace("\"bot\"", "\"bou\"");
        assert_ne!(flipped, json);
        let forged = with_claims_json(&token, flipped.as_bytes());
        assert_eq!(
            verify_token(&forged, now(), 60),
            Err(TokenError::BadSignature)
        );
        // The same claims re-encoded with more tools.
        let mut wider = claims_for(&k, &["*"]);
        wider.id = decode_unverified(&token).unwrap().id;
        let forged = with_claims_json(&token, &serde_json::to_vec(&wider).unwrap());
        assert_eq!(
            verify_token(&forged, now(), 60),
            Err(TokenError::BadSignature)
        );
        // Equal claims, other bytes: the signature covers the bytes.
        let spaced = json.replacen(',', ", ", 1);
        let forged = with_claims_json(&token, spaced.as_bytes());
        assert_eq!(
            verify_token(&forged, now(), 60),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let user = key(1);
        let claims = claims_for(&user, &["list_workloads"]);
        let token = issue_token(&key(2), &claims);
        assert_eq!(
            verify_token(&token, now(), 60),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let k = key(1);
        let claims = claims_for(&k, &["list_workloads"]);
        let token = issue_token(&k, &claims);
        let at_expiry = claims.expires_at;
        let err = verify_token(&token, at_expiry, 60).unwrap_err();
        assert_eq!(
            err,
            TokenError::Expired {
                expires_at: at_expiry
            }
        );
        assert_eq!(
            err.to_string(),
            "agent token expired at 2026-12-01T10:00:00Z"
        );
        assert!(verify_token(&token, at_expiry - Duration::seconds(1), 60).is_ok());

        // Issued 60 s ahead of the verifier's clock: within a 60 s skew, not 59.
        let before = now() - Duration::seconds(60);
        assert!(verify_token(&token, before, 60).is_ok());
        let err = verify_token(&token, before, 59).unwrap_err();
        assert_eq!(err, TokenError::NotYetValid { issued_at: now() });
        assert_eq!(
            err.to_string(),
            "agent token issued at 2026-11-30T10:00:00Z is in the future"
        );
    }

    #[test]
    fn malformed_tokens_say_which_part() {
        let k = key(1);
        let good = issue_token(&k, &claims_for(&k, &["list_workloads"]));
        let rest = good.strip_prefix(TOKEN_PREFIX).unwrap();
        let (claims_part, sig_part) = rest.split_once('.').unwrap();
        let cases = [
            ("", "does not start with"),
            ("univrs-agent-v2.a.b", "does not start with"),
            (rest, "does not start with"),
            (TOKEN_PREFIX, "two dot-separated parts"),
            (&format!("{TOKEN_PREFIX}{claims_part}"), "two dot-separated"),
            (&format!("{good}.x"), "two dot-separated parts"),
            (
                &format!("{TOKEN_PREFIX}!!.{sig_part}"),
                "claims are not base64url",
            ),
            (
                &format!("{TOKEN_PREFIX}{claims_part}.%%"),
                "signature is not base64url",
            ),
            (
                &format!("{TOKEN_PREFIX}{claims_part}.AAAA"),
                "signature is 3 bytes",
            ),
            (
                &format!("{TOKEN_PREFIX}{}.{sig_part}", B64URL.encode("{}")),
                "claims are not valid JSON",
            ),
        ];
        for (token, want) in cases {
            match verify_token(token, now(), 60) {
                Err(TokenError::Malformed(what)) => {
                    assert!(what.contains(want), "{token:?}: {what}")
                }
                other => panic!("{token:?}: {other:?}"),
            }
        }
        assert_eq!(decode_unverified("nope"), None);
    }

    #[test]
    fn claims_must_be_v1_with_a_valid_agent_and_known_tools() {
        let k = key(1);
        let check = |edit: &dyn Fn(&mut TokenClaims), want: &str| {
            let mut claims = claims_for(&k, &["list_workloads"]);
            edit(&mut claims);
            // Correctly signed: the claims themselves are refused.
            let token = issue_token(&k, &claims);
            match verify_token(&token, now(), 60) {
                Err(TokenError::Malformed(what)) => assert!(what.contains(want), "{what}"),
                other => panic!("{want}: {other:?}"),
            }
        };
        check(&|c| c.v = 2, "unsupported claims version 2");
        check(&|c| c.agent = String::new(), "agent name");
        check(&|c| c.agent = "a b".into(), "agent name");
        check(&|c| c.agent = "x".repeat(65), "agent name");
        check(&|c| c.tools.clear(), "tools is empty");
        check(&|c| c.tools.push("rm_rf".into()), "\"rm_rf\" in tools");
    }

    #[test]
    fn unknown_claim_fields_are_malformed() {
        let k = key(1);
        let token = issue_token(&k, &claims_for(&k, &["*"]));
        let json = String::from_utf8(claims_json(&token)).unwrap();
        let extra = json.replacen('{', "{\"admin\":true,", 1);
        let forged = with_claims_json(&token, extra.as_bytes());
        assert!(matches!(
            verify_token(&forged, now(), 60),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn star_allows_every_tool() {
        let k = key(1);
        let star = claims_for(&k, &["*"]);
        assert!(super::super::TOOLS.iter().all(|t| star.allows(t)));
        let some = claims_for(&k, &["list_workloads"]);
        assert!(some.allows("list_workloads"));
        assert!(!some.allows("delete_workload"));
        assert!(verify_token(&issue_token(&k, &star), now(), 60).is_ok());
    }

    proptest! {
        #[test]
        fn verify_never_panics(s in ".{0,300}") {
            let _ = verify_token(&s, now(), 60);
            let _ = decode_unverified(&s);
        }

        #[test]
        fn verify_never_panics_on_prefixed_junk(
            a in "[A-Za-z0-9_-]{0,200}",
            b in "[A-Za-z0-9_.=-]{0,120}",
        ) {
            let token = format!("{TOKEN_PREFIX}{a}.{b}");
            prop_assert!(verify_token(&token, now(), 60).is_err());
            let _ = decode_unverified(&token);
        }
    }
}
