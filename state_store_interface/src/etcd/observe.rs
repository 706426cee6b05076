//! [`EtcdStore::observe_leader`]: the election's leader as a watch channel.
//!
//! A task follows etcd's `observe` stream, which sends the leader's value
//! when a leader is elected (and the current leader's when it starts, so an
//! election between two streams is not missed). `observe` says nothing when
//! a leader goes and nobody follows, so the task also watches the
//! candidates' keys for deletes and, on one, reads the leader again
//! (publishing `None` if nobody leads); that watch is opened before the
//! leader is read, so no delete falls in between, and after it breaks it is
//! opened again and the leader read again. The task stops when the store is
//! dropped or every receiver is.

use etcd_client::{Client, EventType, WatchFilterType, WatchOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::election::{leader_value, MAX_BACKOFF, MIN_BACKOFF};
use super::{etcd_failed, EtcdStore};
use crate::Result;

/// The leader's value, `None` while nobody leads.
type Leader = Option<Vec<u8>>;

impl EtcdStore {
    /// The leader's value now, and from then on as it changes, until the
    /// store is dropped. Fails if etcd cannot be reached now; later errors
    /// are retried (the value may be stale meanwhile). Needs no `initialize`.
    pub async fn observe_leader(&self) -> Result<watch::Receiver<Leader>> {
        let name = self.keys.election();
        let deletes = watch_deletes(&self.client, &name)
            .await
            .map_err(etcd_failed(&format!("observing election {name}")))?;
        let (tx, rx) = watch::channel(leader_value(&self.client, &name).await?);
        let observer = Observer {
            client: self.client.clone(),
            name,
            tx,
        };
        tokio::spawn(observer.run(deletes, self.cancel.child_token()));
        Ok(rx)
    }
}

/// A watch of the deletes of the candidates' keys of election `name`.
async fn watch_deletes(
    client: &Client,
    name: &str,
) -> Result<etcd_client::WatchStream, etcd_client::Error> {
    let options = WatchOptions::new()
        .with_prefix()
        .with_filters([WatchFilterType::NoPut]);
    client
        .watch_client()
        .watch(format!("{name}/"), Some(options))
        .await
}

struct Observer {
    client: Client,
    name: String,
    tx: watch::Sender<Leader>,
}

impl Observer {
    async fn run(self, deletes: etcd_client::WatchStream, cancel: CancellationToken) {
        let mut deletes = Some(deletes);
        let mut backoff = MIN_BACKOFF;
        loop {
            let reason = tokio::select! {
                () = cancel.cancelled() => return,
                () = self.tx.closed() => return,
                reason = self.follow(deletes.take()) => reason,
            };
            tracing::debug!(election = %self.name, reason, "observing the leader broke; observing again");
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.tx.closed() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Watches the candidates' deletes (`deletes` if fresh, else a new
    /// watch, after which it reads the leader again) and follows `observe`,
    /// publishing until the deletes' watch breaks; why it broke.
    async fn follow(&self, deletes: Option<etcd_client::WatchStream>) -> String {
        let mut deletes = match deletes {
            Some(fresh) => fresh,
            None => match watch_deletes(&self.client, &self.name).await {
                Ok(deletes) => {
                    if let Err(reason) = self.reread().await {
                        return reason;
                    }
                    deletes
                }
                Err(e) => return format!("watching the candidates: {e}"),
            },
        };
        let on_deletes = async {
            loop {
                match deletes.message().await {
                    Ok(Some(resp)) if resp.canceled() => {
                        return format!("etcd cancelled the watch: {}", resp.cancel_reason());
                    }
                    Ok(Some(resp)) => {
                        let deleted = resp
                            .events()
                            .iter()
                            .any(|e| e.event_type() == EventType::Delete);
                        if deleted {
                            if let Err(reason) = self.reread().await {
                                return reason;
                            }
                        }
                    }
                    Ok(None) => return "the candidates' watch ended".into(),
                    Err(e) => return format!("the candidates' watch: {e}"),
                }
            }
        };
        tokio::select! {
            reason = on_deletes => reason,
            never = self.observe() => match never {},
        }
    }

    /// Publishes what etcd's `observe` stream says, opening it again after
    /// errors (while nobody leads it may say nothing until the request's
    /// timeout ends it).
    async fn observe(&self) -> std::convert::Infallible {
        let mut backoff = MIN_BACKOFF;
        loop {
            let reason = match self
                .client
                .election_client()
                .observe(self.name.as_str())
                .await
            {
                Ok(mut stream) => loop {
                    match stream.message().await {
                        Ok(Some(resp)) => {
                            backoff = MIN_BACKOFF;
                            self.publish(resp.kv().map(|kv| kv.value().to_vec()));
                        }
                        Ok(None) => break "the observe stream ended".to_owned(),
                        Err(e) => break e.to_string(),
                    }
                },
                Err(e) => e.to_string(),
            };
            tracing::trace!(election = %self.name, reason, "observe ended; observing again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn reread(&self) -> Result<(), String> {
        let leader = leader_value(&self.client, &self.name)
            .await
            .map_err(|e| e.to_string())?;
        self.publish(leader);
        Ok(())
    }

    fn publish(&self, leader: Leader) {
        self.tx.send_if_modified(|current| {
            if *current == leader {
                false
            } else {
                *current = leader;
                true
            }
        });
    }
}
