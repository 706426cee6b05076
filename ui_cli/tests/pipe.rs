//! `ui … | head`: a reader that goes away ends `ui` quietly, with the status
//! of a process killed by SIGPIPE, instead of a panic.

use std::io::Read;
use std::process::{Command, Stdio};

#[test]
fn a_closed_stdout_ends_ui_quietly() {
    // The bash completions are larger than a pipe's buffer (64 KiB), so `ui`
    // is still writing when the reader closes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ui"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ui");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("the first bytes");
    drop(stdout);
    let out = child.wait_with_output().expect("waiting for ui");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}
