//! A small client of the OCI distribution API (`/v2/`: token auth,
//! manifests, blobs) that trusts nothing a registry sends. Every body read
//! into memory (a manifest, a token, an error message) is read chunk by chunk
//! and cut off at a cap, so a registry that streams forever costs at most the
//! cap; blobs are handed out as streams for [`store_verified`](super::blob)
//! to cut at their declared size.
//!
//! oci-client, whose reference parsing, manifest types and platform
//! selection we keep, reads these responses whole (`Response::bytes`) with no
//! bound, which is why its `Client` is not used to talk to registries.

use std::io;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use http_auth::parser::ChallengeParser;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::Reference;
use reqwest::header::{ACCEPT, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::RegistryCredentials;

/// Most bytes of a token response read.
const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// Most bytes of an error response quoted in an error message.
const MAX_ERROR_BYTES: usize = 1 << 10;

/// Why a registry request gave nothing usable.
#[derive(Debug)]
pub(super) enum FetchError {
    /// The body is longer than the cap given (at least `seen` bytes arrived or
    /// were announced).
    TooLarge { seen: u64 },
    /// The request failed or the registry refused it (the message says which).
    Failed(String),
}

/// The HTTP client, with the rule of which registries are plain HTTP.
pub(super) struct Registry {
    http: reqwest::Client,
    insecure: Vec<String>,
}

/// How to talk to one repository: its URL and the credentials to send.
pub(super) struct Session {
    base: String,
    auth: Auth,
}

enum Auth {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
}

impl Registry {
    /// A client reaching `insecure` registries (`HOST:PORT`) over plain HTTP.
    pub(super) fn new(insecure: Vec<String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("univrs-orchestrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("creating the registry client: {e}"))?;
        Ok(Self { http, insecure })
    }

    /// Authenticates for pulling `parsed`'s repository: anonymously, with
    /// HTTP basic, or with a bearer token from the realm the registry names.
    pub(super) async fn session(
        &self,
        parsed: &Reference,
        creds: Option<&RegistryCredentials>,
    ) -> Result<Session, FetchError> {
        let registry = parsed.resolve_registry();
        let scheme = if self.insecure.iter().any(|r| r == registry) {
            "http"
        } else {
            "https"
        };
        let root = format!("{scheme}://{registry}/v2/");
        let res = self
            .http
            .get(&root)
            .send()
            .await
            .map_err(|e| failed(format!("reaching {root}: {e}")))?;
        let challenge = res
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        drop(res);
        let auth = match challenge.as_deref().map(bearer_challenge) {
            None => Auth::Anonymous,
            Some(Some((realm, service))) => Auth::Bearer(
                self.token(&realm, service.as_deref(), parsed.repository(), creds)
                    .await?,
            ),
            Some(None) => creds.map_or(Auth::Anonymous, |c| Auth::Basic {
                username: c.username.clone(),
                password: c.password.clone(),
            }),
        };
        Ok(Session {
            base: format!("{root}{}", parsed.repository()),
            auth,
        })
    }

    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        repository: &str,
        creds: Option<&RegistryCredentials>,
    ) -> Result<String, FetchError> {
        let scope = format!("repository:{repository}:pull");
        let mut query = vec![("scope", scope.as_str())];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut req = self.http.get(realm).query(&query);
        if let Some(c) = creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let res = send(req, realm).await?;
        let body = read_capped(res, MAX_TOKEN_BYTES)
            .await
            .map_err(|e| match e {
                FetchError::TooLarge { seen } => failed(format!(
                    "token response of {realm} is larger than {MAX_TOKEN_BYTES} bytes ({seen} seen)"
                )),
                other => other,
            })?;
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("parsing the token response of {realm}: {e}")))?;
        token
            .token
            .or(token.access_token)
            .ok_or_else(|| failed(format!("the token response of {realm} has no token")))
    }

    /// The manifest or index named by `reference` (a tag or a digest), at
    /// most `max` bytes, and the digest the registry announced for it.
    pub(super) async fn manifest(
        &self,
        s: &Session,
        reference: &str,
        max: u64,
    ) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let url = format!("{}/manifests/{reference}", s.base);
        let accept = [
            OCI_IMAGE_MEDIA_TYPE,
            OCI_IMAGE_INDEX_MEDIA_TYPE,
            IMAGE_MANIFEST_MEDIA_TYPE,
            IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        ]
        .join(", ");
        let req = s.authorize(self.http.get(&url).header(ACCEPT, accept));
        let res = send(req, &url).await?;
        let digest = res
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        Ok((read_capped(res, max).await?, digest))
    }

    /// The blob `digest` as a stream, with the length the registry announced.
    pub(super) async fn blob(
        &self,
        s: &Session,
        digest: &str,
    ) -> Result<
        (
            Option<u64>,
            impl Stream<Item = io::Result<bytes::Bytes>> + Unpin + use<>,
        ),
        FetchError,
    > {
        let url = format!("{}/blobs/{digest}", s.base);
        let res = send(s.authorize(self.http.get(&url)), &url).await?;
        let length = res.content_length();
        Ok((length, res.bytes_stream().map_err(io::Error::other)))
    }
}

impl Session {
    fn authorize(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.auth {
            Auth::Anonymous => req,
            Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
            Auth::Bearer(token) => req.bearer_auth(token),
        }
    }
}

fn failed(reason: String) -> FetchError {
    FetchError::Failed(reason)
}

/// Sends `req`; a status other than 200 becomes an error quoting at most
/// [`MAX_ERROR_BYTES`] of the body.
async fn send(req: RequestBuilder, url: &str) -> Result<Response, FetchError> {
    let res = req
        .send()
        .await
        .map_err(|e| failed(format!("requesting {url}: {e}")))?;
    match res.status() {
        StatusCode::OK => Ok(res),
        // oci-client's wording, which operators already know.
        StatusCode::UNAUTHORIZED => Err(failed(format!("Not authorized: url {url}"))),
        status => {
            let body = read_capped(res, MAX_ERROR_BYTES as u64).await;
            let message = match &body {
                Ok(bytes) => String::from_utf8_lossy(bytes).trim().to_owned(),
                Err(_) => "(body too long or unreadable)".to_owned(),
            };
            Err(failed(format!(
                "the registry answered {status} to {url}: {message}"
            )))
        }
    }
}

/// The body of `res`, refused as soon as it announces or sends more than `max` bytes.
async fn read_capped(mut res: Response, max: u64) -> Result<Vec<u8>, FetchError> {
    if let Some(len) = res.content_length().filter(|l| *l > max) {
        return Err(FetchError::TooLarge { seen: len });
    }
    let url = res.url().to_string();
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| failed(format!("reading {url}: {e}")))?
    {
        let seen = (body.len() + chunk.len()) as u64;
        if seen > max {
            return Err(FetchError::TooLarge { seen });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Realm and service of a `Bearer` challenge; `None` for other schemes.
fn bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    ChallengeParser::new(header)
        .filter_map(Result::ok)
        .find(|c| c.scheme.eq_ignore_ascii_case("Bearer"))
        .and_then(|c| {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            Some((param("realm")?, param("service")))
        })
}

#[cfg(test)]
mod tests {
    use super::bearer_challenge;

    #[test]
    fn bearer_challenges_are_parsed_and_others_ignored() {
        assert_eq!(
            bearer_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example""#
            ),
            Some((
                "https://auth.example/token".to_owned(),
                Some("registry.example".to_owned())
            ))
        );
        assert_eq!(bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(bearer_challenge(r#"Bearer service="no realm""#), None);
    }
}
