//! [`AgentClient`]: signed calls from the control plane to one node's agent.
//!
//! Every request is signed with this node's key exactly as the REST API's
//! requests are (SPEC §11), for the cluster's audience (its cluster id), so
//! the agent can tell which member is asking and no other cluster's agent
//! would accept it. A client made [`with_term`](AgentClient::with_term) adds
//! its control-plane term to every request target (`term=N`) before signing,
//! so it cannot be changed in flight ([`crate::term`]). A
//! node that cannot be reached answers [`RuntimeError::NodeUnreachable`]; an
//! error the agent reports comes back as the runtime error it stands for.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use container_runtime_interface::{
    ContainerStatus, LogLine, ResourceUsage, RuntimeError, VolumeRef,
};
use ed25519_dalek::SigningKey;
use futures::stream::BoxStream;
use futures::StreamExt;
use orchestrator_shared_types::auth::{
    encode_path_segment, sign_request, Payload, HEADER_AUDIENCE, HEADER_PUBLIC_KEY,
    HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use orchestrator_shared_types::{ContainerId, Node, NodeId};
use peer_tls::{NodeTls, PeerClients};
use reqwest::Method;
use serde::de::DeserializeOwned;
use tracing::debug;

use crate::routed_id;
use crate::wire::{CreateContainer, Created, Stop, WireError, AGENT_PREFIX};

/// Longest wait for an ordinary agent call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a creation, which may pull an image first.
const CREATE_TIMEOUT: Duration = Duration::from_secs(600);
/// Timeout of wiping a volume (its data is overwritten: large ones take a while).
const VOLUME_DELETE_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest wait to connect to an agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Calls node agents, signing as this node.
#[derive(Clone)]
pub struct AgentClient {
    peers: Arc<PeerClients>,
    key: Arc<SigningKey>,
    audience: Arc<str>,
    /// The control-plane term every request carries, if any.
    term: Option<u64>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("term", &self.term)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// A client signing with `key` for `audience` (the cluster id), with a
    /// TLS identity of its own made from `key`.
    pub fn new(key: SigningKey, audience: impl Into<Arc<str>>) -> Result<Self, peer_tls::Error> {
        let tls = Arc::new(NodeTls::new(&key)?);
        Ok(Self::with_peers(
            key,
            audience,
            Arc::new(PeerClients::new(tls, CONNECT_TIMEOUT)),
        ))
    }

    /// A client signing with `key` for `audience`, connecting through
    /// `peers` (made from the same key).
    pub fn with_peers(
        key: SigningKey,
        audience: impl Into<Arc<str>>,
        peers: Arc<PeerClients>,
    ) -> Self {
        Self {
            peers,
            key: Arc::new(key),
            audience: audience.into(),
            term: None,
        }
    }

    /// The same client, carrying control-plane term `term` (the leader's
    /// term, [`crate::term`]) in every request it signs.
    pub fn with_term(self, term: u64) -> Self {
        Self {
            term: Some(term),
            ..self
        }
    }

    /// The control-plane term this client's requests carry, if any.
    pub fn term(&self) -> Option<u64> {
        self.term
    }

    /// The request target for `path`: with `term=N` appended when this
    /// client has a term (`?` or, after a query, `&`).
    fn target<'a>(&self, path: &'a str) -> Cow<'a, str> {
        match self.term {
            None => Cow::Borrowed(path),
            Some(term) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                Cow::Owned(format!("{path}{sep}{}={term}", crate::term::TERM_PARAM))
            }
        }
    }

    /// The id of the node this client signs as.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.key.verifying_key().to_bytes())
    }

    async fn send(
        &self,
        node: &Node,
        method: Method,
        path: &str,
        body: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response> {
        // The term is part of the target before it is signed: the signature
        // covers it.
        let target = self.target(path);
        let payload = Payload::new(method.as_str(), &target, &body, &self.audience);
        let signed = sign_request(&self.key, &payload, Utc::now());
        let url = peer_tls::url(&node.address, &target);
        let http = self.peers.client(node.id).map_err(|e| {
            debug!(node = %node.id.short(), error = %e, "no TLS client for the agent");
            RuntimeError::NodeUnreachable(node.id)
        })?;
        let mut req = http
            .request(method, &url)
            .header(HEADER_PUBLIC_KEY, signed.public_key)
            .header(HEADER_TIMESTAMP, signed.timestamp)
            .header(HEADER_SIGNATURE, signed.signature)
            .header(HEADER_AUDIENCE, &*self.audience);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().await.map_err(|e| {
            debug!(node = %node.id.short(), url, error = %e, "agent unreachable");
            RuntimeError::NodeUnreachable(node.id)
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| RuntimeError::NodeUnreachable(node.id))?;
        let err = serde_json::from_slice::<WireError>(&bytes).unwrap_or_else(|_| {
            WireError::new(
                "http",
                format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ),
            )
        });
        let id = node.id;
        Err(err.into_runtime(id, move |inner| routed_id(&id, &inner)))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        node: &Node,
        method: Method,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<T> {
        let resp = self.send(node, method, path, body, Some(timeout)).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| RuntimeError::NodeUnreachable(node.id))?;
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Operation {
            operation: "reading the answer of the agent of",
            id: ContainerId(node.id.short()),
            reason: e.to_string(),
        })
    }

    fn container_path(inner: &ContainerId, rest: &str) -> String {
        format!(
            "{AGENT_PREFIX}/containers/{}{rest}",
            encode_path_segment(&inner.0)
        )
    }

    /// Prepares `node` to run containers.
    pub async fn init(&self, node: &Node) -> Result<()> {
        let path = format!("{AGENT_PREFIX}/init");
        self.send(node, Method::POST, &path, Vec::new(), Some(CALL_TIMEOUT))
            .await
            .map(drop)
    }

    /// Creates and starts a container on `node`; returns its node-local id.
    pub async fn create(&self, node: &Node, req: &CreateContainer) -> Result<ContainerId> {
        let body = serde_json::to_vec(req).map_err(|e| RuntimeError::Create {
            instance: req.instance_id,
            name: req.config.name.clone(),
            reason: format!("encoding the request: {e}"),
        })?;
        let path = format!("{AGENT_PREFIX}/containers");
        let created: Created = self
            .call(node, Method::POST, &path, body, CREATE_TIMEOUT)
            .await?;
        Ok(created.id)
    }

    /// Wipes `volume` on `node` (it may take a while: the data is overwritten).
    pub async fn delete_volume(&self, node: &Node, volume: &VolumeRef) -> Result<()> {
        self.send(
            node,
            Method::DELETE,
            &crate::wire::volume_path(volume),
            Vec::new(),
            Some(VOLUME_DELETE_TIMEOUT),
        )
        .await
        .map(drop)
    }

    /// Stops a container.
    pub async fn stop(&self, node: &Node, inner: &ContainerId, grace: Duration) -> Result<()> {
        let body = serde_json::to_vec(&Stop {
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        })
        .unwrap_or_default();
        let timeout = CALL_TIMEOUT + grace;
        self.send(
            node,
            Method::POST,
            &Self::container_path(inner, "/stop"),
            body,
            Some(timeout),
        )
        .await
        .map(drop)
    }

    /// Removes a container.
    pub async fn remove(&self, node: &Node, inner: &ContainerId) -> Result<()> {
        self.send(
            node,
            Method::DELETE,
            &Self::container_path(inner, ""),
            Vec::new(),
            Some(CALL_TIMEOUT * 3),
        )
        .await
        .map(drop)
    }

    /// A container's status (node-local id inside).
    pub async fn status(&self, node: &Node, inner: &ContainerId) -> Result<ContainerStatus> {
        self.call(
            node,
            Method::GET,
            &Self::container_path(inner, ""),
            Vec::new(),
            CALL_TIMEOUT,
        )
        .await
    }

    /// Every container of `node` (node-local ids inside).
    pub async fn list(&self, node: &Node) -> Result<Vec<ContainerStatus>> {
        let path = format!("{AGENT_PREFIX}/containers");
        self.call(node, Method::GET, &path, Vec::new(), CALL_TIMEOUT)
            .await
    }

    /// Lines of a container's output.
    pub async fn logs(
        &self,
        node: &Node,
        inner: &ContainerId,
        tail: Option<usize>,
    ) -> Result<Vec<LogLine>> {
        let query = tail.map_or_else(String::new, |t| format!("?tail={t}"));
        self.call(
            node,
            Method::GET,
            &Self::container_path(inner, &format!("/logs{query}")),
            Vec::new(),
            CALL_TIMEOUT,
        )
        .await
    }

    /// A container's output from now on, one JSON line per log line.
    pub async fn follow(
        &self,
        node: &Node,
        inner: &ContainerId,
    ) -> Result<BoxStream<'static, LogLine>> {
        let resp = self
            .send(
                node,
                Method::GET,
                &Self::container_path(inner, "/logs/follow"),
                Vec::new(),
                None,
            )
            .await?;
        let mut buf = Vec::new();
        let lines = resp
            .bytes_stream()
            .take_while(|chunk| futures::future::ready(chunk.is_ok()))
            .flat_map(move |chunk| {
                let mut out = Vec::new();
                if let Ok(chunk) = chunk {
                    buf.extend_from_slice(&chunk);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if let Ok(l) = serde_json::from_slice::<LogLine>(&line) {
                            out.push(l);
                        }
                    }
                }
                futures::stream::iter(out)
            });
        Ok(lines.boxed())
    }

    /// What the running containers of `node` use.
    pub async fn usage(&self, node: &Node) -> Result<Option<ResourceUsage>> {
        let path = format!("{AGENT_PREFIX}/usage");
        self.call(node, Method::GET, &path, Vec::new(), CALL_TIMEOUT)
            .await
    }

    /// What a container has used (node-local id inside); `None` when the
    /// node's runtime does not measure it.
    pub async fn container_usage(
        &self,
        node: &Node,
        inner: &ContainerId,
    ) -> Result<Option<ResourceUsage>> {
        self.call(
            node,
            Method::GET,
            &Self::container_path(inner, "/usage"),
            Vec::new(),
            CALL_TIMEOUT,
        )
        .await
    }

    /// Hands `node` the cluster's directory of names and owners; the
    /// version it holds after.
    pub async fn put_directory(
        &self,
        node: &Node,
        directory: &orchestrator_shared_types::net::Directory,
    ) -> Result<u64> {
        let body = serde_json::to_vec(directory).map_err(|e| RuntimeError::Operation {
            operation: "encoding the directory for",
            id: ContainerId(node.id.short()),
            reason: e.to_string(),
        })?;
        let held: crate::directory::DirectoryHeld = self
            .call(
                node,
                Method::PUT,
                crate::directory::DIRECTORY_PATH,
                body,
                CALL_TIMEOUT,
            )
            .await?;
        Ok(held.version)
    }

    /// Changes the gossip keys of `node` (the change may carry a key: it is
    /// never logged); the node's keys after it.
    pub async fn change_gossip_keys(
        &self,
        node: &Node,
        change: &crate::gossip_keys::GossipKeyChange,
    ) -> Result<crate::gossip_keys::GossipKeyIds> {
        let body = serde_json::to_vec(change).map_err(|e| RuntimeError::Operation {
            operation: "encoding a gossip key change for",
            id: ContainerId(node.id.short()),
            reason: e.to_string(),
        })?;
        self.call(
            node,
            Method::POST,
            crate::gossip_keys::GOSSIP_KEYS_PATH,
            body,
            CALL_TIMEOUT,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_is_appended_to_every_target_and_nothing_without_one() {
        let client = AgentClient::new(SigningKey::from_bytes(&[1; 32]), "c").unwrap();
        assert_eq!(client.term(), None);
        assert_eq!(client.target("/agent/v1/usage"), "/agent/v1/usage");
        let client = client.with_term(7);
        assert_eq!(client.term(), Some(7));
        assert_eq!(client.target("/agent/v1/usage"), "/agent/v1/usage?term=7");
        assert_eq!(
            client.target("/agent/v1/containers/c/logs?tail=5"),
            "/agent/v1/containers/c/logs?tail=5&term=7"
        );
    }
}
