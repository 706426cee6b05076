//! Container output: the container writes its stdout and stderr straight into
//! `stdout.log` and `stderr.log` in its directory (opened `O_APPEND` and handed
//! to libcontainer as the process's fds). No pipe runs through the daemon, so
//! a container keeps writing — and is never killed by `SIGPIPE` — while the
//! daemon restarts, and logging costs the daemon nothing per line.
//!
//! The price: lines carry no time of their own. A line read from the file gets
//! the file's modification time (tail) or the time it was read (follow), and a
//! tail lists stdout's lines before stderr's.
//!
//! The files are private to the daemon's user (0600; a copy keeps the mode).
//!
//! Size cap: when a file passes the cap it is copied to `<name>.1` (replacing
//! the previous one) and truncated; readers read `.1` then the live file. Each
//! stream thus keeps between one and two caps' worth of its latest output.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use container_runtime_interface::LogLine;
use futures::stream::BoxStream;
use orchestrator_shared_types::private_fs;
use tokio::sync::{mpsc, watch};

/// The two streams, in the order a tail lists them.
pub const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// How often a follower looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

fn path(dir: &Path, stream: &str) -> PathBuf {
    dir.join(format!("{stream}.log"))
}

fn rotated(dir: &Path, stream: &str) -> PathBuf {
    dir.join(format!("{stream}.log.1"))
}

/// Opens (creating, mode 0600) the files a new container writes to:
/// `(stdout, stderr)`.
pub fn open(dir: &Path) -> io::Result<(File, File)> {
    let open = |stream| private_fs::open_append(&path(dir, stream));
    Ok((open("stdout")?, open("stderr")?))
}

/// Every log file of the container directory `dir`, live and rotated.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    STREAMS
        .iter()
        .flat_map(|s| [path(dir, s), rotated(dir, s)])
        .collect()
}

fn lines_of(bytes: &[u8], stream: &str, at: DateTime<Utc>, out: &mut Vec<LogLine>) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.lines() {
        out.push(LogLine {
            timestamp: at,
            stream: stream.to_owned(),
            line: line.to_owned(),
        });
    }
}

fn mtime(p: &Path) -> DateTime<Utc> {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now())
}

fn read_file(p: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        other => other,
    }
}

/// The output so far; the last `tail` lines when given.
pub fn read(dir: &Path, tail: Option<usize>) -> io::Result<Vec<LogLine>> {
    let mut out = Vec::new();
    for stream in STREAMS {
        for p in [rotated(dir, stream), path(dir, stream)] {
            let bytes = read_file(&p)?;
            lines_of(&bytes, stream, mtime(&p), &mut out);
        }
    }
    if let Some(n) = tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// Applies the size cap to both streams of `dir`.
pub fn enforce_cap(dir: &Path, max_bytes: u64) -> io::Result<()> {
    for stream in STREAMS {
        let live = path(dir, stream);
        let size = match std::fs::metadata(&live) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if size > max_bytes {
            std::fs::copy(&live, rotated(dir, stream))?;
            OpenOptions::new().write(true).open(&live)?.set_len(0)?;
        }
    }
    Ok(())
}

struct Tailer {
    stream: &'static str,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tailer {
    fn new(dir: &Path, stream: &'static str) -> Self {
        let path = path(dir, stream);
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Self {
            stream,
            path,
            offset,
            partial: Vec::new(),
        }
    }

    /// New complete lines since the last call.
    fn poll(&mut self, out: &mut Vec<LogLine>) -> io::Result<()> {
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            // Rotated: the file was truncated under us.
            self.offset = 0;
        }
        if len == self.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        if let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') {
            let rest = self.partial.split_off(last_nl + 1);
            let complete = std::mem::replace(&mut self.partial, rest);
            lines_of(&complete, self.stream, Utc::now(), out);
        }
        Ok(())
    }

    /// Whatever is left without a final newline.
    fn flush(&mut self, out: &mut Vec<LogLine>) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            lines_of(&rest, self.stream, Utc::now(), out);
        }
    }
}

/// The output from now on, until `exited` turns true and everything written
/// before that has been read.
pub fn follow(dir: &Path, mut exited: watch::Receiver<bool>) -> BoxStream<'static, LogLine> {
    let mut tailers: Vec<Tailer> = STREAMS.iter().map(|s| Tailer::new(dir, s)).collect();
    let (tx, rx) = mpsc::channel::<LogLine>(256);
    tokio::spawn(async move {
        let mut sender_gone = false;
        loop {
            let done = sender_gone || *exited.borrow_and_update();
            let mut batch = Vec::new();
            for t in &mut tailers {
                if let Err(e) = t.poll(&mut batch) {
                    tracing::debug!(error = %e, "reading a container log");
                }
                if done {
                    t.flush(&mut batch);
                }
            }
            for line in batch {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            if done {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                changed = exited.changed() => sender_gone = changed.is_err(),
                () = tx.closed() => return,
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    }))
}
