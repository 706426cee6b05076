//! A packet capture on a lab's bridge: `tcpdump` in the switch namespace,
//! writing every frame between the hosts (the test process's own port
//! excluded: its requests to the hosts are a user's, in plain HTTP by
//! choice) to a pcap file, read back whole.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Lab;

/// A running capture; stopped (SIGINT, so tcpdump flushes) by [`Capture::finish`],
/// killed if dropped.
pub struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Lab {
    /// Starts capturing the traffic between the hosts into `file`.
    pub fn capture(&self, file: &Path) -> Capture {
        let root = self.hosts[0]
            .ip
            .rsplit_once('.')
            .map(|(net, _)| format!("{net}.1"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.switch, "tcpdump", "-i", "br0", "-U"])
            .args(["-s", "0", "-w"])
            .arg(file)
            .args(["not", "host", &root])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tcpdump runs (Debian: tcpdump; scripts/test installs it)");
        // tcpdump writes the pcap header once it listens.
        let started = Instant::now();
        while std::fs::metadata(file).map_or(true, |m| m.len() < 24) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "tcpdump did not start listening on the lab's bridge"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Capture {
            child: Some(child),
            file: file.to_owned(),
        }
    }
}

impl Capture {
    /// Stops the capture and returns the pcap file's bytes.
    pub fn finish(&mut self) -> Vec<u8> {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-INT", &pid]).status();
            let _ = child.wait();
        }
        std::fs::read(&self.file).unwrap()
    }

    /// How many captured packets match the tcpdump filter `filter`.
    pub fn count(&self, filter: &str) -> usize {
        let out = Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&self.file)
            .args(filter.split_whitespace())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether `haystack` contains `needle`, ignoring ASCII case.
pub fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
