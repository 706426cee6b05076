//! The DNS server: hickory-server's UDP and TCP front, our answers.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use orchestrator_shared_types::{PublicKey, WorkloadId};
use tracing::{debug, warn};

use crate::{Answer, NameTable, TTL_SECONDS};

/// How long a query from an address nobody knows yet waits for the node to
/// learn it (with [`DnsServerConfig::local`] only): an instance may ask in
/// its first milliseconds.
const NEW_CLIENT_WAIT: Duration = Duration::from_secs(1);

/// A TCP client that sends no query within this is dropped.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server listens and whom it asks for other names.
#[derive(Clone)]
pub struct DnsServerConfig {
    /// UDP and TCP addresses (a node's bridge gateway, port 53). They need
    /// not exist yet: the sockets are bound with `IP_FREEBIND`, so the
    /// server answers as soon as the CNI plugins give the bridge its address.
    pub listen: Vec<SocketAddr>,
    /// Forward names outside the cluster to the host's resolvers
    /// (`/etc/resolv.conf`); off: they are refused.
    pub upstream: bool,
    /// Asked about a client the table does not know yet.
    pub local: Option<Arc<dyn LocalInstances>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsServerError {
    /// A socket could not be bound.
    #[error("DNS server: binding {addr} ({proto}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        proto: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The host's resolver configuration could not be read.
    #[error("DNS server: the host's resolvers (/etc/resolv.conf): {0}")]
    Upstream(String),
}

/// A running DNS server; stops when dropped or [`DnsServer::stop`]ped.
pub struct DnsServer {
    server: Server<Handler>,
    local: Vec<SocketAddr>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("local", &self.local)
            .finish()
    }
}

impl DnsServer {
    /// Binds every address of `cfg` (UDP and TCP) and answers from `table`.
    pub async fn start(
        cfg: &DnsServerConfig,
        table: Arc<NameTable>,
    ) -> Result<Self, DnsServerError> {
        let upstream = if cfg.upstream {
            let resolver = TokioResolver::builder_tokio()
                .map_err(|e| DnsServerError::Upstream(e.to_string()))?
                .build()
                .map_err(|e| DnsServerError::Upstream(e.to_string()))?;
            Some(resolver)
        } else {
            None
        };
        let mut server = Server::new(Handler {
            table,
            upstream,
            local: cfg.local.clone(),
        });
        let mut local = Vec::new();
        for &addr in &cfg.listen {
            let udp = bind(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
            let udp =
                tokio::net::UdpSocket::from_std(udp.into()).map_err(bind_failed(addr, "udp"))?;
            let bound = udp.local_addr().unwrap_or(addr);
            local.push(bound);
            // TCP on the same port as UDP (an ephemeral port is chosen once).
            let tcp = bind(bound, socket2::Type::STREAM, socket2::Protocol::TCP)?;
            tcp.listen(128).map_err(bind_failed(bound, "tcp"))?;
            let tcp =
                tokio::net::TcpListener::from_std(tcp.into()).map_err(bind_failed(bound, "tcp"))?;
            server.register_socket(udp);
            server.register_listener(tcp, TCP_TIMEOUT, 64);
        }
        Ok(Self { server, local })
    }

    /// The addresses it listens on (ports resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Stops answering and waits for the sockets to close.
    pub async fn stop(mut self) {
        if let Err(e) = self.server.shutdown_gracefully().await {
            debug!(error = %e, "DNS server stopped");
        }
    }
}

/// The error of binding `addr` over `proto`.
fn bind_failed(addr: SocketAddr, proto: &'static str) -> impl Fn(std::io::Error) -> DnsServerError {
    move |source| DnsServerError::Bind {
        addr,
        proto,
        source,
    }
}

/// A non-blocking socket bound to `addr`, which need not exist yet. Only
/// TCP reuses an address (its connections in TIME_WAIT): a second UDP
/// server on the same address (another daemon on the same bridge) is
/// refused rather than silently given half of the queries.
fn bind(
    addr: SocketAddr,
    ty: socket2::Type,
    proto: socket2::Protocol,
) -> Result<socket2::Socket, DnsServerError> {
    let tcp = ty == socket2::Type::STREAM;
    let failed = bind_failed(addr, if tcp { "tcp" } else { "udp" });
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), ty, Some(proto))
        .map_err(&failed)?;
    if addr.is_ipv4() {
        socket.set_freebind_v4(true).map_err(&failed)?;
    }
    if tcp {
        socket.set_reuse_address(true).map_err(&failed)?;
    }
    socket.set_nonblocking(true).map_err(&failed)?;
    socket.bind(&addr.into()).map_err(&failed)?;
    Ok(socket)
}

/// Which workload an instance on this node belongs to, by its address:
/// the node's runtime knows as soon as it gives the address, before the
/// store hears of it (an instance may ask for a name the moment it starts).
#[async_trait::async_trait]
pub trait LocalInstances: Send + Sync {
    /// The workload of the local instance at `addr`, if any.
    async fn workload_at(&self, addr: Ipv4Addr) -> Option<WorkloadId>;
}

/// Answers one query from the table, or upstream.
struct Handler {
    table: Arc<NameTable>,
    upstream: Option<TokioResolver>,
    local: Option<Arc<dyn LocalInstances>>,
}

impl Handler {
    /// The owner of the instance at `client`: the store's records, else the
    /// node's runtime.
    async fn owner(&self, client: std::net::IpAddr) -> Option<PublicKey> {
        if let Some(owner) = self.table.owner_of(client) {
            return Some(owner);
        }
        let (Some(local), std::net::IpAddr::V4(v4)) = (&self.local, client) else {
            return None;
        };
        let w = local.workload_at(v4).await?;
        self.table.owner_of_workload(&w)
    }

    /// The records and code for one question from `client`.
    async fn resolve(
        &self,
        client: std::net::IpAddr,
        name: &Name,
        qtype: RecordType,
    ) -> (ResponseCode, Vec<Record>, bool) {
        let query = name.to_ascii();
        let mut owner = self.owner(client).await;
        if owner.is_none() && self.local.is_some() && NameTable::is_cluster_name(&query) {
            // An instance in its first moments: its process may ask before
            // the runtime has recorded it (or the store heard of it).
            let deadline = tokio::time::Instant::now() + NEW_CLIENT_WAIT;
            while owner.is_none() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                owner = self.owner(client).await;
            }
        }
        match self.table.answer_for(owner, &query) {
            Answer::Addresses(addrs) => {
                let records = if matches!(qtype, RecordType::A | RecordType::ANY) {
                    addrs
                        .into_iter()
                        .map(|ip| Record::from_rdata(name.clone(), TTL_SECONDS, RData::A(A(ip))))
                        .collect()
                } else {
                    Vec::new()
                };
                (ResponseCode::NoError, records, true)
            }
            Answer::NoSuchName => (ResponseCode::NXDomain, Vec::new(), true),
            Answer::Upstream => {
                let Some(resolver) = &self.upstream else {
                    return (ResponseCode::Refused, Vec::new(), false);
                };
                match resolver.lookup(name.clone(), qtype).await {
                    Ok(lookup) => (ResponseCode::NoError, lookup.answers().to_vec(), false),
                    Err(e) if e.is_nx_domain() => (ResponseCode::NXDomain, Vec::new(), false),
                    Err(e) if e.is_no_records_found() => (ResponseCode::NoError, Vec::new(), false),
                    Err(e) => {
                        debug!(%name, error = %e, "upstream lookup failed");
                        (ResponseCode::ServFail, Vec::new(), false)
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let builder = MessageResponseBuilder::from_message_request(request);
        let queries = request.queries.queries();
        let (code, records, authoritative) = if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            (ResponseCode::NotImp, Vec::new(), false)
        } else if queries.len() != 1 {
            (ResponseCode::FormErr, Vec::new(), false)
        } else {
            let q = &queries[0];
            let name = Name::from(q.name().clone());
            self.resolve(request.src().ip(), &name, q.query_type())
                .await
        };
        metadata.response_code = code;
        metadata.authoritative = authoritative;
        metadata.recursion_available = self.upstream.is_some();
        let response = builder.build(
            metadata,
            records.iter(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                warn!(error = %e, "DNS: sending an answer");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata: failed,
                    counts: Default::default(),
                })
            }
        }
    }
}
