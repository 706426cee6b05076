//! The check of a copy: the digests of what etcd must hold (the source's)
//! and of what it holds (read back), compared set by set in a [`Report`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use orchestrator_audit::RECORD_KIND;
use orchestrator_shared_types::{Node, WorkloadDefinition, WorkloadInstance};
use state_store_interface::{EtcdStore, StateStore};

use super::digest::Digest;
use super::source::Source;
use super::MigrateError;
use crate::error::Result;
use crate::ha::IDENTITY;

/// One line of the check: a set as the source has it and as etcd has it.
#[derive(Clone, Debug)]
pub struct Row {
    /// `nodes`, `workloads`, `instances` or `records KIND`.
    pub what: String,
    /// The source's.
    pub source: Digest,
    /// Read back from etcd.
    pub copied: Digest,
}

/// The outcome of a copy: one [`Row`] per set compared.
#[derive(Clone, Debug)]
pub struct Report {
    /// The prefix copied into.
    pub prefix: String,
    /// The ledger id, which is the cluster's id and audience in etcd.
    pub ledger_id: String,
    /// Nodes, workloads, instances, then each record kind in order.
    pub rows: Vec<Row>,
}

impl Report {
    /// What differs between the source and etcd.
    pub fn differing(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.source != r.copied)
            .map(|r| r.what.clone())
            .collect()
    }

    /// `Ok` if every set read back equals the source's.
    pub fn check(&self) -> Result<(), MigrateError> {
        let differing = self.differing();
        if differing.is_empty() {
            return Ok(());
        }
        Err(MigrateError::Mismatch {
            prefix: self.prefix.clone(),
            differing,
        })
    }
}

impl fmt::Display for Report {
    /// A table: what, count, the first 16 hex digits of the hash, and etcd's
    /// where it differs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<32} {:>8}  sha256", "what", "count")?;
        for r in &self.rows {
            write!(
                f,
                "{:<32} {:>8}  {}",
                r.what,
                r.source.count,
                r.source.short()
            )?;
            if r.source != r.copied {
                write!(
                    f,
                    "  DIFFERS: etcd has {} {}",
                    r.copied.count,
                    r.copied.short()
                )?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// The digests the check compares: nodes, workloads and instances, then
/// each record kind.
pub(super) struct Digests {
    entities: [(&'static str, Digest); 3],
    records: BTreeMap<String, Digest>,
}

fn entity_digests(
    nodes: &[Node],
    workloads: &[WorkloadDefinition],
    instances: &[WorkloadInstance],
) -> Result<[(&'static str, Digest); 3]> {
    let encoded = |what: &'static str| move |source| MigrateError::Digest { what, source };
    Ok([
        (
            "nodes",
            Digest::of_items(nodes, |n| n.id.to_string()).map_err(encoded("nodes"))?,
        ),
        (
            "workloads",
            Digest::of_items(workloads, |w| w.id.to_string()).map_err(encoded("workloads"))?,
        ),
        (
            "instances",
            Digest::of_items(instances, |i| i.id.to_string()).map_err(encoded("instances"))?,
        ),
    ])
}

/// What etcd must hold once the source is copied.
pub(super) fn expected(source: &Source) -> Result<Digests> {
    let mut records: BTreeMap<String, Digest> = source
        .records
        .iter()
        .map(|(kind, records)| (kind.clone(), Digest::of_records(records)))
        .collect();
    if !source.audit.is_empty() {
        records.insert(RECORD_KIND.to_owned(), Digest::of_records(&source.audit));
    }
    let identity: Vec<(String, String)> = source
        .identity()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    records.insert(IDENTITY.0.to_owned(), Digest::of_records(&identity));
    Ok(Digests {
        entities: entity_digests(&source.nodes, &source.workloads, &source.instances)?,
        records,
    })
}

/// What etcd holds under the prefix.
pub(super) async fn read_back(etcd: &EtcdStore, prefix: &str) -> Result<Digests> {
    let failed = |what: &str| {
        let (what, prefix) = (what.to_owned(), prefix.to_owned());
        move |source| MigrateError::ReadBack {
            what,
            prefix,
            source,
        }
    };
    let nodes = etcd.list_nodes().await.map_err(failed("the nodes"))?;
    let workloads = etcd
        .list_workloads()
        .await
        .map_err(failed("the workloads"))?;
    let instances = etcd
        .list_instances()
        .await
        .map_err(failed("the instances"))?;
    let mut records = BTreeMap::new();
    for kind in etcd
        .list_record_kinds()
        .await
        .map_err(failed("the record kinds"))?
    {
        let of_kind = etcd
            .list_records(&kind)
            .await
            .map_err(failed(&format!("the records of kind {kind:?}")))?;
        records.insert(kind, Digest::of_records(&of_kind));
    }
    Ok(Digests {
        entities: entity_digests(&nodes, &workloads, &instances)?,
        records,
    })
}

pub(super) fn compare(
    expected: &Digests,
    copied: Digests,
    prefix: String,
    ledger_id: String,
) -> Report {
    let mut rows: Vec<Row> = expected
        .entities
        .iter()
        .zip(copied.entities)
        .map(|((what, source), (_, copied))| Row {
            what: (*what).to_owned(),
            source: *source,
            copied,
        })
        .collect();
    let kinds: BTreeSet<&String> = expected
        .records
        .keys()
        .chain(copied.records.keys())
        .collect();
    for kind in kinds {
        let of = |d: &BTreeMap<String, Digest>| d.get(kind).copied().unwrap_or_else(Digest::empty);
        rows.push(Row {
            what: format!("records {kind}"),
            source: of(&expected.records),
            copied: of(&copied.records),
        });
    }
    Report {
        prefix,
        ledger_id,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_what_differs() {
        let a = Digest::of_records(&[("k".into(), "1".into())]);
        let b = Digest::of_records(&[("k".into(), "2".into())]);
        let row = |what: &str, source, copied| Row {
            what: what.into(),
            source,
            copied,
        };
        let mut report = Report {
            prefix: "/p".into(),
            ledger_id: "c".into(),
            rows: vec![row("nodes", a, a), row("records policy", a, a)],
        };
        assert!(report.check().is_ok());
        assert!(!report.to_string().contains("DIFFERS"));
        report.rows.push(row("records audit", a, b));
        let e = report.check().unwrap_err().to_string();
        assert!(
            e.contains("records audit") && e.contains("etcdctl del --prefix /p/"),
            "{e}"
        );
        assert!(report.to_string().contains("DIFFERS: etcd has 1"));
    }
}
