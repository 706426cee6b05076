//! [`RefusalLog`]: a warn line for refused requests, at most one per period,
//! each saying how many refusals it stands for, so that a flood of unsigned
//! or forged requests costs the log one line a second.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rate-limited warnings about refused requests.
#[derive(Debug)]
pub struct RefusalLog {
    period: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last line was written.
    last: Option<Instant>,
    /// Refusals not logged since then.
    suppressed: u64,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl RefusalLog {
    /// At most one line per `period`.
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            state: Mutex::new(State::default()),
        }
    }

    /// Decides whether a refusal at `now` is logged: `Some(n)` when a line
    /// should be written now, `n` being how many earlier refusals were
    /// suppressed since the last line; `None` when it is suppressed.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match s.last {
            Some(last) if now.saturating_duration_since(last) < self.period => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }

    /// Logs a refusal of `method path` for `reason` (`message` for the
    /// operator), unless a line was written less than a period ago.
    pub fn warn(&self, reason: &str, method: &str, path: &str, message: &str) {
        if let Some(suppressed) = self.admit(Instant::now()) {
            tracing::warn!(
                reason,
                method,
                path,
                suppressed,
                "refused an unauthenticated request: {message} ({suppressed} more refused since the last such line)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_counting_the_suppressed() {
        let log = RefusalLog::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for i in 1..=999u64 {
            assert_eq!(log.admit(t0 + Duration::from_micros(i)), None);
        }
        assert_eq!(log.admit(t0 + Duration::from_millis(999)), None);
        assert_eq!(log.admit(t0 + Duration::from_secs(1)), Some(1000));
        assert_eq!(log.admit(t0 + Duration::from_millis(1500)), None);
        assert_eq!(log.admit(t0 + Duration::from_secs(3)), Some(1));
    }
}
