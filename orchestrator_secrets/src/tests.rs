//! Sealing to nodes' keys and opening with them, and what a stranger, a
//! forger or a bomb gets.

use super::*;

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn public(k: &SigningKey) -> PublicKey {
    PublicKey(k.verifying_key().to_bytes())
}

#[test]
fn each_recipient_opens_what_was_sealed_to_it() {
    let (node_a, node_b, user) = (key(1), key(2), key(3));
    let sealed = seal(
        b"hunter2",
        &[public(&node_a), public(&node_b), public(&user)],
    )
    .unwrap();
    assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!sealed.contains("hunter2"));
    check_sealed(&sealed).unwrap();
    for k in [&node_a, &node_b, &user] {
        assert_eq!(
            &KeyIdentity::new(k).unwrap().open(&sealed).unwrap()[..],
            b"hunter2"
        );
    }
}

#[test]
fn a_node_outside_the_recipients_cannot_open_it() {
    let sealed = seal(b"hunter2", &[public(&key(1))]).unwrap();
    assert!(matches!(
        KeyIdentity::new(&key(9)).unwrap().open(&sealed),
        Err(SecretError::NotARecipient)
    ));
}

#[test]
fn an_altered_secret_is_refused() {
    let sealed = seal(b"hunter2", &[public(&key(1))]).unwrap();
    // Flip one base64 character of the body (the last line before the footer).
    let lines: Vec<&str> = sealed.lines().collect();
    let body = lines.len() - 2;
    let mut altered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let mut chars: Vec<char> = altered[body].chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    altered[body] = chars.into_iter().collect();
    let altered = altered.join("\n") + "\n";
    assert!(KeyIdentity::new(&key(1)).unwrap().open(&altered).is_err());
}

#[test]
fn what_is_not_a_sealed_secret_is_refused_before_any_work() {
    assert!(matches!(
        check_sealed("hunter2"),
        Err(SecretError::NotAge(_))
    ));
    let huge = "A".repeat(MAX_SEALED_BYTES + 1);
    assert!(matches!(
        check_sealed(&huge),
        Err(SecretError::SealedTooLarge)
    ));
    assert!(matches!(
        seal(&vec![0; MAX_SECRET_BYTES + 1], &[public(&key(1))]),
        Err(SecretError::TooLarge(_))
    ));
    assert!(matches!(seal(b"x", &[]), Err(SecretError::Recipients(0))));
}

#[test]
fn a_secret_sealed_to_a_passphrase_is_refused() {
    let recipient = age::scrypt::Recipient::new(age::secrecy::SecretString::from("pw".to_owned()));
    let encryptor =
        age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut w = encryptor.wrap_output(armor).unwrap();
    w.write_all(b"x").unwrap();
    w.finish().unwrap().finish().unwrap();
    let sealed = String::from_utf8(out).unwrap();
    assert!(check_sealed(&sealed)
        .unwrap_err()
        .to_string()
        .contains("passphrase"));
}
