//! Printing results: aligned tables and short sentences for people, JSON for programs.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::cli::OutputFormat;

/// A table of text cells, printed with columns aligned on the widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells print empty, extra cells are kept).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, one line per row, columns separated by three spaces,
    /// no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain(std::iter::once(self.header.len()))
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                if i > 0 {
                    line.push_str("   ");
                }
                line.push_str(cell);
                let pad = width - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // A `Value` always serialises; keep the compact form just in case.
        Err(_) => println!("{value}"),
    }
}

/// Prints `value` as JSON when asked for JSON, else `text` (when not empty).
pub fn emit(format: OutputFormat, value: &Value, text: &str) {
    match format {
        OutputFormat::Json => print_json(value),
        OutputFormat::Table => {
            if !text.is_empty() {
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
        }
    }
}

/// A spinner on stderr showing `message` and the time elapsed (drawn only
/// when stderr is a terminal); clear it with `finish_and_clear`.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.set_message(message.into());
    spinner.enable_steady_tick(Duration::from_millis(100));
    spinner
}

/// How long ago `then` was, kubectl-style: `45s`, `12m`, `3h`, `5d`.
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A time to the second, as `2026-11-30T10:00:00Z`.
pub fn seconds(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Memory for people: an exact binary unit when there is one (`8Gi`), else one
/// decimal in the largest unit that fits (`23.3Gi`).
pub fn human_memory(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            if bytes.is_multiple_of(size) {
                return format!("{}{unit}", bytes / size);
            }
            // Display only: f64 is precise enough for one decimal.
            let value = bytes as f64 / size as f64;
            return format!("{value:.1}{unit}");
        }
    }
    bytes.to_string()
}

/// The first 12 characters of an id (hex key or UUID), for tables.
pub fn short(id: &str) -> String {
    let compact: String = id.chars().filter(|c| *c != '-').collect();
    compact.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut t = Table::new(["NAME", "REPLICAS", "AGE"]);
        t.row(["hello", "3/3", "5m"]);
        t.row(["a-much-longer-name", "10/12", ""]);
        assert_eq!(
            t.render(),
            "NAME                 REPLICAS   AGE\n\
             hello                3/3        5m\n\
             a-much-longer-name   10/12\n"
        );
    }

    #[test]
    fn empty_table_prints_its_header() {
        let t = Table::new(["A", "B"]);
        assert_eq!(t.render(), "A   B\n");
    }

    #[test]
    fn ragged_rows_render() {
        let mut t = Table::new(["A"]);
        t.row(["1", "extra"]);
        assert_eq!(t.render(), "A\n1   extra\n");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
            .single()
            .expect("time");
        let ago = |s: i64| age(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(119), "119s");
        assert_eq!(ago(600), "10m");
        assert_eq!(ago(3 * 3600), "3h");
        assert_eq!(ago(3 * 86400), "3d");
        assert_eq!(ago(-10), "0s");
        assert_eq!(ago(60), "60s");
        let t = DateTime::parse_from_rfc3339("2026-11-30T10:00:00.123456789Z").expect("time");
        assert_eq!(seconds(t.with_timezone(&Utc)), "2026-11-30T10:00:00Z");
    }

    #[test]
    fn memory_for_people() {
        assert_eq!(human_memory(8 << 30), "8Gi");
        assert_eq!(human_memory(24_421_940 * 1024), "23.3Gi");
        assert_eq!(human_memory(1536), "1.5Ki");
        assert_eq!(human_memory(512), "512");
    }

    #[test]
    fn short_ids() {
        assert_eq!(
            short("9f1c2d3e-4b5a-4c6d-8e7f-001122334455"),
            "9f1c2d3e4b5a"
        );
        assert_eq!(short("abc"), "abc");
    }
}
