//! The DNS server on real sockets (UDP and TCP on loopback), asked as a
//! resolver would: an instance gets its owner's names, another owner's name
//! and a client that is no instance get NXDOMAIN, a name that is no cluster
//! name is refused without upstream resolvers, a name follows a table
//! change at once, and hostile packets stop nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use orchestrator_dns::{DnsServer, DnsServerConfig, NameTable, Names};
use orchestrator_shared_types::{
    InstanceStatus, NodeId, PublicKey, WorkloadDefinition, WorkloadInstance, WorkloadSpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn workload(owner: u8, name: &str) -> WorkloadDefinition {
    let spec = WorkloadSpec::from_yaml(&format!(
        "name: {name}\ncontainers: [{{name: main, image: x}}]\n"
    ))
    .unwrap();
    WorkloadDefinition::new(PublicKey([owner; 32]), spec)
}

fn running(w: &WorkloadDefinition, addr: &str) -> WorkloadInstance {
    let mut i = WorkloadInstance::pending(w.id, w.generation, NodeId([9; 32]));
    i.transition(InstanceStatus::Running, None, chrono::Utc::now())
        .expect("pending to running");
    i.ready = true;
    i.address = Some(addr.to_owned());
    i
}

/// The table of one cluster: owner 1 has `web` (two instances) and a
/// client at 127.0.0.1 (the test's own address); owner 2 has `db`, whose
/// client is 127.0.0.2.
fn names(web: &[&str]) -> Names {
    let (w, c, d, dc) = (
        workload(1, "web"),
        workload(1, "client"),
        workload(2, "db"),
        workload(2, "dbclient"),
    );
    let mut instances: Vec<WorkloadInstance> = web.iter().map(|a| running(&w, a)).collect();
    instances.push(running(&c, "127.0.0.1"));
    instances.push(running(&d, "10.88.0.9"));
    instances.push(running(&dc, "127.0.0.2"));
    Names::build(&[w, c, d, dc], &instances)
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

async fn ask_udp(from: Ipv4Addr, server: SocketAddr, name: &str) -> Message {
    let sock = UdpSocket::bind((from, 0)).await.unwrap();
    sock.send_to(&query(7, name), server).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 7);
    m
}

async fn ask_tcp(server: SocketAddr, name: &str) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    let q = query(9, name);
    s.write_all(&u16::try_from(q.len()).unwrap().to_be_bytes())
        .await
        .unwrap();
    s.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

fn addresses(m: &Message) -> Vec<Ipv4Addr> {
    let mut a: Vec<Ipv4Addr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    a.sort_unstable();
    a
}

#[tokio::test]
async fn names_resolve_for_their_owner_only_over_udp_and_tcp() {
    let table = Arc::new(NameTable::new());
    table.replace(names(&["10.88.0.2", "10.88.0.3"]));
    let cfg = DnsServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstream: false,
        local: None,
    };
    let server = DnsServer::start(&cfg, Arc::clone(&table)).await.unwrap();
    let addr = server.local_addrs()[0];
    let me = Ipv4Addr::LOCALHOST;
    let two: Vec<Ipv4Addr> = vec!["10.88.0.2".parse().unwrap(), "10.88.0.3".parse().unwrap()];

    for name in ["web.", "web.univrs.internal."] {
        let m = ask_udp(me, addr, name).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(m.metadata.authoritative);
        assert_eq!(addresses(&m), two, "{name}");
        assert!(m.answers.iter().all(|r| r.ttl <= 1), "TTL at most 1 s");
    }
    assert_eq!(addresses(&ask_tcp(addr, "web.").await), two, "over TCP");

    // Another owner's workload: as if it did not exist.
    let m = ask_udp(me, addr, "db.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    // The other owner's client cannot resolve ours.
    let m = ask_udp(Ipv4Addr::new(127, 0, 0, 2), addr, "web.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    // A client that is no instance resolves no cluster name.
    let m = ask_udp(Ipv4Addr::new(127, 0, 0, 3), addr, "web.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    // Without upstream resolvers, other names are refused.
    let m = ask_udp(me, addr, "example.com.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);

    // The table changes (an instance stops being ready): the next answer
    // follows, with nothing cached.
    table.replace(names(&["10.88.0.3"]));
    let m = ask_udp(me, addr, "web.").await;
    assert_eq!(
        addresses(&m),
        vec!["10.88.0.3".parse::<Ipv4Addr>().unwrap()]
    );
    table.replace(names(&[]));
    let m = ask_udp(me, addr, "web.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    server.stop().await;
}

#[tokio::test]
async fn hostile_packets_stop_nothing() {
    let table = Arc::new(NameTable::new());
    table.replace(names(&["10.88.0.2"]));
    let cfg = DnsServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstream: false,
        local: None,
    };
    let server = DnsServer::start(&cfg, table).await.unwrap();
    let addr = server.local_addrs()[0];
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let whole = query(3, "web.");
    // Truncated, garbage, an empty datagram, and a header claiming 65535
    // questions.
    let mut lying = whole.clone();
    lying[4] = 0xff;
    lying[5] = 0xff;
    for bad in [
        whole[..whole.len() / 2].to_vec(),
        vec![0xde; 700],
        Vec::new(),
        lying,
    ] {
        sock.send_to(&bad, addr).await.unwrap();
    }
    // A TCP client that sends a length and then nothing holds nobody up.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(&[0xff, 0xff]).await.unwrap();
    let m = ask_udp(Ipv4Addr::LOCALHOST, addr, "web.").await;
    assert_eq!(
        addresses(&m),
        vec!["10.88.0.2".parse::<Ipv4Addr>().unwrap()],
        "still answering after the garbage"
    );
    assert_eq!(addresses(&ask_tcp(addr, "web.").await).len(), 1);
    server.stop().await;
}

/// Says `client` is the workload `workload`, as a node's runtime would for
/// an instance it just started.
struct Local(Ipv4Addr, orchestrator_shared_types::WorkloadId);

#[async_trait::async_trait]
impl orchestrator_dns::LocalInstances for Local {
    async fn workload_at(&self, addr: Ipv4Addr) -> Option<orchestrator_shared_types::WorkloadId> {
        (addr == self.0).then_some(self.1)
    }
}

/// An instance that asks the moment it starts, before the store has its
/// address, is known by its node's runtime and gets its owner's names; an
/// address the runtime does not know still gets none.
#[tokio::test]
async fn a_new_instance_is_known_through_its_nodes_runtime() {
    let (web, client) = (workload(1, "web"), workload(1, "client"));
    let instances = [running(&web, "10.88.0.2")];
    let table = Arc::new(NameTable::new());
    table.replace(Names::build(&[web, client.clone()], &instances));
    let fresh = Ipv4Addr::new(127, 0, 0, 4);
    let cfg = DnsServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        upstream: false,
        local: Some(Arc::new(Local(fresh, client.id))),
    };
    let server = DnsServer::start(&cfg, table).await.unwrap();
    let addr = server.local_addrs()[0];
    let m = ask_udp(fresh, addr, "web.").await;
    assert_eq!(
        addresses(&m),
        vec!["10.88.0.2".parse::<Ipv4Addr>().unwrap()]
    );
    let m = ask_udp(Ipv4Addr::new(127, 0, 0, 5), addr, "web.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    server.stop().await;
}
