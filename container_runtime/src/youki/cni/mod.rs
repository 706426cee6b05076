//! Bridge networking through the standard CNI plugins (issue 16, SPEC §9).
//!
//! We write no plumbing the plugins already do: each instance's network
//! namespace is joined to the node's bridge by running the plugins of
//! Debian's `containernetworking-plugins` (`bridge` with `host-local` IPAM,
//! `portmap`, `firewall`, and `loopback` for `lo`) as the CNI specification
//! 1.0.0 says — ADD, CHECK and DEL with the configuration on stdin and the
//! `CNI_*` environment.
//!
//! - [`plugins`]: finding the plugins in a bin dir, and saying which are missing.
//! - [`config`]: the node's network ([`CniConfig`]) and the configuration list
//!   the plugins are given.
//! - [`exec`]: running one plugin with a timeout, and reading its result or
//!   its error JSON.
//! - [`network`]: [`CniNetwork`], chaining the plugins for ADD, CHECK and DEL.
//! - `kept`: each attachment's record on disk (written before ADD, with the
//!   result after), so that DEL, also after a daemon restart or a crash
//!   halfway through ADD, hands the plugins what they need to remove exactly
//!   what ADD made; [`CniNetwork::attachments`] lists the records.
//! - [`warm`]: [`WarmPool`], a few attachments made ahead of time for
//!   containers yet to come, and [`CniNetwork::publish`] adding published
//!   ports to one.
//! - [`netns`]: named network namespaces, made the way `ip netns add` does.
//! - [`guard`]: instances kept off the node itself (its gossip, API and
//!   agent ports), by one `INPUT` rule for the bridge.
//! - [`instance`]: [`CniNetwork::attach`] and [`CniNetwork::detach`], an
//!   instance's namespace and attachment made and removed as one step, in
//!   the order exact cleanup needs, and [`CniNetwork::gc`] for what a dead
//!   daemon left.
//!
//! Order matters on teardown: DEL runs while the namespace still exists,
//! then the namespace is removed. The `bridge` plugin (1.1.1) learns the
//! addresses whose masquerade rules it removes from the interface inside the
//! namespace; with the namespace gone (or the address removed inside it) it
//! releases the lease but leaves those rules, so `sweep` removes exactly the
//! rules commented with the network and container after DEL.

pub mod config;
pub mod exec;
pub mod guard;
pub mod instance;
mod iptables;
pub mod isolation;
mod kept;
pub mod netns;
pub mod network;
pub mod overlay;
pub mod plugins;
pub mod result;
mod sweep;
pub mod warm;

use std::path::PathBuf;
use std::time::Duration;

pub use config::{CniConfig, Ipv4Subnet, DEFAULT_HOST_PORT_RANGE};
pub use instance::{InstanceNetwork, INSTANCE_IFNAME};
pub use netns::NetNs;
pub use network::{AttachRequest, CniNetwork};
pub use plugins::{check_plugins, REQUIRED_PLUGINS};
pub use result::{Attachment, IpConfig, PortMapping};
pub use warm::WarmPool;

/// The CNI specification version of the configurations we write.
pub const CNI_VERSION: &str = "1.0.0";

/// The CNI commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Attach a container to the network.
    Add,
    /// Check that an attachment is still as ADD made it.
    Check,
    /// Remove an attachment (idempotent).
    Del,
}

impl Command {
    /// The value of `CNI_COMMAND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Check => "CHECK",
            Self::Del => "DEL",
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failures of the CNI layer.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// Plugins the bridge network needs are not in the bin dir.
    #[error(
        "CNI plugins missing from {dir}: {} (install Debian's containernetworking-plugins, or pass --cni-bin-dir)",
        missing.join(", ")
    )]
    PluginsMissing {
        /// The directory searched.
        dir: PathBuf,
        /// The plugins not found there (or not executable).
        missing: Vec<String>,
    },
    /// A setting of the network is invalid.
    #[error("invalid CNI network setting {field}: {reason}")]
    InvalidSetting {
        /// The setting (`subnet`, `bridge`, `name`, `container_id`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A plugin could not be started.
    #[error("starting CNI plugin {plugin} for {command}: {source}")]
    Spawn {
        /// The plugin's type.
        plugin: String,
        /// The command it was run for.
        command: Command,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// A plugin did not finish in time (it was killed).
    #[error("CNI plugin {plugin} did not finish {command} within {after:?}")]
    Timeout {
        /// The plugin's type.
        plugin: String,
        /// The command it was run for.
        command: Command,
        /// The time it was given.
        after: Duration,
    },
    /// A plugin failed and said why, as the specification's error JSON.
    #[error("CNI plugin {plugin} failed {command} (code {code}): {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
    Plugin {
        /// The plugin's type.
        plugin: String,
        /// The command it was run for.
        command: Command,
        /// The error code (1-99 are the specification's, 100+ the plugin's).
        code: u32,
        /// The message.
        msg: String,
        /// Further details (may be empty).
        details: String,
    },
    /// A plugin failed without the specification's error JSON.
    #[error("CNI plugin {plugin} failed {command} ({status}): {output}")]
    PluginFailed {
        /// The plugin's type.
        plugin: String,
        /// The command it was run for.
        command: Command,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed (stdout, then stderr), trimmed.
        output: String,
    },
    /// A plugin succeeded but its result cannot be read.
    #[error("reading the result of CNI plugin {plugin} for {command}: {reason}")]
    BadResult {
        /// The plugin's type.
        plugin: String,
        /// The command it was run for.
        command: Command,
        /// What is wrong with it.
        reason: String,
    },
    /// CHECK of an attachment that ADD never made (or DEL removed).
    #[error("no CNI attachment of container {container_id} on {ifname}")]
    NotAttached {
        /// The container.
        container_id: String,
        /// Its interface.
        ifname: String,
    },
    /// ADD of an attachment that exists (DEL it first).
    #[error("container {container_id} is already attached on {ifname}")]
    AlreadyAttached {
        /// The container.
        container_id: String,
        /// Its interface.
        ifname: String,
    },
    /// Reading or writing the kept attachment results failed.
    #[error("{action} {}: {source}", path.display())]
    Cache {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Creating or removing a network namespace failed.
    #[error("{action} network namespace {}: {source}", path.display())]
    Netns {
        /// What was being done.
        action: &'static str,
        /// The namespace's file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result of the CNI layer.
pub type Result<T, E = CniError> = std::result::Result<T, E>;
