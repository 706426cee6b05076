//! A payment from one key to another, and its proof: either the payer's
//! Ed25519 signature over the transfer's canonical bytes, or the signature of
//! the REST request (`POST /api/v1/credits/transfer`, SPEC §11) the payer sent.

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use orchestrator_shared_types::auth::{signing_message, Payload};
use orchestrator_shared_types::PublicKey;
use serde::{Deserialize, Serialize};

use super::canonical::{Obj, SignatureBytes};
use super::{
    LedgerError, MAX_TEXT_BYTES, REQUEST_PROOF_TTL_SECONDS, TRANSFER_DOMAIN, TRANSFER_PATH,
};

/// A payment of `amount` milli-units from `payer` to `payee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The ledger (cluster) it is meant for; any other ledger refuses it.
    pub ledger: String,
    /// Who pays, and must sign.
    pub payer: PublicKey,
    /// Who is paid.
    pub payee: PublicKey,
    /// Milli-units, more than zero.
    pub amount: i64,
    /// Strictly above the payer's last accepted nonce (gaps allowed).
    pub nonce: u64,
    /// Free text for the parties (an invoice number), at most 256 bytes.
    pub reference: String,
    /// After this instant the transfer is refused.
    pub expires_at: DateTime<Utc>,
}

impl Transfer {
    /// The canonical JSON of the transfer: `{"ledger","payer","payee",
    /// "amount","nonce","reference","expires_at"}` in that order, compact,
    /// keys in hex, time in RFC 3339 UTC.
    pub fn canonical_json(&self) -> String {
        Obj::new()
            .str("ledger", &self.ledger)
            .str("payer", &self.payer.to_hex())
            .str("payee", &self.payee.to_hex())
            .int("amount", self.amount)
            .int("nonce", self.nonce)
            .str("reference", &self.reference)
            .time("expires_at", &self.expires_at)
            .end()
    }

    /// What the payer signs: `univrs-credit-transfer-v1\n` + canonical JSON.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = TRANSFER_DOMAIN.as_bytes().to_vec();
        out.extend_from_slice(self.canonical_json().as_bytes());
        out
    }

    /// Signs the transfer with the payer's key (whose public half must be
    /// `payer`, or the ledger refuses it).
    pub fn sign(self, payer_key: &SigningKey) -> SignedTransfer {
        let sig = payer_key.sign(&self.signing_bytes());
        SignedTransfer {
            transfer: self,
            proof: Proof::Ed25519 {
                signature: SignatureBytes(sig.to_bytes()),
            },
        }
    }
}

/// Evidence that the payer wanted the transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Proof {
    /// The payer's signature over [`Transfer::signing_bytes`].
    Ed25519 {
        /// The signature.
        signature: SignatureBytes,
    },
    /// The payer's signed REST request, kept verbatim: its signature covers
    /// `METHOD\nPATH\nTIMESTAMP\nhex(SHA256(body))\nAUDIENCE\n` (SPEC §11,
    /// signing scheme v2, made by the payer in person: no agent), and the
    /// body must be the [`TransferRequest`] of this transfer. The body itself
    /// is kept, not only its hash, so anyone can check it against the
    /// transfer. A proof without `audience` was recorded under scheme v1
    /// (no audience, no agent line) and is checked as such.
    Request {
        /// `POST`.
        method: String,
        /// `/api/v1/credits/transfer`.
        path: String,
        /// The `X-Auth-Timestamp` header as sent.
        timestamp: String,
        /// The request body as sent (UTF-8 JSON).
        body: String,
        /// The `X-Auth-Signature` header, decoded.
        signature: SignatureBytes,
        /// The audience the request was signed for (the cluster id, or the
        /// standalone node's id); absent in proofs of signing scheme v1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<String>,
    },
}

impl Proof {
    /// Lowercase hex SHA-256 of a request proof's body (what its signature
    /// covers); `None` for an Ed25519 proof.
    pub fn body_sha256_hex(&self) -> Option<String> {
        use sha2::{Digest, Sha256};
        match self {
            Proof::Ed25519 { .. } => None,
            Proof::Request { body, .. } => Some(hex::encode(Sha256::digest(body.as_bytes()))),
        }
    }

    pub(crate) fn canonical_json(&self) -> String {
        match self {
            Proof::Ed25519 { signature } => Obj::new()
                .str("kind", "ed25519")
                .str("signature", &signature.to_hex())
                .end(),
            Proof::Request {
                method,
                path,
                timestamp,
                body,
                signature,
                audience,
            } => {
                let obj = Obj::new()
                    .str("kind", "request")
                    .str("method", method)
                    .str("path", path)
                    .str("timestamp", timestamp)
                    .str("body", body)
                    .str("signature", &signature.to_hex());
                // Absent in v1 proofs, whose canonical form stays as it was.
                match audience {
                    Some(a) => obj.str("audience", a).end(),
                    None => obj.end(),
                }
            }
        }
    }
}

/// A transfer with its proof: what the ledger applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransfer {
    /// The payment.
    pub transfer: Transfer,
    /// Evidence that the payer wanted it.
    pub proof: Proof,
}

/// The JSON body of `POST /api/v1/credits/transfer`. The payer is the
/// request's signer; `reference` and `ledger` are optional. Naming the
/// ledger binds the request to one cluster: without it, the same signed
/// request could be replayed to another cluster where the payer's nonce is lower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The payee's public key (hex).
    pub to: PublicKey,
    /// Milli-units.
    pub amount: i64,
    /// The payer's next nonce.
    pub nonce: u64,
    /// Free text for the parties.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    /// The ledger (cluster) id, when the client binds the request to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<String>,
}

/// What signing scheme v1 signed (`METHOD\nPATH\nTIMESTAMP\nhex(SHA256(body))`),
/// to check the request proofs recorded before v2.
fn v1_signing_message(method: &str, path: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    format!(
        "{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        path,
        timestamp,
        hex::encode(Sha256::digest(body))
    )
    .into_bytes()
}

/// A signed REST request as the daemon received it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request target as sent (path and query).
    pub path: &'a str,
    /// The `X-Auth-Timestamp` header, verbatim.
    pub timestamp: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
    /// The `X-Auth-Signature` header, decoded (`VerifiedRequest::signature`).
    pub signature: [u8; 64],
    /// The audience it was signed for (the server's, which verified it).
    pub audience: &'a str,
}

fn parse_body(body: &str) -> Result<TransferRequest, LedgerError> {
    serde_json::from_str(body).map_err(|e| LedgerError::MalformedRequest {
        reason: format!("body: {e}"),
    })
}

fn parse_timestamp(ts: &str) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::parse_from_rfc3339(ts)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| LedgerError::MalformedRequest {
            reason: format!("timestamp {ts:?}: {e}"),
        })
}

/// When a transfer proven by a request signed at `signed_at` expires.
fn request_expiry(signed_at: DateTime<Utc>) -> Result<DateTime<Utc>, LedgerError> {
    signed_at
        .checked_add_signed(Duration::seconds(REQUEST_PROOF_TTL_SECONDS))
        .ok_or_else(|| LedgerError::MalformedRequest {
            reason: format!("timestamp {signed_at} is out of range"),
        })
}

impl SignedTransfer {
    /// The transfer a signed `POST /api/v1/credits/transfer` asks for, with
    /// the request kept as its proof. `payer` is the request's verified key;
    /// the transfer expires [`REQUEST_PROOF_TTL_SECONDS`] after the request's
    /// timestamp. Only parsing happens here: [`crate::ledger::Ledger::apply`]
    /// checks the signature, the ledger, the nonce and the limit.
    pub fn from_request(
        ledger_id: &str,
        payer: PublicKey,
        req: SignedRequest<'_>,
    ) -> Result<SignedTransfer, LedgerError> {
        let body = std::str::from_utf8(req.body).map_err(|e| LedgerError::MalformedRequest {
            reason: format!("body is not UTF-8: {e}"),
        })?;
        let parsed = parse_body(body)?;
        let expires_at = request_expiry(parse_timestamp(req.timestamp)?)?;
        Ok(SignedTransfer {
            transfer: Transfer {
                ledger: parsed.ledger.unwrap_or_else(|| ledger_id.to_owned()),
                payer,
                payee: parsed.to,
                amount: parsed.amount,
                nonce: parsed.nonce,
                reference: parsed.reference,
                expires_at,
            },
            proof: Proof::Request {
                method: req.method.to_owned(),
                path: req.path.to_owned(),
                timestamp: req.timestamp.to_owned(),
                body: body.to_owned(),
                signature: SignatureBytes(req.signature),
                audience: Some(req.audience.to_owned()),
            },
        })
    }

    /// Checks the fields that need no ledger state, then the proof.
    pub(crate) fn check(&self, ledger_id: &str) -> Result<(), LedgerError> {
        let t = &self.transfer;
        if t.ledger != ledger_id {
            return Err(LedgerError::WrongLedger {
                expected: ledger_id.to_owned(),
                got: t.ledger.clone(),
            });
        }
        if t.amount <= 0 {
            return Err(LedgerError::ZeroOrNegativeAmount { amount: t.amount });
        }
        if t.payer == t.payee {
            return Err(LedgerError::SelfTransfer);
        }
        check_text("reference", &t.reference, 0)?;
        self.verify_proof()
    }

    fn verify_proof(&self) -> Result<(), LedgerError> {
        let t = &self.transfer;
        let (message, signature) = match &self.proof {
            Proof::Ed25519 { signature } => (t.signing_bytes(), signature),
            Proof::Request {
                method,
                path,
                timestamp,
                body,
                signature,
                audience,
            } => {
                self.request_matches(method, path, timestamp, body)?;
                let message = match audience {
                    Some(audience) => signing_message(
                        &Payload::new(method, path, body.as_bytes(), audience),
                        timestamp,
                    ),
                    None => v1_signing_message(method, path, timestamp, body.as_bytes()),
                };
                (message, signature)
            }
        };
        verify(&t.payer, &message, signature)
    }

    /// A request proof must be a `POST` to the transfer route whose body and
    /// timestamp give exactly this transfer.
    fn request_matches(
        &self,
        method: &str,
        path: &str,
        timestamp: &str,
        body: &str,
    ) -> Result<(), LedgerError> {
        let t = &self.transfer;
        let mismatch = |field| Err(LedgerError::ProofMismatch { field });
        if !method.eq_ignore_ascii_case("POST") {
            return mismatch("method");
        }
        if path != TRANSFER_PATH {
            return mismatch("path");
        }
        let req = parse_body(body)?;
        if req.to != t.payee {
            return mismatch("to");
        }
        if req.amount != t.amount {
            return mismatch("amount");
        }
        if req.nonce != t.nonce {
            return mismatch("nonce");
        }
        if req.reference != t.reference {
            return mismatch("reference");
        }
        if req.ledger.as_ref().is_some_and(|l| *l != t.ledger) {
            return mismatch("ledger");
        }
        if request_expiry(parse_timestamp(timestamp)?)? != t.expires_at {
            return mismatch("expires_at");
        }
        Ok(())
    }
}

/// Checks an Ed25519 signature strictly (weak keys and non-canonical
/// signatures refused).
pub(crate) fn verify(
    signer: &PublicKey,
    message: &[u8],
    signature: &SignatureBytes,
) -> Result<(), LedgerError> {
    let bad = || LedgerError::BadSignature { signer: *signer };
    let key = VerifyingKey::from_bytes(signer.as_bytes()).map_err(|_| bad())?;
    key.verify_strict(message, &Signature::from_bytes(&signature.0))
        .map_err(|_| bad())
}

/// Checks a text field's length: `min` to [`MAX_TEXT_BYTES`] bytes.
pub(crate) fn check_text(field: &'static str, s: &str, min: usize) -> Result<(), LedgerError> {
    if s.len() < min || s.len() > MAX_TEXT_BYTES {
        return Err(LedgerError::BadText {
            field,
            len: s.len(),
            min,
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}
