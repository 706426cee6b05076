//! The file backend: `audit.log` in the data directory (mode 0600), one
//! JSON entry per line, appended and synced (`fdatasync`) before the append
//! returns.
//!
//! Its I/O is synchronous; [`AuditLog`](crate::AuditLog) runs it on the
//! blocking pool, with the tail's lock moved into the blocking task so that
//! writing a line and advancing the tail cannot be separated.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use orchestrator_shared_types::private_fs;
use tokio::sync::OwnedMutexGuard;
use tracing::warn;

use crate::chain::{Draft, Tail};
use crate::{AuditEntry, AuditError};

/// The open log file.
#[derive(Debug)]
pub(crate) struct FileLog {
    path: PathBuf,
    /// Opened for appending; written only under the tail's lock.
    file: File,
}

impl FileLog {
    /// Opens (or creates) `path` and returns its entries, unchecked.
    pub(crate) fn open(path: PathBuf) -> Result<(Self, Vec<AuditEntry>), AuditError> {
        let entries = if path.exists() {
            read(&path)?
        } else {
            Vec::new()
        };
        // Private to the daemon's user: 0600, whatever an older daemon left.
        let file = private_fs::open_append(&path).map_err(|source| io(&path, source))?;
        Ok((Self { path, file }, entries))
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Every entry in the file, oldest first. The caller holds the tail's
    /// lock, so that no line is half-written.
    pub(crate) fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        read(&self.path)
    }

    /// Writes the next entry and syncs it, then advances the tail. On failure
    /// the file is cut back to where it was and the tail stays.
    pub(crate) fn append(
        &self,
        mut tail: OwnedMutexGuard<Tail>,
        draft: Draft,
    ) -> Result<AuditEntry, AuditError> {
        let e = tail.seal(draft);
        let mut line = serde_json::to_vec(&e).map_err(AuditError::Encode)?;
        line.push(b'\n');
        let before = self
            .file
            .metadata()
            .map_err(|source| io(&self.path, source))?
            .len();
        let written = (&self.file)
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            // A partial line would break the chain for every entry after it.
            if let Err(cut) = self
                .file
                .set_len(before)
                .and_then(|()| self.file.sync_data())
            {
                warn!(path = %self.path.display(), seq = e.seq, error = %cut,
                    "cutting a failed audit entry off the log failed: the log may be broken at this entry");
            }
            return Err(io(&self.path, source));
        }
        tail.advance(&e);
        Ok(e)
    }
}

fn io(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

fn read(path: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    let file = File::open(path).map_err(|source| io(path, source))?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| io(path, source))?;
        if line.trim().is_empty() {
            continue;
        }
        let e = serde_json::from_str(&line).map_err(|err| AuditError::Broken {
            seq: out.len() as u64 + 1,
            reason: format!("line {} is not an entry: {err}", n + 1),
        })?;
        out.push(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::{AuditError, AuditLog, Call, Decision, AUDIT_FILE};

    fn call(path: &str) -> Call<'_> {
        Call {
            key: Some("ab".into()),
            agent: None,
            method: "POST",
            path,
            body: b"{\"replicas\":3}",
            status: 200,
            decision: Decision::Allowed,
        }
    }

    #[tokio::test]
    async fn entries_chain_and_an_edit_breaks_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(call("/api/v1/workloads/a/scale")).await.unwrap();
        log.append(call("/api/v1/workloads/b/scale")).await.unwrap();
        assert_eq!(log.verify().await.unwrap(), 2);
        drop(log);
        // Reopened, it goes on from the last entry.
        let log = AuditLog::open(dir.path()).unwrap();
        let e = log.append(call("/api/v1/workloads/c/scale")).await.unwrap();
        assert_eq!(e.seq, 3);
        assert_eq!(log.verify().await.unwrap(), 3);
        let path = dir.path().join(AUDIT_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen("\"replicas\\\":3", "\"replicas\\\":9", 1),
        )
        .unwrap();
        let err = log.verify().await.unwrap_err();
        assert!(matches!(err, AuditError::Broken { seq: 1, .. }), "{err}");
        assert!(
            AuditLog::open(dir.path()).is_err(),
            "a tampered log is not appended to"
        );
    }

    #[tokio::test]
    async fn the_running_log_notices_its_last_line_removed() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for p in ["/a", "/b", "/c"] {
            log.append(call(p)).await.unwrap();
        }
        let path = dir.path().join(AUDIT_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().take(2).collect();
        std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        let err = log.verify().await.unwrap_err();
        assert!(matches!(err, AuditError::Broken { seq: 3, .. }), "{err}");
    }

    #[tokio::test]
    async fn the_log_is_private_to_the_daemons_user() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(call("/a")).await.unwrap();
        assert_eq!(mode(&path), 0o600, "a new log");
        drop(log);
        // As an older daemon left it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(mode(&path), 0o600, "an older log, reopened");
        assert_eq!(log.verify().await.unwrap(), 1);
    }
}
