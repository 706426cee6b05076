//! Tests of the gossip keyring.

use super::*;

fn ring(keys: &[&GossipKey]) -> Keyring {
    Keyring::new(&keys.iter().map(|k| (*k).clone()).collect::<Vec<_>>()).unwrap()
}

#[test]
fn a_sealed_packet_opens_under_its_key_and_cluster_only() {
    let k1 = GossipKey::generate();
    let k2 = GossipKey::generate();
    let a = ring(&[&k1]);
    let packet = a.seal("c1", b"hello gossip");
    assert_eq!(packet.len(), b"hello gossip".len() + SEAL_OVERHEAD);
    assert!(!packet.windows(5).any(|w| w == b"hello"));
    assert_eq!(a.open("c1", &packet).unwrap(), b"hello gossip");
    assert_eq!(a.open("c2", &packet), Err(DropReason::AuthFailed));
    assert_eq!(
        ring(&[&k2]).open("c1", &packet),
        Err(DropReason::UnknownKey)
    );
    // Two seals of the same message differ (random nonce).
    assert_ne!(a.seal("c1", b"x"), a.seal("c1", b"x"));
}

#[test]
fn every_flipped_byte_and_every_truncation_is_refused() {
    let a = ring(&[&GossipKey::generate()]);
    let packet = a.seal("c", b"some chitchat message");
    for i in 0..packet.len() {
        let mut bad = packet.clone();
        bad[i] ^= 0x01;
        assert!(a.open("c", &bad).is_err(), "flipped byte {i} opened");
    }
    for len in 0..packet.len() {
        assert!(a.open("c", &packet[..len]).is_err(), "prefix {len} opened");
    }
    assert_eq!(a.open("c", &packet[..10]), Err(DropReason::Truncated));
    let mut v2 = packet.clone();
    v2[0] = 2;
    assert_eq!(a.open("c", &v2), Err(DropReason::BadVersion));
    assert_eq!(
        a.open("c", &[0x53, 0xb0, 0, 3]),
        Err(DropReason::Unsealed),
        "a plain chitchat packet"
    );
}

#[test]
fn rotation_installs_switches_primary_and_removes() {
    let old = GossipKey::generate();
    let new = GossipKey::generate();
    let a = ring(&[&old]);
    let b = ring(&[&old]);
    let before = a.seal("c", b"m");
    a.install(&new).unwrap();
    b.install(&new).unwrap();
    assert_eq!(a.primary(), old.id());
    a.set_primary(new.id()).unwrap();
    let during = a.seal("c", b"m");
    assert_eq!(b.open("c", &during).unwrap(), b"m", "b opens the new key");
    assert_eq!(
        a.remove(new.id()),
        Err(KeyringError::RemovingPrimary(new.id()))
    );
    a.remove(old.id()).unwrap();
    assert_eq!(a.open("c", &before), Err(DropReason::UnknownKey));
    assert_eq!(a.key_ids(), vec![new.id()]);
    let unknown = GossipKey::generate().id();
    assert_eq!(
        a.set_primary(unknown),
        Err(KeyringError::UnknownKey(unknown))
    );
}

#[test]
fn replace_reports_the_change_and_refuses_an_empty_ring() {
    let k1 = GossipKey::generate();
    let k2 = GossipKey::generate();
    let a = ring(&[&k1]);
    let change = a.replace(&[k2.clone(), k1.clone()]).unwrap();
    assert_eq!(change.added, vec![k2.id()]);
    assert!(change.removed.is_empty());
    assert_eq!(change.new_primary, Some(k2.id()));
    assert_eq!(a.replace(&[]), Err(KeyringError::Empty));
    assert_eq!(a.key_ids(), vec![k2.id(), k1.id()], "unchanged on error");
    let change = a.replace(std::slice::from_ref(&k2)).unwrap();
    assert_eq!(change.removed, vec![k1.id()]);
    assert!(a.replace(std::slice::from_ref(&k2)).unwrap().is_empty());
}

#[test]
fn key_files_parse_and_bad_keys_are_refused_without_quoting_them() {
    let k1 = GossipKey::generate();
    let k2 = GossipKey::generate();
    let text = format!(
        "# gossip keys\n{}\n\n  {}  \n",
        *k1.to_base64(),
        *k2.to_base64()
    );
    let keys = parse_key_file(&text).unwrap();
    assert_eq!(
        keys.iter().map(GossipKey::id).collect::<Vec<_>>(),
        [k1.id(), k2.id()]
    );
    assert_eq!(
        parse_key_file("# none\n\n").unwrap_err(),
        KeyringError::Empty
    );
    let err = parse_key_file("not-base64-secret!!\n").unwrap_err();
    assert_eq!(err, KeyringError::NotBase64 { line: 1 });
    assert!(!err.to_string().contains("secret"));
    let short = STANDARD.encode([7u8; 16]);
    assert_eq!(
        parse_key_file(&format!("{}\n{short}\n", *k1.to_base64())).unwrap_err(),
        KeyringError::BadLength { line: 2, len: 16 }
    );
}

#[test]
fn debug_shows_key_ids_and_no_key_material() {
    let raw = [0xabu8; KEY_LEN];
    let key = GossipKey::from_bytes(raw);
    let ring = Keyring::new(std::slice::from_ref(&key)).unwrap();
    let b64 = key.to_base64();
    for text in [
        format!("{key:?}"),
        format!("{ring:?}"),
        format!("{ring:#?}"),
    ] {
        assert!(text.contains(&key.id().to_string()), "{text}");
        assert!(!text.contains(b64.as_str()), "{text}");
        assert!(!text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.contains("171"), "{text}");
    }
}
