//! Every route of the REST API: constants for fixed paths, functions for
//! paths with segments (each percent-encoded, so a name with `/` or a space
//! stays one segment), [`Query`] for query strings, and [`pattern`] for the
//! server's route registration (axum's `{param}` syntax).
//!
//! Clients build every request target from here; no `/api/v1` string lives
//! anywhere else.

use orchestrator_shared_types::auth::encode_path_segment;
use orchestrator_shared_types::PublicKey;

/// The prefix of every versioned route.
pub const API_PREFIX: &str = "/api/v1";
/// `GET`: the daemon's health (unsigned).
pub const HEALTH: &str = "/health";
/// `GET`: who this node is and the audience requests are signed for (unsigned).
pub const INFO: &str = "/api/v1/info";
/// `GET`: the OpenAPI document (unsigned).
pub const OPENAPI: &str = "/api/v1/openapi.json";
/// `POST` a manifest, `GET` a page of workloads.
pub const WORKLOADS: &str = "/api/v1/workloads";
/// `GET` a page of nodes.
pub const NODES: &str = "/api/v1/nodes";
/// `GET` the cluster at a glance.
pub const CLUSTER_STATUS: &str = "/api/v1/cluster/status";
/// `GET` the event stream (WebSocket).
pub const EVENTS: &str = "/api/v1/events";
/// `GET` a page of recent events.
pub const EVENTS_RECENT: &str = "/api/v1/events/recent";
/// `GET` a page of the audit log.
pub const AUDIT: &str = "/api/v1/audit";
/// `GET` a check of the audit log's hash chain.
pub const AUDIT_VERIFY: &str = "/api/v1/audit/verify";
/// `GET`/`PUT` the caller's automation policy.
pub const AGENT_POLICY: &str = "/api/v1/agent/policy";
/// `POST` revokes every agent token the caller issued until now.
pub const AGENT_TOKENS_REVOKE_ALL: &str = "/api/v1/agent/tokens/revoke-all";
/// `GET` a page of approvals.
pub const APPROVALS: &str = "/api/v1/approvals";
/// `GET`/`PUT` the caller's trust policy.
pub const TRUST_POLICY: &str = "/api/v1/trust/policy";
/// `GET` the caller's sealed secrets.
pub const SECRETS: &str = "/api/v1/secrets";
/// `GET` a page of every node's reputation as the caller sees it
/// ([`reputation_query`] adds the caller's trusted operators).
pub const REPUTATION: &str = "/api/v1/reputation";
/// `POST` a signed attestation.
pub const ATTESTATIONS: &str = "/api/v1/attestations";
/// `GET` the caller's credit balance.
pub const CREDITS_BALANCE: &str = "/api/v1/credits/balance";
/// `GET` a page of the caller's credit history.
pub const CREDITS_HISTORY: &str = "/api/v1/credits/history";
/// `POST` a transfer.
pub const CREDITS_TRANSFER: &str = "/api/v1/credits/transfer";
/// `GET` a page of the caller's volumes.
pub const VOLUMES: &str = "/api/v1/volumes";
/// `GET` this node's view of the cluster (cluster mode only).
pub const NETWORK: &str = "/api/v1/network";
/// `POST` a new join token (admin keys only).
pub const CLUSTER_JOIN_TOKENS: &str = "/api/v1/cluster/join-tokens";
/// `POST` a join request (unsigned headers: the body carries the token's
/// secret and the joining node's signature).
pub const CLUSTER_JOIN: &str = "/api/v1/cluster/join";
/// `GET` the admitted members.
pub const CLUSTER_MEMBERS: &str = "/api/v1/cluster/members";
/// `GET` a page of the peers this node knows.
pub const NETWORK_PEERS: &str = "/api/v1/network/peers";
/// `GET` every peer probed for reachability.
pub const NETWORK_DISCOVER: &str = "/api/v1/network/discover";

/// Percent-encodes one path segment (a workload name, an id).
pub fn segment(s: &str) -> String {
    encode_path_segment(s)
}

/// `/api/v1/workloads/{ref}`: one workload by name or id.
pub fn workload(reference: &str) -> String {
    format!("{WORKLOADS}/{}", segment(reference))
}

/// `/api/v1/workloads/{ref}/scale`.
pub fn workload_scale(reference: &str) -> String {
    format!("{}/scale", workload(reference))
}

/// `/api/v1/workloads/{ref}/instances`.
pub fn workload_instances(reference: &str) -> String {
    format!("{}/instances", workload(reference))
}

/// `/api/v1/workloads/{ref}/logs`, with `tail=N` and `follow=true` when given.
pub fn workload_logs(reference: &str, tail: Option<usize>, follow: bool) -> String {
    let mut query = Query::new();
    if let Some(n) = tail {
        query.push("tail", &n.to_string());
    }
    if follow {
        query.push("follow", "true");
    }
    query.after(&format!("{}/logs", workload(reference)))
}

/// `/api/v1/volumes/{name}` (`DELETE` wipes the volume).
pub fn volume(name: &str) -> String {
    format!("{VOLUMES}/{}", segment(name))
}

/// `/api/v1/cluster/members/{id}` (`DELETE` removes the member).
pub fn cluster_member(id: &str) -> String {
    format!("{CLUSTER_MEMBERS}/{}", segment(id))
}

/// `/api/v1/nodes/{id}`.
pub fn node(id: &str) -> String {
    format!("{NODES}/{}", segment(id))
}

/// What an operator can do to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeAction {
    /// Keep what it runs, take nothing new.
    Cordon,
    /// Take new instances again.
    Uncordon,
    /// Cordon it and move its instances elsewhere.
    Drain,
}

impl NodeAction {
    /// The last segment of its route.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cordon => "cordon",
            Self::Uncordon => "uncordon",
            Self::Drain => "drain",
        }
    }
}

/// `/api/v1/nodes/{id}/cordon|uncordon|drain`.
pub fn node_action(id: &str, action: NodeAction) -> String {
    format!("{}/{}", node(id), action.as_str())
}

/// `/api/v1/nodes/{id}/reputation`, with `?trusted=HEX,HEX` when the caller
/// trusts some operators (no query when none).
pub fn node_reputation(id: &str, trusted: &[PublicKey]) -> String {
    let mut query = Query::new();
    let keys: Vec<String> = trusted.iter().map(PublicKey::to_hex).collect();
    query.push_list("trusted", &keys);
    query.after(&format!("{}/reputation", node(id)))
}

/// The query of [`REPUTATION`]: `trusted=HEX,HEX` when the caller trusts
/// some operators (empty when none).
pub fn reputation_query(trusted: &[PublicKey]) -> Query {
    let mut query = Query::new();
    let keys: Vec<String> = trusted.iter().map(PublicKey::to_hex).collect();
    query.push_list("trusted", &keys);
    query
}

/// `/api/v1/secrets/{name}`: `GET`, `PUT` or `DELETE` one sealed secret.
pub fn secret(name: &str) -> String {
    format!("{API_PREFIX}/secrets/{}", segment(name))
}

/// `/api/v1/agent/tokens/{id}/revoke`.
pub fn agent_token_revoke(id: &str) -> String {
    format!("{API_PREFIX}/agent/tokens/{}/revoke", segment(id))
}

/// `/api/v1/approvals/{id}`.
pub fn approval(id: &str) -> String {
    format!("{APPROVALS}/{}", segment(id))
}

/// What the user decides about a held call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Run the stored call.
    Approve,
    /// Refuse it.
    Deny,
}

impl Verdict {
    /// The last segment of its route.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

/// `/api/v1/approvals/{id}/approve|deny`.
pub fn approval_decision(id: &str, verdict: Verdict) -> String {
    format!("{}/{}", approval(id), verdict.as_str())
}

/// A query string, built one parameter at a time with every value
/// percent-encoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<String>,
}

impl Query {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key=value` (`value` encoded).
    pub fn push(&mut self, key: &str, value: &str) -> &mut Self {
        self.pairs.push(format!("{key}={}", segment(value)));
        self
    }

    /// Adds `key=value` when there is a value.
    pub fn push_opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.push(key, v);
        }
        self
    }

    /// Adds `key=a,b,c` (each item encoded, the commas not), unless `values`
    /// is empty.
    pub fn push_list(&mut self, key: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            let items: Vec<String> = values.iter().map(|v| segment(v)).collect();
            self.pairs.push(format!("{key}={}", items.join(",")));
        }
        self
    }

    /// Whether there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The parameters, `a=1&b=2` (empty when none).
    pub fn params(&self) -> String {
        self.pairs.join("&")
    }

    /// `path` with these parameters appended (`?…`, or `&…` when `path`
    /// already has a query); `path` alone when there are none.
    pub fn after(&self, path: &str) -> String {
        if self.is_empty() {
            return path.to_owned();
        }
        let join = if path.contains('?') { '&' } else { '?' };
        format!("{path}{join}{}", self.params())
    }
}

/// The route patterns the server registers (axum's `{param}` syntax).
pub mod pattern {
    /// One workload.
    pub const WORKLOAD: &str = "/api/v1/workloads/{ref}";
    /// Scale a workload.
    pub const WORKLOAD_SCALE: &str = "/api/v1/workloads/{ref}/scale";
    /// A workload's instances.
    pub const WORKLOAD_INSTANCES: &str = "/api/v1/workloads/{ref}/instances";
    /// A workload's logs.
    pub const WORKLOAD_LOGS: &str = "/api/v1/workloads/{ref}/logs";
    /// One of the caller's volumes.
    pub const VOLUME: &str = "/api/v1/volumes/{name}";
    /// One node.
    pub const NODE: &str = "/api/v1/nodes/{id}";
    /// A member of the cluster.
    pub const CLUSTER_MEMBER: &str = "/api/v1/cluster/members/{id}";
    /// Cordon a node.
    pub const NODE_CORDON: &str = "/api/v1/nodes/{id}/cordon";
    /// Uncordon a node.
    pub const NODE_UNCORDON: &str = "/api/v1/nodes/{id}/uncordon";
    /// Drain a node.
    pub const NODE_DRAIN: &str = "/api/v1/nodes/{id}/drain";
    /// A node's reputation.
    pub const NODE_REPUTATION: &str = "/api/v1/nodes/{id}/reputation";
    /// Revoke an agent token.
    pub const AGENT_TOKEN_REVOKE: &str = "/api/v1/agent/tokens/{id}/revoke";
    /// One sealed secret of the caller.
    pub const SECRET: &str = "/api/v1/secrets/{name}";
    /// One approval.
    pub const APPROVAL: &str = "/api/v1/approvals/{id}";
    /// Approve a held call.
    pub const APPROVAL_APPROVE: &str = "/api/v1/approvals/{id}/approve";
    /// Deny a held call.
    pub const APPROVAL_DENY: &str = "/api/v1/approvals/{id}/deny";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(workload("a/b c"), "/api/v1/workloads/a%2Fb%20c");
        assert_eq!(workload_scale("x"), "/api/v1/workloads/x/scale");
        assert_eq!(
            node_action("ab", NodeAction::Uncordon),
            "/api/v1/nodes/ab/uncordon"
        );
        assert_eq!(
            approval_decision("0123abcd", Verdict::Deny),
            "/api/v1/approvals/0123abcd/deny"
        );
        assert_eq!(agent_token_revoke("t1"), "/api/v1/agent/tokens/t1/revoke");
    }

    #[test]
    fn queries_are_built_from_what_is_given() {
        assert_eq!(
            workload_logs("hello", None, false),
            "/api/v1/workloads/hello/logs"
        );
        assert_eq!(
            workload_logs("hello", Some(5), true),
            "/api/v1/workloads/hello/logs?tail=5&follow=true"
        );
        let k = |b: u8| PublicKey([b; 32]);
        assert_eq!(node_reputation("ab", &[]), "/api/v1/nodes/ab/reputation");
        assert!(reputation_query(&[]).is_empty());
        assert_eq!(
            reputation_query(&[k(1)]).after(REPUTATION),
            format!("/api/v1/reputation?trusted={}", k(1).to_hex())
        );
        assert_eq!(
            node_reputation("ab", &[k(1), k(2)]),
            format!(
                "/api/v1/nodes/ab/reputation?trusted={},{}",
                "01".repeat(32),
                "02".repeat(32)
            )
        );
        let mut q = Query::new();
        q.push("limit", "5").push_opt("cursor", Some("a b/c"));
        assert_eq!(
            q.after("/x?state=all"),
            "/x?state=all&limit=5&cursor=a%20b%2Fc"
        );
    }

    #[test]
    fn patterns_match_the_paths() {
        let filled = |p: &str| p.replace("{ref}", "w").replace("{id}", "i");
        assert_eq!(filled(pattern::WORKLOAD), workload("w"));
        assert_eq!(
            filled(pattern::WORKLOAD_LOGS),
            workload_logs("w", None, false)
        );
        assert_eq!(
            filled(pattern::NODE_DRAIN),
            node_action("i", NodeAction::Drain)
        );
        assert_eq!(filled(pattern::NODE_REPUTATION), node_reputation("i", &[]));
        assert_eq!(filled(pattern::AGENT_TOKEN_REVOKE), agent_token_revoke("i"));
        assert_eq!(filled(pattern::CLUSTER_MEMBER), cluster_member("i"));
        assert_eq!(pattern::VOLUME.replace("{name}", "v"), volume("v"));
        assert_eq!(
            filled(pattern::APPROVAL_APPROVE),
            approval_decision("i", Verdict::Approve)
        );
    }
}
