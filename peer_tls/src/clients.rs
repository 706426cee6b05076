//! [`PeerClients`]: one HTTP client per peer node, each accepting only that
//! node's certificate, made on first use and kept (with its connections).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use orchestrator_shared_types::NodeId;

use crate::{http_client, Error, NodeTls};

/// Why no client could be made for a peer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] Error),
    /// reqwest could not make the client.
    #[error("making the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// HTTP clients to peer nodes over mutual TLS, presenting this node's
/// certificate.
pub struct PeerClients {
    tls: Arc<NodeTls>,
    connect_timeout: Duration,
    clients: Mutex<HashMap<NodeId, reqwest::Client>>,
}

impl std::fmt::Debug for PeerClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClients")
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl PeerClients {
    /// Clients presenting `tls`, giving up connecting after `connect_timeout`.
    pub fn new(tls: Arc<NodeTls>, connect_timeout: Duration) -> Self {
        Self {
            tls,
            connect_timeout,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// This node's TLS identity.
    pub fn tls(&self) -> &Arc<NodeTls> {
        &self.tls
    }

    /// The client for `peer`: it connects only if the node at the other end
    /// proves it is `peer`.
    pub fn client(&self, peer: NodeId) -> Result<reqwest::Client, ClientError> {
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&peer)
        {
            return Ok(c.clone());
        }
        let made = http_client(self.tls.client_config(peer)?, self.connect_timeout)?;
        Ok(self
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(peer)
            .or_insert(made)
            .clone())
    }

    /// Forgets the client of `peer` (a node that left), closing its idle
    /// connections.
    pub fn forget(&self, peer: &NodeId) {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(peer);
    }
}
