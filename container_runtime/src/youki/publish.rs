//! The node ports bridged containers publish (`ports` of the manifest, handed
//! to the `portmap` plugin): a fixed `host_port` as the manifest asks, or a
//! free port from the node's range (`CniConfig::host_port_range`).
//!
//! The book is the runtime's own: the schedulers keep fixed ports apart
//! between instances, and the book keeps them apart from the ports it gave
//! out of the range and from ports a process on the host listens on
//! (`portmap` rewrites destinations, so a mapping would silently shadow
//! such a process). It is rebuilt from the containers' records when a
//! daemon restarts.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::Mutex;

use orchestrator_shared_types::{ContainerId, PortSpec, PublishedPort};

use super::cni::PortMapping;
use super::entry::lock;

/// A node port: its number and whether it is UDP.
type Key = (u16, bool);

#[derive(Debug)]
struct Book {
    taken: BTreeMap<Key, ContainerId>,
    /// Where the next search of the range starts, so that a port just given
    /// back is the last to be given again.
    next: u16,
}

/// The node's published ports, each held by one container.
#[derive(Debug)]
pub(super) struct PortBook {
    range: RangeInclusive<u16>,
    book: Mutex<Book>,
}

impl PortBook {
    /// An empty book giving free ports from `range`.
    pub(super) fn new(range: RangeInclusive<u16>) -> Self {
        let next = *range.start();
        Self {
            range,
            book: Mutex::new(Book {
                taken: BTreeMap::new(),
                next,
            }),
        }
    }

    /// Takes the node ports container `id` publishes: each fixed
    /// `host_port` if no other container holds it and no process on the host
    /// listens on it, a free port of the range for the others. All or
    /// nothing: on an error nothing stays taken.
    pub(super) fn take(
        &self,
        id: &ContainerId,
        ports: &[PortSpec],
    ) -> Result<Vec<PublishedPort>, String> {
        let mut book = lock(&self.book);
        let mut got = Vec::with_capacity(ports.len());
        for p in ports {
            match self.take_one(&mut book, id, p) {
                Ok(published) => got.push(published),
                Err(e) => {
                    book.taken.retain(|_, holder| holder != id);
                    return Err(e);
                }
            }
        }
        Ok(got)
    }

    fn take_one(
        &self,
        book: &mut Book,
        id: &ContainerId,
        p: &PortSpec,
    ) -> Result<PublishedPort, String> {
        let udp = p.protocol.eq_ignore_ascii_case("UDP");
        let proto = if udp { "udp" } else { "tcp" };
        let container_port = u16::try_from(p.container_port)
            .ok()
            .filter(|&c| c != 0)
            .ok_or_else(|| format!("container port {} is not a port", p.container_port))?;
        let host_port = match p.host_port {
            Some(fixed) => {
                let port = u16::try_from(fixed)
                    .ok()
                    .filter(|&h| h != 0)
                    .ok_or_else(|| format!("host port {fixed} is not a port"))?;
                if let Some(holder) = book.taken.get(&(port, udp)) {
                    return Err(format!(
                        "host port {port}/{proto} is already published by container {holder} on this node"
                    ));
                }
                if !free_on_host(port, udp) {
                    return Err(format!(
                        "host port {port}/{proto} is in use on this node by a process outside the orchestrator"
                    ));
                }
                port
            }
            None => self.free_port(book, udp).ok_or_else(|| {
                format!(
                    "no free {proto} port left in this node's range {}-{} to publish container port {container_port}",
                    self.range.start(),
                    self.range.end()
                )
            })?,
        };
        book.taken.insert((host_port, udp), id.clone());
        Ok(PublishedPort {
            container_port,
            host_port,
            protocol: if udp { "UDP" } else { "TCP" }.to_owned(),
        })
    }

    /// A port of the range no container holds and nothing on the host
    /// listens on, searching from where the last search ended.
    fn free_port(&self, book: &mut Book, udp: bool) -> Option<u16> {
        let (start, end) = (*self.range.start(), *self.range.end());
        let span = u32::from(end) - u32::from(start) + 1;
        let from = if self.range.contains(&book.next) {
            book.next
        } else {
            start
        };
        for step in 0..span {
            let offset = (u32::from(from - start) + step) % span;
            let port = u16::try_from(u32::from(start) + offset).ok()?;
            if !book.taken.contains_key(&(port, udp)) && free_on_host(port, udp) {
                book.next = if port == end { start } else { port + 1 };
                return Some(port);
            }
        }
        None
    }

    /// Records the ports an adopted container holds.
    pub(super) fn hold(&self, id: &ContainerId, ports: &[PublishedPort]) {
        let mut book = lock(&self.book);
        for p in ports {
            let udp = p.protocol.eq_ignore_ascii_case("UDP");
            book.taken.insert((p.host_port, udp), id.clone());
        }
    }

    /// Gives back every port container `id` holds.
    pub(super) fn release(&self, id: &ContainerId) {
        lock(&self.book).taken.retain(|_, holder| holder != id);
    }
}

/// What `portmap` is given for `ports`.
pub(super) fn mappings(ports: &[PublishedPort]) -> Vec<PortMapping> {
    ports
        .iter()
        .map(|p| PortMapping {
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: p.protocol.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether nothing on the host listens on `port` (binding it succeeds).
fn free_on_host(port: u16, udp: bool) -> bool {
    if udp {
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
    } else {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(container_port: u32, host_port: Option<u32>) -> PortSpec {
        PortSpec {
            container_port,
            protocol: "TCP".into(),
            name: None,
            host_port,
        }
    }

    fn id(s: &str) -> ContainerId {
        ContainerId(s.into())
    }

    /// A range of `n` ports nothing on this host listens on.
    fn free_range(n: u16) -> RangeInclusive<u16> {
        for start in (41000..60000).step_by(usize::from(n) + 7) {
            if (start..start + n).all(|p| free_on_host(p, false)) {
                return start..=start + n - 1;
            }
        }
        panic!("no {n} free ports on this host");
    }

    #[test]
    fn ports_come_from_the_range_once_each_and_come_back() {
        let range = free_range(2);
        let book = PortBook::new(range.clone());
        let a = book.take(&id("a"), &[port(80, None)]).expect("a");
        let b = book.take(&id("b"), &[port(80, None)]).expect("b");
        assert_ne!(a[0].host_port, b[0].host_port);
        assert!(range.contains(&a[0].host_port) && range.contains(&b[0].host_port));
        let full = book.take(&id("c"), &[port(80, None)]).expect_err("full");
        assert!(full.contains("no free tcp port left"), "{full}");
        book.release(&id("a"));
        let c = book.take(&id("c"), &[port(80, None)]).expect("c");
        assert_eq!(c[0].host_port, a[0].host_port);
    }

    #[test]
    fn a_fixed_port_is_refused_when_held_and_nothing_stays_taken() {
        let range = free_range(1);
        let fixed = u32::from(*range.start());
        let book = PortBook::new(free_range(3));
        book.take(&id("a"), &[port(80, Some(fixed))]).expect("a");
        let err = book
            .take(&id("b"), &[port(81, None), port(80, Some(fixed))])
            .expect_err("held");
        assert!(err.contains("already published by container a"), "{err}");
        // b's first port went back with the refusal.
        assert!(lock(&book.book).taken.values().all(|h| h == &id("a")));
    }

    #[test]
    fn a_port_a_host_process_listens_on_is_never_given() {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
        let busy = listener.local_addr().expect("addr").port();
        let err = PortBook::new(free_range(1))
            .take(&id("a"), &[port(80, Some(u32::from(busy)))])
            .expect_err("busy");
        assert!(err.contains("process outside the orchestrator"), "{err}");
        let book = PortBook::new(busy..=busy);
        assert!(book.take(&id("a"), &[port(80, None)]).is_err());
    }
}
