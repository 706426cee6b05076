//! The control-plane term: a fence on agent calls.
//!
//! Several control planes may share one etcd store; one leads at a time, and
//! each term of leadership has a number, the term (etcd's revision at which
//! that leader won), strictly increasing from one leader to the next. A
//! leader that was paused past its lease and wakes up is fenced out of the
//! store by etcd, but not out of the agents: a [`TermGate`] shuts it out of
//! them. A leader's [`AgentClient`](crate::client::AgentClient) carries its
//! term as the query parameter `term=N`, inside the signature, and the agent
//! keeps the highest term it has seen and the node that called with it:
//!
//! - no term, and none seen yet: allowed (a cluster with one control plane
//!   never sends one);
//! - no term once one was seen, or a term below the highest: refused (409
//!   `stale_term`);
//! - the highest term: allowed;
//! - a higher term: written to the term file first, then allowed (a restart
//!   never forgets a term this node obeyed).
//!
//! The gate runs after the signature and the admission ([`check`] sits inside
//! the agent's `SignedLayer`): only the live control plane, over its own
//! mutual-TLS connection, can move it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use orchestrator_shared_types::private_fs::{self, WriteError};
use orchestrator_shared_types::NodeId;
use serde::{Deserialize, Serialize};
use signed_http::Signer;
use tracing::{error, info, warn};

use crate::agent::AgentState;
use crate::wire::{WireError, STALE_TERM};

/// Name of the query parameter that carries the term.
pub const TERM_PARAM: &str = "term";

/// A term and the control plane that called with it (the term file's shape,
/// `{"term":N,"node":"<node id>"}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Leader {
    term: u64,
    node: NodeId,
}

/// Why a call was refused, or a term not read or recorded.
#[derive(Debug, thiserror::Error)]
pub enum TermError {
    /// The call's term is below the one in force, or it has none although
    /// one is in force.
    #[error("{}", stale_message(*term, *current, node))]
    Stale {
        /// The call's term (`None`: it carried none).
        term: Option<u64>,
        /// The term in force.
        current: u64,
        /// The control plane that called with it.
        node: NodeId,
    },
    /// The term file could not be read.
    #[error("reading the control-plane term from {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The term file does not hold a term.
    #[error(
        "{} does not hold a control-plane term (expected {{\"term\":N,\"node\":\"<node id>\"}})",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A newer term could not be written; the call that brought it is refused.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The task recording a newer term ended without an answer.
    #[error("recording a newer control-plane term")]
    Task(#[source] tokio::task::JoinError),
}

fn stale_message(term: Option<u64>, current: u64, node: &NodeId) -> String {
    let in_force = format!("term {current} (node {}…) is in force", node.short());
    match term {
        Some(t) => format!("control-plane term {t} is over: {in_force}"),
        None => format!("a call without a control-plane term is refused: {in_force}"),
    }
}

/// What an admitted call did to the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// No term sent, none seen: the cluster has one control plane.
    Unfenced,
    /// The call carried the term in force.
    Current,
    /// The call carried a newer term, now recorded; `previous` was in force.
    Advanced {
        /// The term in force before (`None`: none was).
        previous: Option<u64>,
    },
}

/// What the agent keeps of control-plane terms: the highest one seen and the
/// node that called with it, in memory and (unless made
/// [`in_memory`](Self::in_memory)) in a file.
#[derive(Debug)]
pub struct TermGate {
    /// The term file; `None` keeps the term in memory only.
    path: Option<PathBuf>,
    /// Held across compare, write and publication of a newer term, so that of
    /// two newer terms at once the lower cannot win.
    writer: Mutex<()>,
    /// The term in force, published only once it is on disk; held briefly,
    /// never across I/O.
    current: Mutex<Option<Leader>>,
}

impl TermGate {
    /// A gate whose term lives in the file at `path`: the term it holds, if
    /// the file exists, else none yet (the file is written at the first term).
    pub fn open(path: &Path) -> Result<Self, TermError> {
        let current = match fs::read(path) {
            Ok(bytes) => Some(serde_json::from_slice::<Leader>(&bytes).map_err(|source| {
                TermError::Corrupt {
                    path: path.to_owned(),
                    source,
                }
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(TermError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Ok(Self {
            path: Some(path.to_owned()),
            writer: Mutex::new(()),
            current: Mutex::new(current),
        })
    }

    /// A gate that keeps its term in memory only (tests).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            writer: Mutex::new(()),
            current: Mutex::new(None),
        }
    }

    /// The term in force and the control plane that called with it: the
    /// leader this node follows.
    pub fn current(&self) -> Option<(u64, NodeId)> {
        (*self.read()).map(|l| (l.term, l.node))
    }

    /// Admits or refuses a call by `caller` carrying `term`; a newer term is
    /// written to the file before this returns. Blocks on that write: from
    /// async code, use [`admit_async`](Self::admit_async).
    pub fn admit(&self, term: Option<u64>, caller: NodeId) -> Result<Admitted, TermError> {
        // Copied out first: the lock must not be held into `advance`.
        let current = *self.read();
        match decide(current, term)? {
            Decision::Admit(admitted) => Ok(admitted),
            Decision::Record(term) => self.advance(term, caller),
        }
    }

    /// [`admit`](Self::admit) without blocking the runtime: the decision is
    /// made in memory, and only the write of a newer term goes to a blocking
    /// thread.
    pub async fn admit_async(
        self: &Arc<Self>,
        term: Option<u64>,
        caller: NodeId,
    ) -> Result<Admitted, TermError> {
        let current = *self.read();
        if let Decision::Admit(admitted) = decide(current, term)? {
            return Ok(admitted);
        }
        let gate = Arc::clone(self);
        tokio::task::spawn_blocking(move || gate.admit(term, caller))
            .await
            .map_err(TermError::Task)?
    }

    /// Records `term` if it is still newer than the one in force once the
    /// writer lock is held (another call may have recorded a higher one).
    fn advance(&self, term: u64, caller: NodeId) -> Result<Admitted, TermError> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = *self.read();
        if let Decision::Admit(admitted) = decide(previous, Some(term))? {
            return Ok(admitted);
        }
        let leader = Leader { term, node: caller };
        if let Some(path) = &self.path {
            write_atomic(path, &leader)?;
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(leader);
        Ok(Admitted::Advanced {
            previous: previous.map(|l| l.term),
        })
    }

    fn read(&self) -> MutexGuard<'_, Option<Leader>> {
        // The guarded value is a plain copy, whole at every moment: a
        // panic elsewhere cannot leave it half written.
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the rule says of a call, before anything is written.
enum Decision {
    /// Admitted as things stand.
    Admit(Admitted),
    /// Admitted once this newer term is recorded.
    Record(u64),
}

/// The rule, against the term in force (`current`).
fn decide(current: Option<Leader>, term: Option<u64>) -> Result<Decision, TermError> {
    match (current, term) {
        (None, None) => Ok(Decision::Admit(Admitted::Unfenced)),
        (None, Some(t)) => Ok(Decision::Record(t)),
        (Some(l), Some(t)) if t == l.term => Ok(Decision::Admit(Admitted::Current)),
        (Some(l), Some(t)) if t > l.term => Ok(Decision::Record(t)),
        (Some(l), term) => Err(TermError::Stale {
            term,
            current: l.term,
            node: l.node,
        }),
    }
}

/// Writes `leader` to `path`, mode 0600, atomically and durably
/// ([`private_fs::write_atomic`]). One writer at a time (the gate's lock)
/// and one daemon per data directory: its fixed temporary name is enough.
fn write_atomic(path: &Path, leader: &Leader) -> Result<(), TermError> {
    // A term and a node id never fail to encode.
    let bytes = serde_json::to_vec(leader).unwrap_or_default();
    Ok(private_fs::write_atomic(path, &bytes)?)
}

/// The query parameter, wherever it sits among the others.
#[derive(Deserialize)]
struct TermQuery {
    term: Option<u64>,
}

fn answer(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(WireError::new(code, message))).into_response()
}

/// The agent's middleware: holds every call to the gate of `s.terms`, if
/// any. It must sit inside the signed layer (a `route_layer` added before
/// it): the caller it records is the signer the layer admitted.
pub(crate) async fn check(State(s): State<AgentState>, req: Request, next: Next) -> Response {
    let Some(gate) = s.terms.as_ref() else {
        return next.run(req).await;
    };
    let term = match Query::<TermQuery>::try_from_uri(req.uri()) {
        Ok(Query(q)) => q.term,
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the `{TERM_PARAM}` query parameter is not one term: {e}"),
            )
        }
    };
    let Some(Signer(caller)) = req.extensions().get::<Signer<NodeId>>().cloned() else {
        error!("the agent's term check ran outside its signed layer");
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "operation",
            "the agent could not tell who called".into(),
        );
    };
    match gate.admit_async(term, caller).await {
        Ok(Admitted::Advanced { previous }) => {
            info!(term, ?previous, caller = %caller.short(),
                "a newer control-plane term is in force");
            next.run(req).await
        }
        Ok(_) => next.run(req).await,
        Err(e @ TermError::Stale { current, node, .. }) => {
            warn!(term, current, leader = %node.short(), caller = %caller.short(),
                path = req.uri().path(), "agent call refused: stale control-plane term");
            answer(StatusCode::CONFLICT, STALE_TERM, e.to_string())
        }
        Err(e) => {
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            error!(term, caller = %caller.short(), error = %e, cause,
                "agent call refused: a newer control-plane term could not be recorded");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "operation",
                format!(
                    "this node could not record control-plane term {}",
                    term.unwrap_or_default()
                ),
            )
        }
    }
}

#[cfg(test)]
#[path = "term_tests.rs"]
mod tests;
