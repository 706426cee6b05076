//! DNS answers per second from one node's server (issue 16's benchmarks):
//! clients on loopback ask for a workload name of their owner over UDP, as
//! instances do, with a fixed number of queries in flight; the table holds
//! 1,000 workloads of 100 owners and 10,000 instances. The baseline,
//! measured in the same run with the same clients: a UDP echo server on
//! loopback (what the sockets and the kernel cost without any DNS).
//!
//! Run: `cargo bench -p orchestrator_dns --bench answers`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use orchestrator_dns::{DnsServer, DnsServerConfig, NameTable, Names};
use orchestrator_shared_types::{
    InstanceStatus, NodeId, PublicKey, WorkloadDefinition, WorkloadInstance, WorkloadSpec,
};
use tokio::net::UdpSocket;

/// Clients, each with this many queries in flight.
const CLIENTS: usize = 8;
const IN_FLIGHT: usize = 16;
const RUN: Duration = Duration::from_secs(3);

fn table() -> Names {
    let mut workloads = Vec::new();
    let mut instances = Vec::new();
    for w in 0..1000u32 {
        let owner = u8::try_from(w % 100).unwrap();
        let spec = WorkloadSpec::from_yaml(&format!(
            "name: web{w}\ncontainers: [{{name: main, image: x}}]\n"
        ))
        .unwrap();
        let def = WorkloadDefinition::new(PublicKey([owner; 32]), spec);
        for i in 0..10u32 {
            let mut inst = WorkloadInstance::pending(def.id, def.generation, NodeId([1; 32]));
            inst.transition(InstanceStatus::Running, None, chrono::Utc::now())
                .unwrap();
            inst.ready = true;
            let n = w * 10 + i + 2;
            inst.address = Some(Ipv4Addr::new(10, 88, (n >> 8) as u8, n as u8).to_string());
            instances.push(inst);
        }
        workloads.push(def);
    }
    // The clients (127.0.0.1) are instances of owner 0, which has web0.
    let client = WorkloadDefinition::new(
        PublicKey([0; 32]),
        WorkloadSpec::from_yaml("name: client\ncontainers: [{name: main, image: x}]\n").unwrap(),
    );
    let mut me = WorkloadInstance::pending(client.id, client.generation, NodeId([1; 32]));
    me.transition(InstanceStatus::Running, None, chrono::Utc::now())
        .unwrap();
    me.address = Some("127.0.0.1".into());
    workloads.push(client);
    instances.push(me);
    Names::build(&workloads, &instances)
}

fn query(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_str("web0.univrs.internal.").unwrap(),
        RecordType::A,
    ));
    m.to_vec().unwrap()
}

/// Answers per second from `server`: each client keeps `IN_FLIGHT` queries
/// out, sending one more per answer.
async fn measure(server: SocketAddr, check: fn(&[u8]) -> bool) -> f64 {
    let deadline = Instant::now() + RUN;
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        clients.push(tokio::spawn(async move {
            let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sock.connect(server).await.unwrap();
            let q = query(u16::try_from(c).unwrap());
            for _ in 0..IN_FLIGHT {
                sock.send(&q).await.unwrap();
            }
            let mut answers = 0u64;
            let mut buf = [0u8; 1500];
            while Instant::now() < deadline {
                // A lost datagram (no answer): another is put in flight.
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await
                {
                    assert!(check(&buf[..n]), "a wrong answer");
                    answers += 1;
                }
                sock.send(&q).await.unwrap();
            }
            answers
        }));
    }
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    total as f64 / RUN.as_secs_f64()
}

fn a_records(bytes: &[u8]) -> bool {
    Message::from_vec(bytes).is_ok_and(|m| m.answers.len() == 10)
}

fn echoed(bytes: &[u8]) -> bool {
    !bytes.is_empty()
}

/// A UDP server that sends every datagram back.
async fn echo_server() -> SocketAddr {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    addr
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let names = table();
        let t = NameTable::new();
        t.replace(names);
        let table = Arc::new(t);
        let cfg = DnsServerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            upstream: false,
            local: None,
        };
        let server = DnsServer::start(&cfg, table).await.unwrap();
        let dns = measure(server.local_addrs()[0], a_records).await;
        let echo = measure(echo_server().await, echoed).await;
        println!(
            "DNS answers per second, one server, {CLIENTS} clients x {IN_FLIGHT} in flight, \
             10 A records each (1,000 workloads, 10,000 instances): {dns:.0}/s; \
             UDP echo baseline on the same sockets: {echo:.0}/s ({:.2} of the baseline)",
            dns / echo
        );
        server.stop().await;
    });
}
