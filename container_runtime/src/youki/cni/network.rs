//! [`CniNetwork`]: ADD, CHECK and DEL of an instance's attachment, chaining
//! the plugins of the configuration list as the CNI specification says.

use std::path::PathBuf;

use orchestrator_shared_types::private_fs;
use serde_json::{json, Value};
use tracing::{instrument, warn};

use super::config::check_id;
use super::exec::{invoke, plugin_type, Invocation};
use super::kept::Kept;
use super::plugins::check_plugins;
use super::result::{parse_result, Attachment, PortMapping};
use super::sweep::sweep_masquerade;
use super::{CniConfig, CniError, Command, Result};

/// One instance's attachment, as the caller names it.
#[derive(Clone, Debug)]
pub struct AttachRequest {
    /// `CNI_CONTAINERID`: letters, digits, `_`, `.`, `-`.
    pub container_id: String,
    /// The instance's network namespace (a bind-mounted file, see [`super::NetNs`]).
    pub netns: PathBuf,
    /// The interface made inside it (e.g. `eth0`).
    pub ifname: String,
    /// Ports to publish on the node (given to `portmap`).
    pub port_mappings: Vec<PortMapping>,
    /// Made ahead of time for a container yet to come (see [`super::warm`]).
    pub warm: bool,
}

/// A node's bridge network: runs the plugin chain for its instances.
#[derive(Debug)]
pub struct CniNetwork {
    cfg: CniConfig,
    list: Value,
    loopback: Value,
}

impl CniNetwork {
    /// Checks the settings and that every required plugin is in
    /// `cfg.bin_dir`, and creates the lease and result directories.
    pub fn new(cfg: CniConfig) -> Result<Self> {
        cfg.validate()?;
        check_plugins(&cfg.bin_dir)?;
        Self::with_list(cfg.config_list(), cfg)
    }

    /// A network running `list` (a configuration list of the CNI
    /// specification) instead of the one [`CniConfig::config_list`] makes:
    /// for tests, and for operators' own chains. Creates the lease and
    /// result directories; no plugin is checked here, a missing one is named
    /// by the command that needs it.
    pub fn with_list(list: Value, cfg: CniConfig) -> Result<Self> {
        // Private to the daemon's user (0700), like the rest of its data;
        // an older version's directory is made so.
        for dir in [cfg.data_dir.clone(), cfg.lease_dir(), cfg.results_dir()] {
            private_fs::create_dir_all(&dir)
                .and_then(|()| crate::youki::at_rest::tighten_logged(&dir))
                .map_err(|source| CniError::Cache {
                    action: "creating",
                    path: dir.clone(),
                    source,
                })?;
        }
        let loopback = cfg.loopback_config();
        Ok(Self {
            cfg,
            list,
            loopback,
        })
    }

    /// The settings.
    pub fn config(&self) -> &CniConfig {
        &self.cfg
    }

    /// The configuration list the plugins are run from.
    pub fn config_list(&self) -> &Value {
        &self.list
    }

    pub(super) fn plugins(&self) -> Result<&Vec<Value>> {
        self.list["plugins"]
            .as_array()
            .ok_or_else(|| CniError::InvalidSetting {
                field: "plugins",
                reason: "the configuration list has no \"plugins\" array".into(),
            })
    }

    /// A plugin's execution configuration: its own object with the list's
    /// `cniVersion` and `name`, the previous result, and the runtime
    /// configuration of the capabilities it declares.
    pub(super) fn plugin_config(
        &self,
        plugin: &Value,
        prev: Option<&Value>,
        ports: &[PortMapping],
    ) -> Value {
        let mut conf = plugin.clone();
        if let Some(obj) = conf.as_object_mut() {
            obj.insert("cniVersion".into(), self.list["cniVersion"].clone());
            obj.insert("name".into(), self.list["name"].clone());
            if let Some(prev) = prev {
                obj.insert("prevResult".into(), prev.clone());
            }
            if plugin["capabilities"]["portMappings"] == json!(true) {
                obj.insert("runtimeConfig".into(), json!({ "portMappings": ports }));
            }
        }
        conf
    }

    pub(super) fn invocation<'a>(
        &'a self,
        req: &'a AttachRequest,
        command: Command,
        lo: bool,
    ) -> Invocation<'a> {
        Invocation {
            bin_dir: &self.cfg.bin_dir,
            command,
            container_id: &req.container_id,
            netns: &req.netns,
            ifname: if lo { "lo" } else { &req.ifname },
            timeout: self.cfg.plugin_timeout,
            background: false,
        }
    }

    /// ADD: brings `lo` up, then runs the chain, each plugin given the
    /// previous one's result. On failure, what was made is removed (DEL of the
    /// whole chain, as the specification asks) and the error names the plugin.
    /// Refused while an attachment of the same container and interface is kept.
    #[instrument(skip(self, req), fields(container = %req.container_id, network = %self.cfg.name))]
    pub async fn add(&self, req: &AttachRequest) -> Result<Attachment> {
        let kept = self.begin(req)?;
        self.run_add(req, kept).await
    }

    /// Checks the request and writes its record (without a result), first
    /// of all: a daemon that dies from here on leaves a record that
    /// [`Self::attachments`] lists. Refused while a record of the same
    /// container and interface is kept.
    pub(super) fn begin(&self, req: &AttachRequest) -> Result<Kept> {
        check_request(req)?;
        self.plugins()?;
        // A second ADD would fail on the existing interface, and undoing it
        // would tear down the first.
        if self.kept(req)?.is_some() {
            return Err(CniError::AlreadyAttached {
                container_id: req.container_id.clone(),
                ifname: req.ifname.clone(),
            });
        }
        let kept = Kept {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            netns: req.netns.clone(),
            port_mappings: req.port_mappings.clone(),
            result: None,
            warm: req.warm,
        };
        self.keep(&kept)?;
        Ok(kept)
    }

    /// ADD of a request whose record [`Self::begin`] wrote.
    pub(super) async fn run_add(&self, req: &AttachRequest, mut kept: Kept) -> Result<Attachment> {
        let plugins = self.plugins()?;
        let mut prev: Option<Value> = None;
        let mut last = "loopback";
        // Plugins whose ADD succeeded, and whether the one that failed ran.
        let mut ran = 0;
        let outcome: Result<Value> = async {
            invoke(&self.invocation(req, Command::Add, true), &self.loopback).await?;
            for plugin in plugins {
                last = plugin_type(plugin)?;
                let conf = self.plugin_config(plugin, prev.as_ref(), &req.port_mappings);
                let out = invoke(&self.invocation(req, Command::Add, false), &conf).await?;
                if out.is_null() {
                    return Err(CniError::BadResult {
                        plugin: last.to_owned(),
                        command: Command::Add,
                        reason: "it printed no result".into(),
                    });
                }
                prev = Some(out);
                ran += 1;
            }
            prev.clone().ok_or_else(|| CniError::InvalidSetting {
                field: "plugins",
                reason: "the configuration list has no plugin".into(),
            })
        }
        .await;
        let done = outcome.and_then(|result| {
            let att = parse_result(last, result)?;
            kept.result = Some(att.raw.clone());
            self.keep(&kept)?;
            Ok(att)
        });
        match done {
            Ok(att) => Ok(att),
            Err(e) => {
                let failed_ran = !matches!(
                    e,
                    CniError::PluginsMissing { .. }
                        | CniError::Spawn { .. }
                        | CniError::InvalidSetting { .. }
                );
                match self.undo(req, prev.as_ref(), ran, failed_ran).await {
                    Ok(()) => {
                        if let Err(rm) = self.forget(req) {
                            warn!(error = %rm, "forgetting a failed CNI attachment");
                        }
                    }
                    // The record stays, so that a later DEL finishes the job.
                    Err(undo) => warn!(error = %undo, "removing a failed CNI attachment"),
                }
                Err(e)
            }
        }
    }

    /// CHECK: runs the chain with the result ADD returned; an error says which
    /// plugin found the attachment changed.
    #[instrument(skip(self, req), fields(container = %req.container_id, network = %self.cfg.name))]
    pub async fn check(&self, req: &AttachRequest) -> Result<()> {
        check_request(req)?;
        let kept = self.kept(req)?;
        let (Some(kept), Some(result)) = (&kept, kept.as_ref().and_then(|k| k.result.as_ref()))
        else {
            return Err(CniError::NotAttached {
                container_id: req.container_id.clone(),
                ifname: req.ifname.clone(),
            });
        };
        let has_ipv6 = parse_result("CHECK", result.clone())
            .is_ok_and(|a| a.ips.iter().any(|ip| ip.address.is_ipv6()));
        for plugin in self.plugins()? {
            let conf = self.plugin_config(plugin, Some(result), &kept.port_mappings);
            match invoke(&self.invocation(req, Command::Check, false), &conf).await {
                // portmap 1.1.1 checks its ip6tables DNAT chain even for an
                // IPv4-only attachment, where it never made one; its IPv4
                // check ran (and passed) before.
                Err(CniError::Plugin { plugin, msg, .. })
                    if plugin == "portmap"
                        && !has_ipv6
                        && msg.starts_with("could not check ipv6 dnat") =>
                {
                    tracing::debug!(%msg, "portmap's IPv6 CHECK of an IPv4-only attachment");
                }
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// DEL: runs the chain in reverse with the result ADD returned (when it is
    /// still kept), then `loopback`. Idempotent: a second DEL, or one after
    /// the namespace is gone, succeeds. Every plugin is run even when one
    /// fails; the first failure is returned and the result is kept for a retry.
    /// Then the masquerade rules `bridge` could not find are removed (see
    /// `sweep`), and the instance's owner-isolation rules (see `isolation`).
    #[instrument(skip(self, req), fields(container = %req.container_id, network = %self.cfg.name))]
    pub async fn del(&self, req: &AttachRequest) -> Result<()> {
        check_request(req)?;
        let kept = self.kept(req)?;
        let (prev, ports) = match &kept {
            Some(k) => (k.result.as_ref(), k.port_mappings.as_slice()),
            None => (None, req.port_mappings.as_slice()),
        };
        self.teardown(req, prev, ports).await?;
        let masquerades = self
            .plugins()?
            .iter()
            .any(|p| p["type"] == "bridge" && p["ipMasq"] == json!(true));
        if masquerades {
            sweep_masquerade(&self.cfg.name, &req.container_id, self.cfg.plugin_timeout).await;
        }
        super::isolation::release(&self.cfg, &req.container_id).await?;
        self.forget(req)
    }

    async fn teardown(
        &self,
        req: &AttachRequest,
        prev: Option<&Value>,
        ports: &[PortMapping],
    ) -> Result<()> {
        let mut first: Option<CniError> = None;
        let mut note = |r: Result<Value>| {
            if let Err(e) = r {
                warn!(error = %e, "CNI DEL");
                first.get_or_insert(e);
            }
        };
        for plugin in self.plugins()?.iter().rev() {
            let conf = self.plugin_config(plugin, prev, ports);
            note(invoke(&self.invocation(req, Command::Del, false), &conf).await);
        }
        note(invoke(&self.invocation(req, Command::Del, true), &self.loopback).await);
        first.map_or(Ok(()), Err)
    }

    /// Undoes a failed ADD: DEL, in reverse, of the plugin that failed (if
    /// it ran; its own DEL may fail the same way, which is only logged: its
    /// ADD made nothing it reported) and of the `ran` plugins before it,
    /// whose DEL must succeed, then `loopback`. The plugins after the failed
    /// one never ran: a DEL of theirs (which the specification allows) could
    /// only fail on what failed ADD, a missing plugin or a bad configuration.
    async fn undo(
        &self,
        req: &AttachRequest,
        prev: Option<&Value>,
        ran: usize,
        failed_ran: bool,
    ) -> Result<()> {
        let plugins = self.plugins()?;
        let ports = req.port_mappings.as_slice();
        if failed_ran {
            if let Some(plugin) = plugins.get(ran) {
                let conf = self.plugin_config(plugin, prev, ports);
                if let Err(e) = invoke(&self.invocation(req, Command::Del, false), &conf).await {
                    warn!(error = %e, "CNI DEL of the plugin whose ADD failed");
                }
            }
        }
        let mut first: Option<CniError> = None;
        for plugin in plugins.iter().take(ran).rev() {
            let conf = self.plugin_config(plugin, prev, ports);
            if let Err(e) = invoke(&self.invocation(req, Command::Del, false), &conf).await {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = invoke(&self.invocation(req, Command::Del, true), &self.loopback).await {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }
}

/// Checks the container id and interface name the plugins are given.
fn check_request(req: &AttachRequest) -> Result<()> {
    check_id("container_id", &req.container_id)?;
    let ok = !req.ifname.is_empty()
        && req.ifname.len() <= 15
        && req.ifname != "."
        && req.ifname != ".."
        && !req
            .ifname
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if !ok {
        return Err(CniError::InvalidSetting {
            field: "ifname",
            reason: format!("{:?} is not a Linux interface name", req.ifname),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_plugin_gets_the_list_name_version_prev_result_and_only_its_capabilities() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = CniConfig::new(dir.path(), "10.89.9.0/24".parse().expect("subnet"));
        let net = CniNetwork::with_list(cfg.config_list(), cfg).expect("dirs");
        let plugins = net.plugins().expect("plugins");
        let prev = json!({"ips": [{"address": "10.89.9.2/24"}]});
        let ports = [PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        }];
        let bridge = net.plugin_config(&plugins[0], None, &ports);
        assert_eq!(bridge["name"], "univrs");
        assert_eq!(bridge["cniVersion"], "1.0.0");
        assert!(bridge.get("prevResult").is_none() && bridge.get("runtimeConfig").is_none());
        let portmap = net.plugin_config(&plugins[1], Some(&prev), &ports);
        assert_eq!(portmap["prevResult"], prev);
        assert_eq!(
            portmap["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
        );
        let firewall = net.plugin_config(&plugins[2], Some(&prev), &ports);
        assert!(firewall.get("runtimeConfig").is_none());
    }

    #[test]
    fn requests_with_unsafe_ids_or_interface_names_are_refused() {
        let req = |id: &str, ifname: &str| AttachRequest {
            container_id: id.into(),
            netns: "/run/netns/x".into(),
            ifname: ifname.into(),
            port_mappings: Vec::new(),
            warm: false,
        };
        assert!(check_request(&req("c-1.a_b", "eth0")).is_ok());
        for (id, ifname) in [
            ("../x", "eth0"),
            ("", "eth0"),
            ("c", "a/b"),
            ("c", "much-too-long-if0"),
            ("c", ""),
        ] {
            assert!(
                check_request(&req(id, ifname)).is_err(),
                "{id:?} {ifname:?}"
            );
        }
    }
}
