//! Transfers whose proof is the signed REST request.

use super::*;

fn request(payer: &SigningKey, body: &str, path: &str) -> (Entry, SignedTransfer) {
    let ts = timestamp(t0());
    let sig = payer
        .sign(&signing_message(
            &Payload::new("POST", path, body.as_bytes(), ID),
            &ts,
        ))
        .to_bytes();
    let st = SignedTransfer::from_request(
        ID,
        pk(payer),
        SignedRequest {
            method: "POST",
            path,
            timestamp: &ts,
            body: body.as_bytes(),
            signature: sig,
            audience: ID,
        },
    )
    .unwrap();
    (Entry::Transfer(st.clone()), st)
}

#[test]
fn a_signed_rest_request_is_the_transfer_proof() {
    let (mut l, a, b) = funded();
    let body = format!(r#"{{"to":"{}","amount":250,"nonce":2}}"#, pk(&b));
    let (e, st) = request(&a, &body, TRANSFER_PATH);
    assert_eq!(st.transfer.amount, 250);
    assert_eq!(
        st.transfer.expires_at,
        t0() + Duration::seconds(REQUEST_PROOF_TTL_SECONDS)
    );
    assert_eq!(
        st.proof.body_sha256_hex().unwrap().len(),
        64,
        "the proof keeps the body"
    );
    let applied = l.apply(&e, t0()).unwrap();
    assert_eq!(applied.record.entry, e);
    assert_eq!(l.balance(&acct(&b)), 350);
    refused(
        &mut l,
        &e,
        t0(),
        LedgerError::NonceNotIncreasing { last: 2, got: 2 },
    );
    let late = t0() + Duration::seconds(REQUEST_PROOF_TTL_SECONDS + 1);
    let body = format!(r#"{{"to":"{}","amount":1,"nonce":3}}"#, pk(&b));
    let (e, st) = request(&a, &body, TRANSFER_PATH);
    let want = LedgerError::Expired {
        expires_at: st.transfer.expires_at,
        now: late,
    };
    refused(&mut l, &e, late, want);
}

#[test]
fn a_request_proof_must_describe_this_transfer() {
    let (mut l, a, b) = funded();
    let body = format!(r#"{{"to":"{}","amount":10,"nonce":2}}"#, pk(&b));
    let (_, st) = request(&a, &body, "/api/v1/credits/transfer?x=1");
    let path = LedgerError::ProofMismatch { field: "path" };
    refused(&mut l, &Entry::Transfer(st), t0(), path);
    let (_, mut st) = request(&a, &body, TRANSFER_PATH);
    st.transfer.amount = 11;
    let amount = LedgerError::ProofMismatch { field: "amount" };
    refused(&mut l, &Entry::Transfer(st), t0(), amount);
    let (_, mut st) = request(&a, &body, TRANSFER_PATH);
    if let Proof::Request { method, .. } = &mut st.proof {
        *method = "PUT".into();
    }
    let method = LedgerError::ProofMismatch { field: "method" };
    refused(&mut l, &Entry::Transfer(st), t0(), method);
    let (_, mut st) = request(&a, &body, TRANSFER_PATH);
    let other = format!(r#"{{"to":"{}","amount":10,"nonce":2}}"#, pk(&b));
    if let Proof::Request { body, .. } = &mut st.proof {
        *body = format!("{other} ");
    }
    let sig = LedgerError::BadSignature { signer: pk(&a) };
    refused(&mut l, &Entry::Transfer(st), t0(), sig);
    let (_, mut st) = request(&a, &body, TRANSFER_PATH);
    st.transfer.payer = pk(&key(9));
    let forged = LedgerError::BadSignature {
        signer: pk(&key(9)),
    };
    refused(&mut l, &Entry::Transfer(st), t0(), forged);
    let foreign = format!(
        r#"{{"to":"{}","amount":10,"nonce":2,"ledger":"cluster-b"}}"#,
        pk(&b)
    );
    let (e, _) = request(&a, &foreign, TRANSFER_PATH);
    let wrong = LedgerError::WrongLedger {
        expected: ID.into(),
        got: "cluster-b".into(),
    };
    refused(&mut l, &e, t0(), wrong);
}

#[test]
fn malformed_request_bodies_say_what_is_wrong() {
    let a = key(1);
    let mk = |body: &[u8], ts: &str| {
        SignedTransfer::from_request(
            ID,
            pk(&a),
            SignedRequest {
                method: "POST",
                path: TRANSFER_PATH,
                timestamp: ts,
                body,
                signature: [0; 64],
                audience: ID,
            },
        )
    };
    let ts = "2026-11-22T10:00:00Z";
    for body in [&b"{}"[..], b"\xff", br#"{"to":"zz","amount":1,"nonce":1}"#] {
        let e = mk(body, ts).unwrap_err();
        assert_eq!(e.code(), "malformed_request", "{e}");
    }
    let extra = format!(r#"{{"to":"{}","amount":1,"nonce":1,"fee":0}}"#, pk(&key(2)));
    assert!(mk(extra.as_bytes(), ts).is_err());
    let ok = format!(r#"{{"to":"{}","amount":1,"nonce":1}}"#, pk(&key(2)));
    let e = mk(ok.as_bytes(), "yesterday").unwrap_err();
    assert!(e.to_string().contains("timestamp"), "{e}");
}

#[test]
fn a_request_proof_is_bound_to_its_audience_and_v1_proofs_still_verify() {
    let (mut l, a, b) = funded();
    let body = format!(r#"{{"to":"{}","amount":10,"nonce":2}}"#, pk(&b));
    let (_, mut st) = request(&a, &body, TRANSFER_PATH);
    if let Proof::Request { audience, .. } = &mut st.proof {
        *audience = Some("cluster-b".into());
    }
    let sig = LedgerError::BadSignature { signer: pk(&a) };
    refused(&mut l, &Entry::Transfer(st), t0(), sig);
    // A proof recorded under scheme v1 (no audience) is checked as v1.
    let ts = timestamp(t0());
    let v1 = format!(
        "POST\n{TRANSFER_PATH}\n{ts}\n{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()))
    );
    let (_, mut st) = request(&a, &body, TRANSFER_PATH);
    if let Proof::Request {
        audience,
        signature,
        ..
    } = &mut st.proof
    {
        *audience = None;
        *signature = canonical::SignatureBytes(a.sign(v1.as_bytes()).to_bytes());
    }
    assert!(!st.proof.canonical_json().contains("audience"));
    l.apply(&Entry::Transfer(st), t0()).unwrap();
    assert_eq!(l.balance(&acct(&b)), 110);
}
