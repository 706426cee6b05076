//! The typed calls of [`ApiClient`]: one method per route a client uses,
//! answering with the wire types of this crate.
//!
//! Each answer is a [`Reply`]: the JSON exactly as the server sent it (what
//! `--output json` prints, so fields this client does not know still show)
//! and the same answer read into its wire type.

use orchestrator_shared_types::agent::AgentPolicy;
use orchestrator_shared_types::{Node, PublicKey, TrustRules, WorkloadInstance};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{ApiClient, ClientError};
use crate::routes::{self, NodeAction, Query, Verdict};
use crate::{
    Approval, ApprovalFilter, Attested, AuditEntry, Balance, ClusterStatus, HealthReport,
    LedgerEntry, NetworkStatus, Peer, Reachability, Reputation, Revocation, ScaleRequest,
    TransferRequest, Verification, Volume, Workload,
};

/// An answer: its status, its JSON as sent, and the JSON read as `T`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply<T> {
    /// The HTTP status (2xx).
    pub status: u16,
    /// The JSON as the server sent it; for a list, the array of every item
    /// of every page.
    pub raw: Value,
    /// The same, as its wire type.
    pub data: T,
}

impl<T: DeserializeOwned> Reply<T> {
    /// Reads `raw` as `T`; `what` names the request in the error.
    pub fn decode(status: u16, raw: Value, what: &str) -> Result<Self, ClientError> {
        let data = T::deserialize(&raw).map_err(|source| ClientError::Decode {
            what: what.to_owned(),
            source,
        })?;
        Ok(Self { status, raw, data })
    }
}

impl ApiClient {
    /// `method path` with an optional JSON body, read as `T`.
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply<T>, ClientError> {
        let answer = self.send(method, path, body.map(|b| ("application/json", b)))?;
        let status = answer.status();
        let what = format!("{method} {path}");
        let raw: Value = answer.json()?;
        Reply::decode(status, raw, &what)
    }

    /// `method path` with `body` encoded as JSON, read as `T`.
    fn call_with<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<Reply<T>, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|source| ClientError::Encode {
            what: format!("{method} {path}"),
            source,
        })?;
        self.call(method, path, Some(&bytes))
    }

    /// Every item of a list route (all pages), each read as `T`.
    fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<Reply<Vec<T>>, ClientError> {
        let items = self.get_all_with(path, &query.params())?;
        Reply::decode(200, Value::Array(items), &format!("GET {path}"))
    }

    /// `GET /health` (unsigned when the client does not sign). A degraded
    /// daemon may answer 503 with the same body, which is read too.
    pub fn health(&self) -> Result<Reply<HealthReport>, ClientError> {
        let what = format!("GET {}", routes::HEALTH);
        match self.send("GET", routes::HEALTH, None) {
            Ok(answer) => {
                let status = answer.status();
                Reply::decode(status, answer.json()?, &what)
            }
            Err(ClientError::Api {
                status: 503,
                code: None,
                message,
                body,
            }) => match serde_json::from_str::<Value>(&body) {
                Ok(raw) => Reply::decode(503, raw, &what),
                Err(_) => Err(ClientError::Api {
                    status: 503,
                    code: None,
                    message,
                    body,
                }),
            },
            Err(e) => Err(e),
        }
    }

    /// Issues a join token (admin keys, or the control plane's own node key).
    pub fn issue_join_token(
        &self,
        request: &crate::JoinTokenRequest,
    ) -> Result<Reply<crate::JoinTokenIssued>, ClientError> {
        self.call_with("POST", routes::CLUSTER_JOIN_TOKENS, request)
    }

    /// Every admitted member of the cluster.
    pub fn cluster_members(&self) -> Result<Reply<Vec<crate::ClusterMember>>, ClientError> {
        self.call("GET", routes::CLUSTER_MEMBERS, None)
    }

    /// Removes a member from the cluster (admin keys only); the answer says
    /// how the gossip key rotation that follows went.
    pub fn remove_member(&self, id: &str) -> Result<Reply<crate::MemberRemoved>, ClientError> {
        self.call("DELETE", &routes::cluster_member(id), None)
    }

    /// Every workload of the caller (every workload for an admin key).
    pub fn list_workloads(&self) -> Result<Reply<Vec<Workload>>, ClientError> {
        self.list(routes::WORKLOADS, &Query::new())
    }

    /// One workload, by name or id.
    pub fn get_workload(&self, reference: &str) -> Result<Reply<Workload>, ClientError> {
        self.call("GET", &routes::workload(reference), None)
    }

    /// Creates a workload from a manifest (JSON or YAML, per `content_type`),
    /// or updates the caller's workload of the same name: status 201 when
    /// created, 200 when updated.
    pub fn create_workload(
        &self,
        content_type: &str,
        manifest: &[u8],
    ) -> Result<Reply<Workload>, ClientError> {
        let answer = self.send("POST", routes::WORKLOADS, Some((content_type, manifest)))?;
        let status = answer.status();
        let raw: Value = answer.json()?;
        Reply::decode(status, raw, &format!("POST {}", routes::WORKLOADS))
    }

    /// Replaces a workload's manifest (its name must stay the same).
    pub fn update_workload(
        &self,
        reference: &str,
        content_type: &str,
        manifest: &[u8],
    ) -> Result<Reply<Workload>, ClientError> {
        let path = routes::workload(reference);
        let answer = self.send("PUT", &path, Some((content_type, manifest)))?;
        let status = answer.status();
        let raw: Value = answer.json()?;
        Reply::decode(status, raw, &format!("PUT {path}"))
    }

    /// Sets a workload's replica count.
    pub fn scale_workload(
        &self,
        reference: &str,
        replicas: u32,
    ) -> Result<Reply<Workload>, ClientError> {
        let body = ScaleRequest { replicas };
        self.call_with("POST", &routes::workload_scale(reference), &body)
    }

    /// Deletes a workload; the answer is the workload as it was.
    pub fn delete_workload(&self, reference: &str) -> Result<Reply<Workload>, ClientError> {
        self.call("DELETE", &routes::workload(reference), None)
    }

    /// Every volume of the caller.
    pub fn list_volumes(&self) -> Result<Reply<Vec<Volume>>, ClientError> {
        self.list(routes::VOLUMES, &Query::new())
    }

    /// Deletes (wipes) one of the caller's volumes; the answer is the volume
    /// as it was.
    pub fn delete_volume(&self, name: &str) -> Result<Reply<Volume>, ClientError> {
        self.call("DELETE", &routes::volume(name), None)
    }

    /// Every instance of a workload.
    pub fn list_instances(
        &self,
        reference: &str,
    ) -> Result<Reply<Vec<WorkloadInstance>>, ClientError> {
        self.list(&routes::workload_instances(reference), &Query::new())
    }

    /// A workload's logs, one NDJSON line (a [`crate::LogEntry`]) at a time
    /// as it arrives; with `follow`, until the server closes the stream.
    pub fn workload_log_lines(
        &self,
        reference: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<impl Iterator<Item = Result<String, ClientError>>, ClientError> {
        let path = routes::workload_logs(reference, tail, follow);
        Ok(self.send("GET", &path, None)?.lines())
    }

    /// Every node.
    pub fn list_nodes(&self) -> Result<Reply<Vec<Node>>, ClientError> {
        self.list(routes::NODES, &Query::new())
    }

    /// One node.
    pub fn get_node(&self, id: &str) -> Result<Reply<Node>, ClientError> {
        self.call("GET", &routes::node(id), None)
    }

    /// Cordons, uncordons or drains a node; the answer is the node.
    pub fn node_action(&self, id: &str, action: NodeAction) -> Result<Reply<Node>, ClientError> {
        self.call("POST", &routes::node_action(id, action), None)
    }

    /// A node's reputation as the caller sees it through `trusted` operators.
    pub fn node_reputation(
        &self,
        id: &str,
        trusted: &[PublicKey],
    ) -> Result<Reply<Reputation>, ClientError> {
        self.call("GET", &routes::node_reputation(id, trusted), None)
    }

    /// Every node's reputation as the caller sees it through `trusted`
    /// operators (one request per page of 1,000 nodes, not one per node).
    pub fn reputations(
        &self,
        trusted: &[PublicKey],
    ) -> Result<Reply<Vec<Reputation>>, ClientError> {
        self.list(routes::REPUTATION, &routes::reputation_query(trusted))
    }

    /// The cluster at a glance.
    pub fn cluster_status(&self) -> Result<Reply<ClusterStatus>, ClientError> {
        self.call("GET", routes::CLUSTER_STATUS, None)
    }

    /// The node asked's view of the cluster (404 from a standalone daemon).
    pub fn network_status(&self) -> Result<Reply<NetworkStatus>, ClientError> {
        self.call("GET", routes::NETWORK, None)
    }

    /// Every peer the node asked knows (404 from a standalone daemon).
    pub fn network_peers(&self) -> Result<Reply<Vec<Peer>>, ClientError> {
        self.list(routes::NETWORK_PEERS, &Query::new())
    }

    /// Every peer, probed by the node asked (404 from a standalone daemon).
    pub fn network_discover(&self) -> Result<Reply<Vec<Reachability>>, ClientError> {
        self.list(routes::NETWORK_DISCOVER, &Query::new())
    }

    /// The caller's approvals, pending ones or all.
    pub fn approvals(&self, filter: ApprovalFilter) -> Result<Reply<Vec<Approval>>, ClientError> {
        let mut query = Query::new();
        query.push("state", filter.as_str());
        self.list(routes::APPROVALS, &query)
    }

    /// Approves (runs once) or denies a held call.
    pub fn decide_approval(
        &self,
        id: &str,
        verdict: Verdict,
    ) -> Result<Reply<Approval>, ClientError> {
        self.call("POST", &routes::approval_decision(id, verdict), None)
    }

    /// Replaces the caller's automation policy; the answer is the policy kept.
    pub fn put_agent_policy(
        &self,
        policy: &AgentPolicy,
    ) -> Result<Reply<AgentPolicy>, ClientError> {
        self.call_with("PUT", routes::AGENT_POLICY, policy)
    }

    /// The caller's trust policy as the daemon holds it (`{}`: none pushed).
    pub fn get_trust_policy(&self) -> Result<Reply<TrustRules>, ClientError> {
        self.call("GET", routes::TRUST_POLICY, None)
    }

    /// Replaces the caller's trust policy; the answer is the policy kept.
    pub fn put_trust_policy(&self, rules: &TrustRules) -> Result<Reply<TrustRules>, ClientError> {
        self.call_with("PUT", routes::TRUST_POLICY, rules)
    }

    /// Revokes an agent token.
    pub fn revoke_agent_token(&self, id: &str) -> Result<Reply<Revocation>, ClientError> {
        self.call("POST", &routes::agent_token_revoke(id), None)
    }

    /// Revokes every agent token the caller issued until now; the answer
    /// is `{"revoked_before": TIME}`.
    pub fn revoke_all_agent_tokens(&self) -> Result<Value, ClientError> {
        self.post_empty(routes::AGENT_TOKENS_REVOKE_ALL)
    }

    /// The caller's automation policy as the daemon holds it.
    pub fn get_agent_policy(&self) -> Result<Reply<AgentPolicy>, ClientError> {
        self.call("GET", routes::AGENT_POLICY, None)
    }

    /// The caller's sealed secrets, by name.
    pub fn list_secrets(&self) -> Result<Reply<Vec<crate::SealedSecret>>, ClientError> {
        self.call("GET", routes::SECRETS, None)
    }

    /// One of the caller's sealed secrets.
    pub fn get_secret(&self, name: &str) -> Result<Reply<crate::SealedSecret>, ClientError> {
        self.call("GET", &routes::secret(name), None)
    }

    /// Stores or replaces one of the caller's secrets, sealed.
    pub fn put_secret(
        &self,
        name: &str,
        secret: &crate::PutSecret,
    ) -> Result<Reply<crate::SealedSecret>, ClientError> {
        self.call_with("PUT", &routes::secret(name), secret)
    }

    /// Deletes one of the caller's secrets; the answer is what was deleted.
    pub fn delete_secret(&self, name: &str) -> Result<Reply<crate::SealedSecret>, ClientError> {
        self.call("DELETE", &routes::secret(name), None)
    }

    /// The caller's credit balance.
    pub fn credit_balance(&self) -> Result<Reply<Balance>, ClientError> {
        self.call("GET", routes::CREDITS_BALANCE, None)
    }

    /// Every entry of the caller's credit history, oldest first.
    pub fn credit_history(&self) -> Result<Reply<Vec<LedgerEntry>>, ClientError> {
        self.list(routes::CREDITS_HISTORY, &Query::new())
    }

    /// Pays another operator; the request's signature is the proof. The
    /// answer is the caller's new balance.
    pub fn transfer_credits(
        &self,
        transfer: &TransferRequest,
    ) -> Result<Reply<Balance>, ClientError> {
        self.call_with("POST", routes::CREDITS_TRANSFER, transfer)
    }

    /// Posts a signed attestation (`{"body": {...}, "signature": HEX}`).
    pub fn attest<B: Serialize + ?Sized>(
        &self,
        signed: &B,
    ) -> Result<Reply<Attested>, ClientError> {
        self.call_with("POST", routes::ATTESTATIONS, signed)
    }

    /// Every audit entry the caller may see, since a time (RFC 3339) and of
    /// one agent when given.
    pub fn audit(
        &self,
        since: Option<&str>,
        agent: Option<&str>,
    ) -> Result<Reply<Vec<AuditEntry>>, ClientError> {
        let mut query = Query::new();
        query.push_opt("since", since).push_opt("agent", agent);
        self.list(routes::AUDIT, &query)
    }

    /// Checks the audit log's hash chain.
    pub fn verify_audit(&self) -> Result<Reply<Verification>, ClientError> {
        self.call("GET", routes::AUDIT_VERIFY, None)
    }
}
