//! A lease kept alive by a task, and the moment its holder must stop acting
//! (the timing argument is in [`super::election`]).
//!
//! The task sends a keepalive every [`period`] on one keepalive stream. etcd
//! answers each request on the stream, in order, so the answer at the head
//! acknowledges the oldest request in flight; [`Renewals`] keeps their send
//! instants and moves the deadline to (send instant of the latest
//! acknowledged request) + TTL − [`margin`]. At the deadline, or at once when
//! an answer says the lease is gone (TTL 0), the task fires `lost`. A broken
//! stream is opened again (opening renews once more) while the deadline has
//! not passed; requests in flight on the broken stream are forgotten.
//!
//! When the holder stops (`lost` fired for any reason: resigned, dropped, the
//! store dropped, the leader key gone) the task revokes the lease, so that the
//! next candidate need not wait for it to expire.

use std::collections::VecDeque;
use std::time::Duration;

use etcd_client::Client;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, timeout_at, Instant, MissedTickBehavior};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::etcd_failed;
use crate::{Result, StoreError};

/// First pause before opening a broken keepalive stream again; doubled up to
/// a quarter of the TTL.
const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// How often a keepalive is sent: a quarter of the TTL, so that three in a
/// row may be lost before the deadline.
pub(super) fn period(ttl: Duration) -> Duration {
    ttl / 4
}

/// How long before etcd could expire the lease its holder stops acting.
pub(super) fn margin(ttl: Duration) -> Duration {
    ttl / 4
}

/// When to stop acting after a renewal sent at `sent` and answered with
/// `ttl`; at once if that instant cannot be represented.
fn stop_at(sent: Instant, ttl: Duration) -> Instant {
    sent.checked_add(ttl - margin(ttl)).unwrap_or(sent)
}

/// The keepalives in flight and the deadline their answers have earned.
#[derive(Debug)]
pub(super) struct Renewals {
    /// Send instants of the requests not yet answered, oldest first.
    in_flight: VecDeque<Instant>,
    deadline: Instant,
}

impl Renewals {
    /// After a grant (or renewal) sent at `sent` and answered with `ttl`.
    pub(super) fn new(sent: Instant, ttl: Duration) -> Self {
        Self {
            in_flight: VecDeque::new(),
            deadline: stop_at(sent, ttl),
        }
    }

    /// When the holder must stop acting unless a newer request is answered.
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// A request was sent at `at`.
    pub(super) fn sent(&mut self, at: Instant) {
        self.in_flight.push_back(at);
    }

    /// The oldest request in flight was answered: etcd renewed the lease to
    /// `ttl` after receiving it, hence after it was sent.
    pub(super) fn answered(&mut self, ttl: Duration) {
        if let Some(sent) = self.in_flight.pop_front() {
            self.acknowledged(sent, ttl);
        }
    }

    /// A renewal sent at `sent` was acknowledged with `ttl`.
    pub(super) fn acknowledged(&mut self, sent: Instant, ttl: Duration) {
        self.deadline = self.deadline.max(stop_at(sent, ttl));
    }

    /// The stream broke: no answer will come to the requests in flight.
    pub(super) fn forget_in_flight(&mut self) {
        self.in_flight.clear();
    }
}

/// A granted lease and the task keeping it alive. Dropping it stops the task,
/// which fires `lost` and revokes the lease.
#[derive(Debug)]
pub(super) struct Lease {
    pub(super) id: i64,
    /// The TTL etcd granted.
    pub(super) ttl: Duration,
    /// Fires when the holder may no longer act; firing it stops the task.
    pub(super) lost: CancellationToken,
    task: Option<JoinHandle<()>>,
    _stop: DropGuard,
}

impl Lease {
    /// Grants a lease of `ttl` (rounded up to whole seconds; etcd may grant
    /// more) and starts keeping it alive until `parent` or the lease's own
    /// `lost` fires.
    pub(super) async fn grant(
        client: &Client,
        ttl: Duration,
        parent: &CancellationToken,
    ) -> Result<Self> {
        let asked = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let asked = i64::try_from(asked.max(1)).unwrap_or(i64::MAX);
        let sent = Instant::now();
        let resp = client
            .lease_client()
            .grant(asked, None)
            .await
            .map_err(etcd_failed(&format!("granting a lease of {asked} s")))?;
        let granted = u64::try_from(resp.ttl()).unwrap_or(0);
        if !resp.error().is_empty() || granted == 0 {
            return Err(StoreError::Etcd(format!(
                "granting a lease of {asked} s: etcd answered TTL {} ({})",
                resp.ttl(),
                resp.error()
            )));
        }
        let ttl = Duration::from_secs(granted);
        let stop = parent.child_token();
        let lost = stop.child_token();
        let keeper = Keeper {
            client: client.clone(),
            id: resp.id(),
            ttl,
            renewals: Renewals::new(sent, ttl),
            lost: lost.clone(),
        };
        tracing::debug!(lease = resp.id(), asked, granted, "etcd lease granted");
        Ok(Self {
            id: resp.id(),
            ttl,
            lost,
            task: Some(tokio::spawn(keeper.run())),
            _stop: stop.drop_guard(),
        })
    }

    /// Fires `lost` and waits (at most a TTL) until the lease is revoked.
    pub(super) async fn stop(mut self) {
        self.lost.cancel();
        if let Some(task) = self.task.take() {
            match timeout(self.ttl, task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(lease = self.id, error = %e, "lease task failed"),
                Err(_) => tracing::warn!(lease = self.id, "lease not revoked within its TTL"),
            }
        }
    }
}

/// Why keeping the lease alive ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// `lost` was fired by the holder (or its store was dropped).
    Stopped,
    /// etcd says the lease does not exist any more.
    Gone,
    /// No renewal was acknowledged in time: the deadline passed.
    Lapsed,
}

struct Keeper {
    client: Client,
    id: i64,
    ttl: Duration,
    renewals: Renewals,
    lost: CancellationToken,
}

impl Keeper {
    async fn run(mut self) {
        let end = self.keep_alive().await;
        self.lost.cancel();
        match end {
            End::Stopped => tracing::debug!(lease = self.id, "lease released"),
            End::Gone => tracing::warn!(lease = self.id, "etcd says the lease is gone"),
            End::Lapsed => tracing::warn!(
                lease = self.id,
                ttl_ms = self.ttl.as_millis(),
                "no lease renewal acknowledged in time; stopped acting before etcd can expire it"
            ),
        }
        if end == End::Gone {
            return;
        }
        // Let the next candidate in now rather than at expiry.
        match timeout(self.ttl, self.client.lease_client().revoke(self.id)).await {
            Ok(Ok(_)) => tracing::debug!(lease = self.id, "lease revoked"),
            Ok(Err(e)) => tracing::debug!(lease = self.id, error = %e, "revoking the lease failed"),
            Err(_) => tracing::debug!(lease = self.id, "revoking the lease timed out"),
        }
    }

    async fn keep_alive(&mut self) -> End {
        let lost = self.lost.clone();
        let period = period(self.ttl);
        let mut backoff = MIN_BACKOFF;
        loop {
            self.renewals.forget_in_flight();
            let sent = Instant::now();
            let mut client = self.client.lease_client();
            let opened = tokio::select! {
                biased;
                () = lost.cancelled() => return End::Stopped,
                () = sleep_until(self.renewals.deadline()) => return End::Lapsed,
                opened = client.keep_alive(self.id) => opened,
            };
            let (mut keeper, mut stream) = match opened {
                Ok(pair) => pair,
                // Its first answer said TTL 0.
                Err(etcd_client::Error::LeaseKeepAliveError(reason))
                    if reason.contains("not found") =>
                {
                    return End::Gone
                }
                Err(e) => {
                    tracing::warn!(lease = self.id, error = %e, "opening the lease keepalive failed");
                    tokio::select! {
                        biased;
                        () = lost.cancelled() => return End::Stopped,
                        () = sleep_until(self.renewals.deadline()) => return End::Lapsed,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(period);
                    continue;
                }
            };
            // Opening renewed once (it fails unless the answer's TTL is
            // positive, and does not tell it: the granted one).
            self.renewals.acknowledged(sent, self.ttl);
            backoff = MIN_BACKOFF;
            let mut tick = tokio::time::interval_at(Instant::now() + period, period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let deadline = self.renewals.deadline();
                tokio::select! {
                    biased;
                    () = lost.cancelled() => return End::Stopped,
                    () = sleep_until(deadline) => return End::Lapsed,
                    answer = stream.message() => match answer {
                        Ok(Some(resp)) if resp.ttl() <= 0 => return End::Gone,
                        Ok(Some(resp)) => {
                            let ttl = Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0));
                            self.renewals.answered(ttl);
                        }
                        Ok(None) => {
                            tracing::debug!(lease = self.id, "lease keepalive stream ended");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(lease = self.id, error = %e, "lease keepalive stream broke");
                            break;
                        }
                    },
                    _ = tick.tick() => {
                        let now = Instant::now();
                        match timeout_at(deadline, keeper.keep_alive()).await {
                            Ok(Ok(())) => self.renewals.sent(now),
                            Ok(Err(e)) => {
                                tracing::warn!(lease = self.id, error = %e, "sending a lease keepalive failed");
                                break;
                            }
                            Err(_) => return End::Lapsed,
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(2);

    #[test]
    fn the_deadline_is_the_last_acknowledged_send_plus_ttl_minus_the_margin() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut r = Renewals::new(t0, TTL);
        assert_eq!(r.deadline(), t0 + ms(1500), "the grant counts as a renewal");

        r.sent(t0 + ms(500));
        r.sent(t0 + ms(1000));
        assert_eq!(r.deadline(), t0 + ms(1500), "sending alone earns nothing");
        r.answered(TTL);
        assert_eq!(
            r.deadline(),
            t0 + ms(2000),
            "an answer acknowledges the oldest request in flight, from when it was sent"
        );
        r.answered(TTL);
        assert_eq!(r.deadline(), t0 + ms(2500));
        r.answered(TTL);
        assert_eq!(
            r.deadline(),
            t0 + ms(2500),
            "an answer to nothing is ignored"
        );

        r.sent(t0 + ms(1500));
        r.forget_in_flight();
        r.answered(TTL);
        assert_eq!(
            r.deadline(),
            t0 + ms(2500),
            "requests of a broken stream are never acknowledged"
        );

        r.acknowledged(t0 + ms(100), TTL);
        assert_eq!(r.deadline(), t0 + ms(2500), "a deadline never moves back");
        r.acknowledged(t0 + ms(3000), Duration::from_secs(4));
        assert_eq!(
            r.deadline(),
            t0 + ms(6000),
            "the TTL etcd answered is the one used"
        );
    }

    #[test]
    fn three_periods_fit_before_the_deadline() {
        for secs in [1, 2, 5, 60] {
            let ttl = Duration::from_secs(secs);
            assert!(period(ttl) * 3 <= ttl - margin(ttl), "ttl {secs} s");
            assert!(margin(ttl) > Duration::ZERO);
        }
    }
}
