//! Reading and writing the TOML files, with errors that say `file:line: field: problem`.
//!
//! Type and syntax errors come from `toml` with a byte span; the field is found by
//! walking a `toml_edit` parse of the same text for the key or value covering that
//! span. Semantic errors ([`Problem`]) name a field path, whose line is found the
//! same way.

use std::fmt;
use std::ops::Range;

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml_edit::{ImDocument, Item};

use crate::error::{Error, Result};
use crate::fsutil::{self, PRIVATE_FILE};
use crate::paths::ConfigDir;

/// One step of a path into a TOML document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// A field path such as `trusted_operators[1]` or `required_labels.region`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Seg>);

impl FieldPath {
    /// A top-level key.
    pub(crate) fn key(k: &str) -> Self {
        Self(vec![Seg::Key(k.to_owned())])
    }

    /// This path with an array index appended.
    pub(crate) fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }

    /// This path with a key appended.
    pub(crate) fn child(mut self, k: &str) -> Self {
        self.0.push(Seg::Key(k.to_owned()));
        self
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A semantic problem with one field of a parsed file.
#[derive(Clone, Debug)]
pub(crate) struct Problem {
    /// The offending field.
    pub(crate) field: FieldPath,
    /// What is wrong, e.g. `1.5 is not between 0 and 1`.
    pub(crate) problem: String,
}

impl Problem {
    pub(crate) fn new(field: FieldPath, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }

    /// As an error about a value given through a setter (no file, no line).
    pub(crate) fn into_value_error(self) -> Error {
        Error::InvalidValue {
            field: self.field.to_string(),
            problem: self.problem,
        }
    }
}

/// A type whose file is validated beyond what serde checks.
pub(crate) trait Validate {
    /// The first problem found, if any.
    fn validate(&self) -> Result<(), Problem>;
}

/// Loads `rel` (relative to `dir`) into `T`, or `T::default()` if the file is missing.
pub(crate) fn load<T>(dir: &ConfigDir, rel: &str) -> Result<T>
where
    T: DeserializeOwned + Default + Validate,
{
    match fsutil::read_optional(&dir.root().join(rel))? {
        Some(text) => parse(rel, &text),
        None => Ok(T::default()),
    }
}

/// Parses and validates the text of file `rel`.
pub(crate) fn parse<T: DeserializeOwned + Validate>(rel: &str, text: &str) -> Result<T> {
    let value: T = toml::from_str(text).map_err(|e| serde_error(rel, text, &e))?;
    value
        .validate()
        .map_err(|p| located_problem(rel, text, p))?;
    Ok(value)
}

/// Validates `value` and writes it to `rel` (relative to `dir`) atomically.
pub(crate) fn save<T: Serialize + Validate>(dir: &ConfigDir, rel: &str, value: &T) -> Result<()> {
    value.validate().map_err(Problem::into_value_error)?;
    let text = toml::to_string_pretty(value).map_err(|source| Error::Serialize {
        file: rel.to_owned(),
        source,
    })?;
    dir.ensure()?;
    fsutil::write_atomic(&dir.root().join(rel), text.as_bytes(), PRIVATE_FILE)
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn serde_error(rel: &str, text: &str, e: &toml::de::Error) -> Error {
    let message = e.message().trim_end_matches('\n');
    let mut span = e.span();
    let mut field = None;
    if let Some(start) = span.as_ref().map(|s| s.start) {
        if let Ok(doc) = ImDocument::parse(text) {
            let mut path = FieldPath::default();
            if find(doc.as_item(), start, &mut path) {
                // toml reports an error inside an array element (e.g. a bad key in
                // a list) with the span of the whole array: narrow it to the one
                // element whose source text the message quotes.
                if let Some((i, elem)) = quoted_element(&doc, &path, text, message) {
                    path.0.push(Seg::Index(i));
                    span = Some(elem);
                }
                field = Some(path);
            }
        }
    }
    Error::Invalid {
        file: rel.to_owned(),
        line: span.map(|s| line_of(text, s.start)),
        field: field.map(|f| f.to_string()),
        problem: message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The only element of the array at `path` whose source text appears in `message`.
fn quoted_element(
    doc: &ImDocument<&str>,
    path: &FieldPath,
    text: &str,
    message: &str,
) -> Option<(usize, Range<usize>)> {
    let mut item = doc.as_item();
    for seg in &path.0 {
        item = match seg {
            Seg::Key(k) => item.get(k.as_str())?,
            Seg::Index(i) => item.get(*i)?,
        };
    }
    let len = item.as_array()?.len();
    let mut hits = (0..len).filter_map(|i| {
        let span = item.get(i)?.span()?;
        let source = text.get(span.clone())?;
        message.contains(source).then_some((i, span))
    });
    let hit = hits.next()?;
    hits.next().is_none().then_some(hit)
}

/// Turns a [`Problem`] into an error carrying the line of its field.
pub(crate) fn located_problem(rel: &str, text: &str, p: Problem) -> Error {
    let line = ImDocument::parse(text)
        .ok()
        .and_then(|doc| span_of(doc.as_item(), &p.field.0))
        .map(|s| line_of(text, s.start));
    Error::Invalid {
        file: rel.to_owned(),
        line,
        field: Some(p.field.to_string()),
        problem: p.problem,
    }
}

/// The span of the deepest item of `path` that is present (its value, or for
/// tables the header).
fn span_of(root: &Item, path: &[Seg]) -> Option<Range<usize>> {
    let mut item = root;
    let mut best = None;
    for seg in path {
        let (key_span, next) = match seg {
            Seg::Key(k) => match item.as_table_like().and_then(|t| t.get_key_value(k)) {
                Some((key, next)) => (key.span(), next),
                None => break,
            },
            Seg::Index(i) => match item.get(*i) {
                Some(next) => (None, next),
                None => break,
            },
        };
        best = next.span().or(key_span).or(best);
        item = next;
    }
    best
}

/// The path of the key or value whose span covers byte `offset`.
#[cfg(test)]
fn field_at(text: &str, offset: usize) -> Option<FieldPath> {
    let doc = ImDocument::parse(text).ok()?;
    let mut path = FieldPath::default();
    find(doc.as_item(), offset, &mut path).then_some(path)
}

fn covers(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn find(item: &Item, offset: usize, path: &mut FieldPath) -> bool {
    if let Some(table) = item.as_table_like() {
        for (k, _) in table.iter() {
            let Some((key, child)) = table.get_key_value(k) else {
                continue;
            };
            path.0.push(Seg::Key(k.to_owned()));
            if find(child, offset, path)
                || covers(key.span(), offset)
                || covers(child.span(), offset)
            {
                return true;
            }
            path.0.pop();
        }
        return false;
    }
    if let Some(array) = item.as_array() {
        for (i, _) in array.iter().enumerate() {
            let Some(child) = item.get(i) else {
                continue;
            };
            path.0.push(Seg::Index(i));
            if find(child, offset, path) || covers(child.span(), offset) {
                return true;
            }
            path.0.pop();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }

    #[test]
    fn finds_fields_by_offset() {
        let text = "a = 1\nlist = [\n  \"x\",\n  \"y\",\n]\n[t]\nk = \"v\"\n";
        let at = |needle: &str| {
            field_at(text, text.find(needle).unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(at("1"), "a");
        assert_eq!(at("\"y\""), "list[1]");
        assert_eq!(at("\"v\""), "t.k");
        assert_eq!(at("k ="), "t.k");
    }

    #[test]
    fn syntax_errors_name_the_line_on_one_line() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            a: Option<i64>,
        }
        impl Validate for T {
            fn validate(&self) -> Result<(), Problem> {
                Ok(())
            }
        }
        let err = parse::<T>("x.toml", "\n\na = \n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x.toml:3: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn finds_lines_by_path() {
        let text = "a = 1\nlist = [\n  \"x\",\n  \"y\",\n]\n[t]\nk = \"v\"\n";
        let doc = ImDocument::parse(text).unwrap();
        let line = |p: FieldPath| line_of(text, span_of(doc.as_item(), &p.0).unwrap().start);
        assert_eq!(line(FieldPath::key("list").index(1)), 4);
        assert_eq!(line(FieldPath::key("t").child("k")), 7);
        assert_eq!(line(FieldPath::key("a")), 1);
    }
}
