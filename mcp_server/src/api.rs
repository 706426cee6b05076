//! [`Api`]: how the tools reach the orchestrator, and [`Caller`]: who asked.

use async_trait::async_trait;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::model::Extensions;
use rmcp::ErrorData;
use serde_json::Value;

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API answered with an error (its `{error: {code, message}}`).
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code (`bad_request`, `not_found`, …), when there was one.
        code: Option<String>,
        /// The API's message (it names the bad field).
        message: String,
    },
    /// The daemon could not be reached or the answer was unreadable.
    #[error("cannot reach the orchestrator daemon: {0}")]
    Unreachable(String),
}

/// Who the MCP request came from, as far as the transport knows.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The HTTP request's `Authorization` header (HTTP transport); None on stdio.
    pub authorization: Option<String>,
}

impl Caller {
    /// The caller of the request whose extensions these are: the streamable
    /// HTTP transport puts each HTTP request's `http::request::Parts` there;
    /// stdio puts nothing, which gives the default (anonymous) caller. A
    /// header that is not visible ASCII counts as absent.
    pub fn from_extensions(extensions: &Extensions) -> Self {
        let authorization = extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.headers.get(http::header::AUTHORIZATION))
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Self { authorization }
    }
}

/// A tool (or prompt) handler's argument `caller: Caller`: the caller of the
/// request being handled. Never fails.
impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        Ok(Self::from_extensions(
            &context.as_request_context().extensions,
        ))
    }
}

/// A call to the REST API (docs/API.md) as the user: signed with the user's
/// key on stdio, carrying the caller's agent token over HTTP.
#[async_trait]
pub trait Api: Send + Sync + 'static {
    /// Sends `method path` (path with its query) with an optional JSON body
    /// on behalf of `caller` (an implementation that authenticates by the
    /// caller forwards `caller.authorization` as the `Authorization` header);
    /// the answer's body as text, for every 2xx status.
    async fn request(
        &self,
        caller: &Caller,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<String, ApiError>;
}

/// A fake [`Api`] for the unit tests: it answers every call with one text and
/// remembers the calls.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::Mutex;

    use super::*;

    /// One call the fake received: method, path (with its query) and body.
    pub(crate) type Seen = (String, String, Option<Value>);

    /// Answers every call with `answer` and records it.
    pub(crate) struct FakeApi {
        answer: String,
        seen: Mutex<Vec<Seen>>,
    }

    impl FakeApi {
        pub(crate) fn answering(answer: Value) -> Self {
            Self {
                answer: answer.to_string(),
                seen: Mutex::new(Vec::new()),
            }
        }

        /// The calls received so far, oldest first.
        pub(crate) fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Api for FakeApi {
        async fn request(
            &self,
            _: &Caller,
            method: &str,
            path: &str,
            body: Option<Value>,
        ) -> Result<String, ApiError> {
            let call = (method.to_owned(), path.to_owned(), body);
            self.seen.lock().unwrap().push(call);
            Ok(self.answer.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_the_http_requests_authorization() {
        let (parts, ()) = http::Request::builder()
            .header("authorization", "Bearer univrs-agent-v1.x.y")
            .body(())
            .unwrap()
            .into_parts();
        let mut extensions = Extensions::default();
        extensions.insert(parts);
        let caller = Caller::from_extensions(&extensions);
        assert_eq!(
            caller.authorization.as_deref(),
            Some("Bearer univrs-agent-v1.x.y")
        );
        // stdio: no HTTP request, no credentials
        assert!(Caller::from_extensions(&Extensions::default())
            .authorization
            .is_none());
    }
}
