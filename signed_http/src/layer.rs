//! The signed-request layer: a tower [`Layer`] that verifies every request
//! ([`read_signed`]), asks an [`Admission`] whether the signer may call,
//! spends the signature in the replay cache, and hands the handlers the
//! caller's identity through [`Signer`] (or the admission's own extensions).
//! A refused request never reaches the inner service; it is reported to the
//! layer's [`OnRefusal`], if any (the REST API counts it in a metric and
//! writes a rate-limited log line).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, Method};
use axum::response::{IntoResponse, Response};
use orchestrator_shared_types::PublicKey;
use tower::{Layer, Service};

use crate::{read_signed, Limits, Rejection, ReplayCache};

/// Who may call, decided by each front-end: the REST API checks its trusted
/// and admin keys (and takes agent tokens), the node agent admits only the
/// live control plane.
pub trait Admission: Clone + Send + Sync + 'static {
    /// What the handlers learn about an admitted caller.
    type Identity: Clone + Send + Sync + 'static;

    /// A credential other than a signature (an agent token, a call the
    /// daemon runs in process): `Some` decides without a signature, `None`
    /// (the default) asks for one.
    fn without_signature(&self, req: &Request) -> Option<Result<Self::Identity, Rejection>> {
        let _ = req;
        None
    }

    /// Whether `key`, whose signature over the request verified, may make
    /// the request described by `parts`.
    fn admit(
        &self,
        key: PublicKey,
        parts: &Parts,
    ) -> impl Future<Output = Result<Self::Identity, Rejection>> + Send;

    /// Hands `identity` to the handlers; by default as a [`Signer`] extension.
    fn attach(&self, identity: Self::Identity, extensions: &mut Extensions) {
        extensions.insert(Signer(identity));
    }
}

/// The identity of the caller of a request that passed the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer<T>(pub T);

impl<S: Send + Sync, T: Clone + Send + Sync + 'static> FromRequestParts<S> for Signer<T> {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
        parts.extensions.get::<Signer<T>>().cloned().ok_or_else(|| {
            Rejection::internal("a route that needs a signer is outside the signed layer")
        })
    }
}

/// Told of every request the layer refuses, with its method and path.
pub type OnRefusal = Arc<dyn Fn(&Rejection, &Method, &str) + Send + Sync>;

/// The layer: body limit, signature, skew, audience, admission, replay cache.
#[derive(Clone)]
pub struct SignedLayer<A> {
    admission: A,
    limits: Limits,
    replays: Arc<ReplayCache>,
    on_refusal: Option<OnRefusal>,
}

impl<A: Admission> SignedLayer<A> {
    /// A layer admitting by `admission`, holding requests to `limits` (its
    /// audience included) and spending signatures in `replays` (share one
    /// cache between routers of one daemon so a request cannot be replayed
    /// against another).
    pub fn new(admission: A, limits: Limits, replays: Arc<ReplayCache>) -> Self {
        Self {
            admission,
            limits,
            replays,
            on_refusal: None,
        }
    }

    /// The same layer, telling `on_refusal` of every request it refuses.
    pub fn on_refusal(mut self, on_refusal: OnRefusal) -> Self {
        self.on_refusal = Some(on_refusal);
        self
    }

    /// Authenticates `req`: the request to pass on, with the identity attached.
    pub async fn authenticate(&self, req: Request) -> Result<Request, Rejection> {
        let (method, path) = match &self.on_refusal {
            Some(_) => (req.method().clone(), req.uri().path().to_owned()),
            None => (Method::GET, String::new()),
        };
        let result = self.authenticate_inner(req).await;
        if let (Err(rejection), Some(report)) = (&result, &self.on_refusal) {
            report(rejection, &method, &path);
        }
        result
    }

    async fn authenticate_inner(&self, req: Request) -> Result<Request, Rejection> {
        let (mut req, identity) = match self.admission.without_signature(&req) {
            Some(identity) => (req, identity?),
            None => {
                let verified = read_signed(req, &self.limits).await?;
                let identity = self.admission.admit(verified.key, &verified.parts).await?;
                (verified.admit(&self.replays)?, identity)
            }
        };
        self.admission.attach(identity, req.extensions_mut());
        Ok(req)
    }
}

impl<S, A: Clone> Layer<S> for SignedLayer<A> {
    type Service = SignedService<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        SignedService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SignedLayer`] wraps around a router or handler.
#[derive(Clone)]
pub struct SignedService<S, A> {
    inner: S,
    layer: SignedLayer<A>,
}

impl<S, A> Service<Request> for SignedService<S, A>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    A: Admission,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The ready service goes with this call; a clone stays for the next
        // (tower's usual pattern for services that call their inner later).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            match layer.authenticate(req).await {
                Ok(req) => inner.call(req).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
