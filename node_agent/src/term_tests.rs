//! Tests of the term gate: the rule, the file, concurrent newer terms.

use super::*;
use std::os::unix::fs::PermissionsExt as _;

const A: NodeId = NodeId([0xaa; 32]);
const B: NodeId = NodeId([0xbb; 32]);

fn stale(r: Result<Admitted, TermError>) -> (Option<u64>, u64, NodeId, String) {
    match r {
        Err(
            e @ TermError::Stale {
                term,
                current,
                node,
            },
        ) => (term, current, node, e.to_string()),
        other => panic!("expected a stale term, got {other:?}"),
    }
}

#[test]
fn the_rule_no_term_then_newer_equal_older_and_absent() {
    let gate = TermGate::in_memory();
    assert_eq!(gate.admit(None, A).unwrap(), Admitted::Unfenced);
    assert_eq!(gate.current(), None, "a call without a term records none");

    assert_eq!(
        gate.admit(Some(7), A).unwrap(),
        Admitted::Advanced { previous: None }
    );
    assert_eq!(gate.current(), Some((7, A)));
    assert_eq!(gate.admit(Some(7), A).unwrap(), Admitted::Current);

    let (term, current, node, message) = stale(gate.admit(None, A));
    assert_eq!((term, current, node), (None, 7, A));
    assert!(
        message.contains("without a control-plane term"),
        "{message}"
    );

    assert_eq!(
        gate.admit(Some(9), B).unwrap(),
        Admitted::Advanced { previous: Some(7) }
    );
    assert_eq!(gate.current(), Some((9, B)), "the newer leader is followed");

    let (term, current, node, message) = stale(gate.admit(Some(7), A));
    assert_eq!((term, current, node), (Some(7), 9, B));
    assert_eq!(
        message,
        format!(
            "control-plane term 7 is over: term 9 (node {}…) is in force",
            B.short()
        )
    );
    assert_eq!(gate.current(), Some((9, B)), "a refusal changes nothing");
}

#[test]
fn the_term_is_written_before_it_is_in_force_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-term.json");
    let gate = TermGate::open(&path).unwrap();
    assert_eq!(gate.current(), None, "no file yet: no term");
    assert!(!path.exists(), "opening writes nothing");

    gate.admit(Some(12), A).unwrap();
    let on_disk: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        serde_json::json!({"term": 12, "node": A.to_string()})
    );
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["agent-term.json"], "no temporary file left");
    drop(gate);

    let reopened = TermGate::open(&path).unwrap();
    assert_eq!(reopened.current(), Some((12, A)));
    let (_, current, _, _) = stale(reopened.admit(Some(11), B));
    assert_eq!(current, 12);
    stale(reopened.admit(None, B));
    reopened.admit(Some(13), B).unwrap();
    assert_eq!(TermGate::open(&path).unwrap().current(), Some((13, B)));
}

#[test]
fn a_corrupt_term_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in ["", "{\"term\":\"seven\"}", "{\"term\":3}", "[1,2]"]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("term-{i}.json"));
        fs::write(&path, text).unwrap();
        match TermGate::open(&path) {
            Err(e @ TermError::Corrupt { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(&path.display().to_string()),
                    "{text:?}: {message}"
                );
            }
            other => panic!("{text:?}: expected a corrupt file, got {other:?}"),
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            text,
            "the file is left as it was"
        );
    }
    // A directory where the file should be: an error too, not a reset.
    let path = dir.path().join("a-dir");
    fs::create_dir(&path).unwrap();
    assert!(matches!(TermGate::open(&path), Err(TermError::Read { .. })));
}

#[test]
fn a_term_that_cannot_be_written_is_not_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let gate = TermGate::open(&dir.path().join("missing/agent-term.json")).unwrap();
    let err = gate.admit(Some(4), A).unwrap_err();
    assert!(matches!(err, TermError::Write { .. }), "{err:?}");
    assert_eq!(gate.current(), None, "not acknowledged, not recorded");
    assert_eq!(gate.admit(None, A).unwrap(), Admitted::Unfenced);
}

#[test]
fn of_newer_terms_at_once_the_highest_wins() {
    for round in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent-term.json");
        let gate = TermGate::open(&path).unwrap();
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for i in 0..8u64 {
                let (gate, barrier) = (&gate, &barrier);
                // The highest term starts in a different thread each round.
                let term = 100 + (i + round) % 8;
                s.spawn(move || {
                    barrier.wait();
                    let node = NodeId([u8::try_from(term).unwrap(); 32]);
                    // Lower terms may be admitted or refused, by their order.
                    drop(gate.admit(Some(term), node));
                });
            }
        });
        let top = NodeId([107; 32]);
        assert_eq!(gate.current(), Some((107, top)), "round {round}");
        assert_eq!(
            TermGate::open(&path).unwrap().current(),
            Some((107, top)),
            "round {round}: the file holds the highest too"
        );
    }
}

#[tokio::test]
async fn the_async_admission_writes_newer_terms_and_refuses_older_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-term.json");
    let gate = Arc::new(TermGate::open(&path).unwrap());
    assert_eq!(gate.admit_async(None, A).await.unwrap(), Admitted::Unfenced);
    assert_eq!(
        gate.admit_async(Some(3), A).await.unwrap(),
        Admitted::Advanced { previous: None }
    );
    assert_eq!(TermGate::open(&path).unwrap().current(), Some((3, A)));
    assert_eq!(
        gate.admit_async(Some(3), A).await.unwrap(),
        Admitted::Current
    );
    stale(gate.admit_async(Some(2), B).await);
    stale(gate.admit_async(None, B).await);
}
