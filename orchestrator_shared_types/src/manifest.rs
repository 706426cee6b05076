//! Reading manifests: YAML or JSON in, a validated [`WorkloadSpec`] out, or an
//! error that names the field (`containers[0].resources.limits.memory: …`).

use std::fmt;

use serde::de::DeserializeOwned;

use crate::workload::WorkloadSpec;

/// Problems with a manifest, each with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// One entry per problem.
    pub problems: Vec<FieldProblem>,
}

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Path of the field (`containers[0].image`); empty for the whole document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ManifestError {
    /// A single problem at `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![FieldProblem {
                field: field.into(),
                message: message.into(),
            }],
        }
    }

    /// The path of the first problem.
    pub fn first_field(&self) -> &str {
        self.problems.first().map_or("", |p| p.field.as_str())
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

/// Strips serde_yaml's trailing " at line L column C" so the path leads.
fn clean_message(msg: String) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

fn path_error<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> ManifestError {
    let path = e.path().to_string();
    let field = if path == "." { String::new() } else { path };
    let message = clean_message(e.into_inner().to_string());
    // serde_yaml_ng already prefixes some messages with the path.
    let message = match message.strip_prefix(&format!("{field}: ")) {
        Some(rest) if !field.is_empty() => rest.to_owned(),
        _ => message,
    };
    ManifestError::new(field, message)
}

/// Deserialises any type from YAML with field paths in errors.
pub fn from_yaml<T: DeserializeOwned>(text: &str) -> Result<T, ManifestError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(path_error)
}

/// Deserialises any type from JSON with field paths in errors.
pub fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, ManifestError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| ManifestError::new("", e.to_string()))?;
    Ok(value)
}

impl WorkloadSpec {
    /// Parses and validates a YAML manifest (JSON is YAML too).
    pub fn from_yaml(text: &str) -> Result<WorkloadSpec, ManifestError> {
        let spec: WorkloadSpec = from_yaml(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses and validates a JSON manifest.
    pub fn from_json(text: &str) -> Result<WorkloadSpec, ManifestError> {
        let spec: WorkloadSpec = from_json(text)?;
        spec.validate()?;
        Ok(spec)
    }
}
