//! Mutual TLS between the nodes of a cluster (SPEC §8, §11): agent calls,
//! forwarded `/api/v1` and `/mcp` requests, joins and reachability probes
//! travel encrypted, and each end knows which node is at the other.
//!
//! - **A certificate is a node key.** Each node presents a self-signed X.509
//!   certificate ([rcgen], signed by its node Ed25519 key through
//!   ed25519-dalek) whose public key *is* its node id. No CA: what a
//!   certificate proves is that the peer holds the private key of the node id
//!   in it (the TLS 1.3 `CertificateVerify` signature), and each side decides
//!   itself whether that node id is one it deals with.
//! - **A client accepts only the node it meant to reach** ([`NodeTls::client_config`]):
//!   a member that advertises another node's address gets a handshake
//!   failure, not a connection to that node under its name.
//! - **A server accepts only admitted members** ([`serve`]): a client
//!   certificate whose node id is not a member is refused after the
//!   handshake, before a byte of HTTP, and again on each request, so a member
//!   removed while connected is refused within one membership update. A
//!   client without a certificate (a joining node, a user's tool) gets a
//!   connection on which the node agent refuses every call and the API
//!   authenticates each request by its signature, as on plain HTTP.
//! - **One port.** The API port takes both TLS and plain HTTP, told apart by
//!   the first byte (a TLS handshake record starts with 0x16, which no HTTP
//!   method does), so users' tools keep their `http://` address and node
//!   records need no second one.
//!
//! Crates: rustls on the aws-lc-rs provider (already built for reqwest),
//! TLS 1.3 only; rcgen without a crypto backend of its own.

mod clients;
mod serve;

pub use clients::{ClientError, PeerClients};
pub use serve::{serve, Members, PeerInfo, PeerIo, PeerListener};

use std::sync::Arc;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::{Signer, SigningKey};
use orchestrator_shared_types::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node certificate could not be made.
    #[error("making the node certificate: {0}")]
    Certificate(String),
    /// rustls refused the configuration.
    #[error("configuring TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the
/// algorithm identifier, then the BIT STRING holding the 32-byte key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The node id a certificate stands for: its Ed25519 public key. `None` for
/// anything else (another algorithm, a malformed certificate).
pub fn node_of(cert: &CertificateDer<'_>) -> Option<NodeId> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let key = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    Some(NodeId(key.try_into().ok()?))
}

/// The node id of the peer at the other end of a finished handshake.
pub fn peer_node(certs: Option<&[CertificateDer<'_>]>) -> Option<NodeId> {
    certs.and_then(<[_]>::first).and_then(node_of)
}

/// This node's TLS identity: its certificate and key, and the rustls
/// configurations made from them.
pub struct NodeTls {
    node: NodeId,
    provider: Arc<CryptoProvider>,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    server: Arc<ServerConfig>,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTls")
            .field("node", &self.node.short())
            .finish_non_exhaustive()
    }
}

/// rcgen signs the certificate with the node key, through ed25519-dalek.
struct CertSigner<'a>(&'a SigningKey, [u8; 32]);

impl rcgen::PublicKeyData for CertSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.1
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for CertSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl NodeTls {
    /// The TLS identity of the node whose key is `key`.
    pub fn new(key: &SigningKey) -> Result<Self, Error> {
        let node = NodeId(key.verifying_key().to_bytes());
        let mut params = rcgen::CertificateParams::new(vec![format!("{node}.node.univrs")])
            .map_err(|e| Error::Certificate(e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, node.to_string());
        // Positive, and fixed by the key: a certificate made again is the same.
        let mut serial = [0_u8; 8];
        serial.copy_from_slice(&node.0[..8]);
        params.serial_number = Some(rcgen::SerialNumber::from(u64::from_be_bytes(serial) >> 1));
        // Long enough never to matter: what a peer checks is the key.
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(4000, 1, 1);
        let signer = CertSigner(key, key.verifying_key().to_bytes());
        let cert = params
            .self_signed(&signer)
            .map_err(|e| Error::Certificate(e.to_string()))?
            .der()
            .clone();
        let der = key
            .to_pkcs8_der()
            .map_err(|e| Error::Certificate(format!("encoding the node key: {e}")))?;
        let key = PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
        let provider = provider();
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(AnyNode(Arc::clone(&provider))))
            .with_single_cert(vec![cert.clone()], PrivateKeyDer::Pkcs8(key.clone_key()))?;
        Ok(Self {
            node,
            provider,
            cert,
            key,
            server: Arc::new(server),
        })
    }

    /// The node this identity is.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The server side: offers client authentication, and takes a client
    /// certificate only with the proof of its Ed25519 key (whether that node
    /// is a member is [`serve`]'s question).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server)
    }

    /// A client that presents this node's certificate and accepts only
    /// `peer`'s.
    pub fn client_config(&self, peer: NodeId) -> Result<ClientConfig, Error> {
        Ok(
            ClientConfig::builder_with_provider(Arc::clone(&self.provider))
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(OnlyNode(
                    peer,
                    Arc::clone(&self.provider),
                )))
                .with_client_auth_cert(
                    vec![self.cert.clone()],
                    PrivateKeyDer::Pkcs8(self.key.clone_key()),
                )?,
        )
    }

    /// A client with no certificate of its own that accepts only `peer`'s:
    /// for a node asking to join, which is no member yet.
    pub fn anonymous_client_config(peer: NodeId) -> Result<ClientConfig, Error> {
        let provider = provider();
        Ok(ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(OnlyNode(peer, provider)))
            .with_no_client_auth())
    }
}

/// An HTTP client over `config`, for one peer.
pub fn http_client(
    config: ClientConfig,
    connect_timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .build()
}

/// The URL of `path` on the node at `address` (`HOST:PORT`), over TLS.
pub fn url(address: &str, path: &str) -> String {
    format!("https://{address}{path}")
}

fn verify_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::NoSignatureSchemesInCommon,
        ));
    }
    verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::General("nodes speak TLS 1.3 only".into())
}

fn not_a_node_key() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
}

/// Accepts the server only if its certificate is `.0`'s key.
#[derive(Debug)]
struct OnlyNode(NodeId, Arc<CryptoProvider>);

impl ServerCertVerifier for OnlyNode {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match node_of(end_entity) {
            Some(id) if id == self.0 => Ok(ServerCertVerified::assertion()),
            Some(id) => {
                tracing::warn!(expected = %self.0.short(), presented = %id.short(),
                    "a peer presented another node's certificate: refused");
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName,
                ))
            }
            None => Err(not_a_node_key()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.1, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Takes any client certificate that is a node key (membership is checked
/// after the handshake); a client may also present none.
#[derive(Debug)]
struct AnyNode(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyNode {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        node_of(end_entity)
            .map(|_| ClientCertVerified::assertion())
            .ok_or_else(not_a_node_key)
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.0, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
