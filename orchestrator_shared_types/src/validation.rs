//! Semantic checks of a manifest beyond what its types enforce.

use std::collections::{BTreeMap, HashSet};

use crate::manifest::{FieldProblem, ManifestError};
use crate::resources::ResourceRequirements;
use crate::workload::{ContainerConfig, Probe, ProbeAction, WorkloadSpec};

/// Most replicas a workload may ask for.
pub const MAX_REPLICAS: u32 = 10_000;
/// Most containers per instance.
pub const MAX_CONTAINERS: usize = 64;
/// Smallest memory limit a container may have.
pub const MIN_MEMORY_LIMIT: u64 = 4 << 20;

#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Whether `s` is a DNS-1123 label: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

pub(crate) fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_labels(p: &mut Problems, path: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        if !is_label_key(k) {
            p.push(
                format!("{path}.{k}"),
                "label keys are 1–253 of letters, digits and -_./",
            );
        }
        if v.len() > 253 || v.chars().any(char::is_control) {
            p.push(
                format!("{path}.{k}"),
                "label values are at most 253 printable characters",
            );
        }
    }
}

fn check_resources(p: &mut Problems, path: &str, r: &ResourceRequirements) {
    if let (Some(req), Some(lim)) = (r.requests.cpu, r.limits.cpu) {
        if req > lim {
            p.push(
                format!("{path}.requests.cpu"),
                format!("request {req} exceeds limit {lim}"),
            );
        }
    }
    if let (Some(req), Some(lim)) = (r.requests.memory, r.limits.memory) {
        if req > lim {
            p.push(
                format!("{path}.requests.memory"),
                format!("request {req} exceeds limit {lim}"),
            );
        }
    }
    if r.limits.cpu.is_some_and(|c| c.millis() == 0) {
        p.push(format!("{path}.limits.cpu"), "must be more than 0");
    }
    if let Some(m) = r.limits.memory {
        if m.bytes() < MIN_MEMORY_LIMIT {
            p.push(
                format!("{path}.limits.memory"),
                format!("{m} is below the minimum of 4Mi"),
            );
        }
    }
    if r.requests.pids.is_some() {
        p.push(
            format!("{path}.requests.pids"),
            "pids is a limit, not a request",
        );
    }
    if r.limits.pids == Some(0) {
        p.push(format!("{path}.limits.pids"), "must be at least 1");
    }
}

fn check_probe(p: &mut Problems, path: &str, probe: &Probe) {
    match &probe.action {
        ProbeAction::Exec { command } if command.is_empty() => {
            p.push(format!("{path}.exec.command"), "must not be empty");
        }
        ProbeAction::HttpGet { port, path: url } => {
            if *port == 0 || *port > 65535 {
                p.push(
                    format!("{path}.http_get.port"),
                    format!("{port} is not a port (1–65535)"),
                );
            }
            if !url.starts_with('/') {
                p.push(format!("{path}.http_get.path"), "must start with /");
            }
        }
        ProbeAction::TcpSocket { port } if *port == 0 || *port > 65535 => {
            p.push(
                format!("{path}.tcp_socket.port"),
                format!("{port} is not a port (1–65535)"),
            );
        }
        _ => {}
    }
    for (name, v) in [
        ("period_seconds", probe.period_seconds),
        ("timeout_seconds", probe.timeout_seconds),
        ("failure_threshold", probe.failure_threshold),
    ] {
        if v == 0 {
            p.push(format!("{path}.{name}"), "must be at least 1");
        }
    }
}

fn check_container(p: &mut Problems, path: &str, c: &ContainerConfig) {
    if !is_dns_label(&c.name) {
        p.push(
            format!("{path}.name"),
            format!("{:?} is not a DNS label (a-z, 0-9, -; at most 63)", c.name),
        );
    }
    if c.image.trim().is_empty() {
        p.push(format!("{path}.image"), "must not be empty");
    } else if c
        .image
        .chars()
        .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        p.push(
            format!("{path}.image"),
            format!("{:?} contains whitespace", c.image),
        );
    }
    for (k, v) in &c.env {
        if !is_env_name(k) {
            p.push(format!("{path}.env.{k}"), "not a valid variable name");
        }
        if v.contains('\0') {
            p.push(format!("{path}.env.{k}"), "contains a NUL byte");
        }
    }
    for (i, port) in c.ports.iter().enumerate() {
        if port.container_port == 0 || port.container_port > 65535 {
            p.push(
                format!("{path}.ports[{i}].container_port"),
                format!("{} is not a port (1–65535)", port.container_port),
            );
        }
        if port.protocol != "TCP" && port.protocol != "UDP" {
            p.push(format!("{path}.ports[{i}].protocol"), "must be TCP or UDP");
        }
    }
    if c.command.iter().chain(&c.args).any(|a| a.contains('\0')) {
        p.push(
            format!("{path}.command"),
            "arguments must not contain NUL bytes",
        );
    }
    check_resources(p, &format!("{path}.resources"), &c.resources);
    if let Some(probe) = &c.liveness_probe {
        check_probe(p, &format!("{path}.liveness_probe"), probe);
    }
    if let Some(probe) = &c.readiness_probe {
        check_probe(p, &format!("{path}.readiness_probe"), probe);
    }
}

impl WorkloadSpec {
    /// Checks every field, reporting all problems at once.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut p = Problems::default();
        if !is_dns_label(&self.name) {
            p.push(
                "name",
                format!(
                    "{:?} is not a DNS label (a-z, 0-9, -; at most 63)",
                    self.name
                ),
            );
        }
        if self.replicas > MAX_REPLICAS {
            p.push(
                "replicas",
                format!(
                    "{} is more than the maximum of {MAX_REPLICAS}",
                    self.replicas
                ),
            );
        }
        if self.containers.is_empty() {
            p.push("containers", "at least one container is required");
        }
        if self.containers.len() > MAX_CONTAINERS {
            p.push("containers", format!("at most {MAX_CONTAINERS} containers"));
        }
        let mut names = HashSet::new();
        for (i, c) in self.containers.iter().enumerate() {
            let path = format!("containers[{i}]");
            if !names.insert(c.name.as_str()) {
                p.push(
                    format!("{path}.name"),
                    format!("duplicate container name {:?}", c.name),
                );
            }
            check_container(&mut p, &path, c);
        }
        check_labels(&mut p, "labels", &self.labels);
        let mut port_problems = Vec::new();
        crate::ports::check(self, &mut port_problems);
        crate::volume::check(self, &mut port_problems);
        crate::secret::check(self, &mut port_problems);
        for (field, msg) in port_problems {
            p.push(field, msg);
        }
        check_labels(
            &mut p,
            "placement.node_selector",
            &self.placement.node_selector,
        );
        for (i, r) in self.placement.node_affinity.iter().enumerate() {
            use crate::workload::LabelOperator::*;
            let needs_values = matches!(r.operator, In | NotIn);
            if needs_values == r.values.is_empty() {
                let msg = if needs_values {
                    "In and NotIn need values"
                } else {
                    "Exists and DoesNotExist take no values"
                };
                p.push(format!("placement.node_affinity[{i}].values"), msg);
            }
        }
        if self.placement.max_per_node == Some(0) {
            p.push("placement.max_per_node", "must be at least 1");
        }
        let s = &self.update_strategy;
        if s.max_surge == 0 && s.max_unavailable == 0 {
            p.push(
                "update_strategy",
                "max_surge and max_unavailable cannot both be 0",
            );
        }
        if s.auto_rollback && s.rollback_after_failures == 0 {
            p.push(
                "update_strategy.rollback_after_failures",
                "must be at least 1",
            );
        }
        if let Err(e) = self.trust.validate() {
            let (field, msg) = e.split_once(": ").unwrap_or(("trust", e.as_str()));
            p.push(field.to_owned(), msg.to_owned());
        }
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ManifestError { problems: p.0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_manifest_is_valid() {
        let spec: WorkloadSpec =
            crate::manifest::from_yaml("name: web\ncontainers: [{name: main, image: busybox}]\n")
                .expect("a minimal manifest parses");
        assert_eq!(spec.validate(), Ok(()));
    }
}
