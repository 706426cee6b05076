//! Confirmation of a death before it is believed. Phi-accrual declares a
//! node dead when its heartbeats stop arriving, which is fast but can be
//! fooled by a lossy link or a starved CPU. Before a node that chitchat calls
//! dead is shown `Down`, this node tries a TCP connection to the node's API
//! address (the kernel completes it even when the daemon is busy):
//!
//! - the connection is refused: nothing listens there any more — the daemon
//!   is gone, and the node is `Down` at once;
//! - it succeeds: the node is alive, whatever the heartbeats say, and is
//!   probed again [`RECHECK`] later while chitchat still calls it dead;
//! - it times out or fails otherwise: after [`FAILURES_TO_CONFIRM`] such
//!   probes in a row, the node is `Down` (an unreachable host, a partition).
//!
//! A node whose record names no address it can be probed at is `Down` as soon
//! as chitchat says so.

use std::time::Duration;

use tokio::net::TcpStream;

/// How long one probe waits for the connection.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// Failed (not refused) probes in a row that confirm a death.
pub(crate) const FAILURES_TO_CONFIRM: u32 = 2;
/// How long a node that answered waits before it is probed again.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// What one probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The connection was accepted.
    Alive,
    /// The connection was refused: nothing listens.
    Refused,
    /// No answer in time, or another failure.
    NoAnswer,
}

/// Tries one TCP connection to `address` (`host:port`).
pub(crate) async fn probe(address: &str) -> Outcome {
    match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(_)) => Outcome::Alive,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Outcome::Refused,
        Ok(Err(_)) | Err(_) => Outcome::NoAnswer,
    }
}

/// Where a node chitchat calls dead stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Suspicion {
    /// Failed probes in a row.
    pub failures: u32,
    /// The death is confirmed.
    pub confirmed: bool,
    /// A probe is in flight.
    pub probing: bool,
    /// When the next probe is due (none while one is in flight).
    pub next_probe: Option<tokio::time::Instant>,
}

impl Suspicion {
    /// Takes in what a probe found.
    pub(crate) fn record(&mut self, outcome: Outcome, now: tokio::time::Instant) {
        self.probing = false;
        match outcome {
            Outcome::Alive => {
                self.failures = 0;
                self.next_probe = Some(now + RECHECK);
            }
            Outcome::Refused => self.confirmed = true,
            Outcome::NoAnswer => {
                self.failures += 1;
                self.confirmed = self.failures >= FAILURES_TO_CONFIRM;
                self.next_probe = Some(now);
            }
        }
    }

    /// Whether a probe should start now.
    pub(crate) fn due(&self, now: tokio::time::Instant) -> bool {
        !self.confirmed && !self.probing && self.next_probe.is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_confirms_at_once_and_silence_after_two_probes() {
        let now = tokio::time::Instant::now();
        let mut s = Suspicion::default();
        assert!(s.due(now));
        s.record(Outcome::Refused, now);
        assert!(s.confirmed && !s.due(now));

        let mut s = Suspicion::default();
        s.record(Outcome::NoAnswer, now);
        assert!(!s.confirmed && s.due(now));
        s.record(Outcome::Alive, now);
        assert_eq!(s.failures, 0, "an answer resets the count");
        assert!(!s.due(now) && s.due(now + RECHECK));
        s.record(Outcome::NoAnswer, now);
        s.record(Outcome::NoAnswer, now);
        assert!(s.confirmed);
    }

    #[tokio::test]
    async fn probes_tell_alive_from_refused_from_unusable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        assert_eq!(probe(&addr).await, Outcome::Alive);
        drop(listener);
        assert_eq!(probe(&addr).await, Outcome::Refused);
        assert_eq!(probe("no port").await, Outcome::NoAnswer);
    }
}
