//! Rows: domain records encoded for the tables, and decoded back.
//!
//! Records are stored as `serde_json` of the domain types. Rows are encoded by
//! the caller, before the write reaches the writer thread, so that the one
//! writer spends its time in SQLite only.

use orchestrator_shared_types::{Node, WorkloadDefinition, WorkloadInstance};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Result, StoreChange, StoreError};

/// A node, encoded.
#[derive(Debug)]
pub(crate) struct NodeRow {
    pub(crate) id: String,
    pub(crate) data: String,
    pub(crate) change: StoreChange,
}

/// A workload, encoded.
#[derive(Debug)]
pub(crate) struct WorkloadRow {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) generation: i64,
    pub(crate) data: String,
    pub(crate) change: StoreChange,
    /// The workload itself, for the in-memory cache.
    pub(crate) value: Box<orchestrator_shared_types::WorkloadDefinition>,
}

/// An instance, encoded.
#[derive(Debug)]
pub(crate) struct InstanceRow {
    pub(crate) id: String,
    pub(crate) workload_id: String,
    pub(crate) node_id: String,
    pub(crate) data: String,
    pub(crate) change: StoreChange,
}

impl NodeRow {
    pub(crate) fn encode(node: &Node) -> Result<Self> {
        Ok(Self {
            id: node.id.to_string(),
            data: encode(node, "node")?,
            change: StoreChange::NodePut(node.id),
        })
    }
}

impl WorkloadRow {
    pub(crate) fn encode(w: &WorkloadDefinition) -> Result<Self> {
        Ok(Self {
            id: w.id.to_string(),
            owner: w.owner.to_string(),
            name: w.spec.name.clone(),
            // SQLite integers are signed: a generation past i64::MAX cannot be stored.
            generation: i64::try_from(w.generation).map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
            })?,
            data: encode(w, "workload")?,
            change: StoreChange::WorkloadPut(w.id),
            value: Box::new(w.clone()),
        })
    }
}

impl InstanceRow {
    pub(crate) fn encode(i: &WorkloadInstance) -> Result<Self> {
        Ok(Self {
            id: i.id.to_string(),
            workload_id: i.workload_id.to_string(),
            node_id: i.node_id.to_string(),
            data: encode(i, "instance")?,
            change: StoreChange::InstancePut {
                id: i.id,
                workload_id: i.workload_id,
            },
        })
    }

    /// The change for a deleted instance, from its stored id columns.
    pub(crate) fn deleted_change(id: &str, workload_id: &str) -> Result<StoreChange> {
        Ok(StoreChange::InstanceDeleted {
            id: parse_id(id, "instance id")?,
            workload_id: parse_id(workload_id, "workload id")?,
        })
    }
}

fn encode<T: Serialize>(record: &T, kind: &'static str) -> Result<String> {
    serde_json::to_string(record).map_err(|source| StoreError::Codec { kind, source })
}

/// Decodes a stored JSON record.
pub(crate) fn decode<T: DeserializeOwned>(data: &str, kind: &'static str) -> Result<T> {
    serde_json::from_str(data).map_err(|source| StoreError::Codec { kind, source })
}

/// Parses an id stored as text, through its serde form.
pub(crate) fn parse_id<T: DeserializeOwned>(text: &str, kind: &'static str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|source| StoreError::Codec { kind, source })
}
