//! Leader election among the control planes sharing one prefix, with etcd's
//! election API, and the [`Leadership`] a winner holds.
//!
//! [`EtcdStore::campaign`] grants a lease, keeps it alive ((`etcd::lease`))
//! and campaigns in the election named `{prefix}/election/leader`: etcd puts
//! one key per candidate under that name, attached to the candidate's lease,
//! and the candidate whose key is oldest leads. The campaign returns once
//! this candidate leads; dropping it before then revokes the lease, so no
//! ghost candidacy stays behind (etcd also deletes the key of a cancelled
//! campaign). [`EtcdStore::leader`] reads the leader's value and
//! [`EtcdStore::observe_leader`] follows it (`etcd::observe`).
//!
//! # When a leader must stop acting
//!
//! etcd expires a lease TTL after the last renewal it *received* (its
//! leader's clock), and a renewal is received after it was sent. So when a
//! keepalive sent at `t` is answered with TTL `T`, etcd cannot expire the
//! lease before `t + T`, however long the answer took and whatever became of
//! the keepalives after it. [`Leadership::lost`] fires at `t + T − T/4` for
//! the latest answered `t` (the grant request counts as the first), so a
//! leader whose renewals stop reaching etcd — partitioned, or etcd slow —
//! stops acting at least `T/4` before anyone else can win. The margin covers
//! the drift between the two monotonic clocks over one TTL and the time the
//! holder needs to notice. Nothing here assumes synchronised clocks. A change
//! of etcd leader only extends leases (the new leader renews them all), and
//! etcd looks for expired leases every 500 ms, so a successor wins between
//! `t + T` and about `t + T + 0.5 s`. `lost` also fires at once when a
//! keepalive answer says the lease is gone (TTL 0), when the leader key is
//! seen deleted or replaced (a watch from its create revision, so a delete
//! before the watch started is seen too), on [`Leadership::resign`], and
//! when the leadership or its store is dropped.
//!
//! `lost` is a signal to the process, and a process can be paused (SIGSTOP,
//! a long GC-like stall, a suspended VM) between checking it and writing.
//! That is what the fence is for: every write of a fenced store
//! ([`EtcdStore::set_fence`]) compares the leader key's create revision in
//! the same transaction, so a deposed leader's late writes fail whatever its
//! clock believed (`etcd::fence`).
//!
//! # TTLs
//!
//! etcd refuses to grant less than its minimum TTL, `ceil(1.5 × election
//! timeout)`, and grants that instead: with the defaults scripts/test-etcd
//! uses (heartbeat 100 ms, election timeout 1000 ms), a request for 1 s is
//! granted **2 s** (measured by the `etcd_grants_its_minimum_ttl` test). The
//! TTL used is always the one etcd answered ([`Leadership::ttl`]): with it,
//! keepalives go every 500 ms, `lost` fires 1.5 s after the last answered
//! keepalive was sent, and a dead leader is replaced 2 to 2.5 s after its
//! last renewal.

use std::time::Duration;

use etcd_client::{Client, EventType, LeaderKey, ResignOptions, WatchOptions};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fence::Fence;
use super::lease::Lease;
use super::{etcd_failed, EtcdStore};
use crate::{Result, StoreError};

/// What etcd answers `leader` with when nobody leads.
const NO_LEADER: &str = "election: no leader";

/// First pause before campaigning or watching again; doubled up to
/// [`MAX_BACKOFF`].
pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(50);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// This control plane leads, while [`Leadership::lost`] has not fired.
///
/// Dropping it stops renewing the lease and revokes it in the background;
/// [`Leadership::resign`] hands over at once and waits for it.
pub struct Leadership {
    client: Client,
    leader: LeaderKey,
    lease: Lease,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("key", &String::from_utf8_lossy(self.leader.key()))
            .field("revision", &self.leader.rev())
            .field("lease", &self.lease.id)
            .field("ttl", &self.lease.ttl)
            .field("lost", &self.lease.lost.is_cancelled())
            .finish()
    }
}

impl Leadership {
    /// The fence of this leadership, for [`EtcdStore::set_fence`]: the
    /// leader key and its create revision.
    pub fn fence(&self) -> Fence {
        Fence {
            key: self.leader.key().to_vec(),
            revision: self.leader.rev(),
        }
    }

    /// Fires when this control plane may no longer act as leader (see the
    /// module doc for when). Once fired it stays fired: campaign again.
    pub fn lost(&self) -> CancellationToken {
        self.lease.lost.clone()
    }

    /// The lease TTL etcd granted (it may be longer than asked).
    pub fn ttl(&self) -> Duration {
        self.lease.ttl
    }

    /// The id of the lease the leader key is attached to.
    pub fn lease_id(&self) -> i64 {
        self.lease.id
    }

    /// Stops acting (fires `lost`), deletes the leader key so the next
    /// candidate leads at once, and revokes the lease. Failures are logged:
    /// the lease expires anyway.
    pub async fn resign(self) {
        let Self {
            client,
            leader,
            lease,
        } = self;
        lease.lost.cancel();
        let resign = ResignOptions::new().with_leader(leader.clone());
        if let Err(e) = client.election_client().resign(Some(resign)).await {
            tracing::warn!(
                key = %String::from_utf8_lossy(leader.key()),
                error = %e,
                "resigning in etcd failed; revoking the lease instead"
            );
        }
        lease.stop().await;
    }
}

impl EtcdStore {
    /// Campaigns with `value` (what [`EtcdStore::leader`] tells others, e.g.
    /// this control plane's address) on a lease of `ttl`, and returns once
    /// this control plane leads. etcd may grant a longer TTL than `ttl`
    /// ([`Leadership::ttl`]). Cancel-safe: dropping the future revokes the
    /// lease, taking the candidacy with it. Fails with
    /// [`StoreError::LeaseLost`] if the lease cannot be kept alive meanwhile
    /// (or the store is dropped). Needs no `initialize`.
    pub async fn campaign(&self, value: Vec<u8>, ttl: Duration) -> Result<Leadership> {
        let name = self.keys.election();
        let lease = Lease::grant(&self.client, ttl, &self.cancel).await?;
        let lost = lease.lost.clone();
        let mut backoff = MIN_BACKOFF;
        let leader = loop {
            let started = Instant::now();
            // Never cut by a request timeout (see `campaigner`).
            let mut election = self.campaigner.election_client();
            let attempt = tokio::select! {
                biased;
                () = lost.cancelled() => {
                    return Err(StoreError::LeaseLost { election: name, lease: lease.id });
                }
                attempt = election.campaign(name.as_str(), value.as_slice(), lease.id) => attempt,
            };
            match attempt {
                Ok(mut resp) => match resp.take_leader() {
                    Some(leader) => break leader,
                    None => {
                        return Err(StoreError::Etcd(format!(
                            "campaigning in election {name}: etcd answered without a leader key"
                        )))
                    }
                },
                // A campaign waits as long as another leads; the request's
                // timeout ends it. Campaigning again with the same lease
                // takes up the same candidacy if etcd kept it.
                Err(e) if started.elapsed() >= MAX_BACKOFF => {
                    tracing::debug!(election = name, error = %e, "campaign interrupted; campaigning again");
                    backoff = MIN_BACKOFF;
                }
                Err(e) => {
                    tracing::warn!(election = name, error = %e, "campaign failed; campaigning again");
                    tokio::select! {
                        () = lost.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        let leadership = Leadership {
            client: self.client.clone(),
            leader,
            lease,
        };
        let fence = leadership.fence();
        tracing::info!(
            election = name,
            key = %String::from_utf8_lossy(&fence.key),
            revision = fence.revision,
            ttl_s = leadership.ttl().as_secs(),
            "leading"
        );
        tokio::spawn(watch_leader_key(self.client.clone(), fence, lost));
        Ok(leadership)
    }

    /// The value of the current leader, `None` if nobody leads. Needs no
    /// `initialize`.
    pub async fn leader(&self) -> Result<Option<Vec<u8>>> {
        leader_value(&self.client, &self.keys.election()).await
    }
}

/// The value of the leader of election `name`, `None` if nobody leads.
pub(super) async fn leader_value(client: &Client, name: &str) -> Result<Option<Vec<u8>>> {
    match client.election_client().leader(name).await {
        Ok(resp) => Ok(resp.kv().map(|kv| kv.value().to_vec())),
        Err(etcd_client::Error::GRpcStatus(status)) if status.message().contains(NO_LEADER) => {
            Ok(None)
        }
        Err(e) => Err(etcd_failed(&format!(
            "reading the leader of election {name}"
        ))(e)),
    }
}

/// Why one watch of the leader key ended.
enum KeyWatch {
    /// The key was deleted or replaced: the leadership is over.
    Gone(&'static str),
    /// The revisions to watch from were compacted.
    Compacted,
    /// The watch broke.
    Broken(String),
}

/// Fires `lost` when the leader key of `fence` is deleted or replaced;
/// ends when `lost` fires.
async fn watch_leader_key(client: Client, fence: Fence, lost: CancellationToken) {
    let key = String::from_utf8_lossy(&fence.key).into_owned();
    // From the key's creation: a delete before the watch started is seen.
    let mut next = fence.revision;
    let mut backoff = MIN_BACKOFF;
    loop {
        let ended = tokio::select! {
            () = lost.cancelled() => return,
            ended = follow_key(&client, &fence, &mut next) => ended,
        };
        match ended {
            KeyWatch::Gone(why) => {
                tracing::warn!(key, why, "the leader key is gone; leadership lost");
                lost.cancel();
                return;
            }
            KeyWatch::Compacted => {
                let mut kv = client.kv_client();
                let read = tokio::select! {
                    () = lost.cancelled() => return,
                    read = kv.get(fence.key.clone(), None) => read,
                };
                match read {
                    Ok(resp) => {
                        let holds = resp
                            .kvs()
                            .first()
                            .is_some_and(|kv| kv.create_revision() == fence.revision);
                        if !holds {
                            tracing::warn!(key, "the leader key is gone; leadership lost");
                            lost.cancel();
                            return;
                        }
                        next = resp.header().map_or(next, |h| h.revision() + 1);
                        continue;
                    }
                    Err(e) => tracing::debug!(key, error = %e, "reading the leader key failed"),
                }
            }
            KeyWatch::Broken(reason) => {
                tracing::debug!(key, reason, "leader key watch broke; watching again");
            }
        }
        tokio::select! {
            () = lost.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn follow_key(client: &Client, fence: &Fence, next: &mut i64) -> KeyWatch {
    let options = WatchOptions::new().with_start_revision(*next);
    let mut stream = match client
        .watch_client()
        .watch(fence.key.clone(), Some(options))
        .await
    {
        Ok(stream) => stream,
        Err(e) => return KeyWatch::Broken(format!("creating the watch: {e}")),
    };
    loop {
        let resp = match stream.message().await {
            Ok(Some(resp)) => resp,
            Ok(None) => return KeyWatch::Broken("the watch stream ended".into()),
            Err(e) => return KeyWatch::Broken(e.to_string()),
        };
        if resp.compact_revision() != 0 {
            return KeyWatch::Compacted;
        }
        if resp.canceled() {
            return KeyWatch::Broken(format!(
                "etcd cancelled the watch: {}",
                resp.cancel_reason()
            ));
        }
        for event in resp.events() {
            let Some(kv) = event.kv() else {
                continue;
            };
            if event.event_type() == EventType::Delete {
                return KeyWatch::Gone("deleted");
            }
            if kv.create_revision() != fence.revision {
                return KeyWatch::Gone("replaced by another leadership's key");
            }
            *next = (*next).max(kv.mod_revision() + 1);
        }
    }
}
