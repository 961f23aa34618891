//! Line/column index of a YAML document, keyed by the path of each node.
//!
//! serde tells us *what* is wrong and at which path (through
//! `serde_path_to_error`); this index tells us *where* that path is in the
//! file. It is built from saphyr-parser's event stream, which carries a
//! position for every node, and it also reports duplicate mapping keys, which
//! serde cannot see once a map has been built.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A position in a file, 1-based line and column, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A duplicate key found while indexing.
#[derive(Debug, Clone)]
pub struct DuplicateKey {
    pub path: String,
    pub key: String,
    pub pos: Pos,
    pub first: Pos,
}

#[derive(Debug, Default)]
pub struct SpanIndex {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    pub duplicates: Vec<DuplicateKey>,
}

enum Frame {
    Map { path: String, key: Option<(String, Pos)>, seen: HashMap<String, Pos> },
    Seq { path: String, index: usize },
}

/// Appends a map key to a path: `a` + `b` → `a.b`.
pub fn join_key(path: &str, key: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1 + key.len());
    push_key(&mut out, path, key);
    out
}

/// Appends a sequence index to a path: `a` + 3 → `a[3]`.
pub fn join_index(path: &str, index: usize) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    push_index(&mut out, path, index);
    out
}

/// [`join_key`] into `out`, which it appends to.
pub fn push_key(out: &mut String, path: &str, key: &str) {
    out.push_str(path);
    if !path.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

/// [`join_index`] into `out`, which it appends to.
pub fn push_index(out: &mut String, path: &str, index: usize) {
    use std::fmt::Write;
    out.push_str(path);
    // Writing to a String cannot fail.
    let _ = write!(out, "[{index}]");
}

impl SpanIndex {
    /// Indexes `source`. A document that does not scan yields the scanner's
    /// error position and message.
    pub fn build(source: &str) -> Result<Self, (Pos, String)> {
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(source) {
            let (event, span) = item.map_err(|e| {
                let m = e.marker();
                (Pos { line: m.line(), col: m.col() + 1 }, e.info().to_string())
            })?;
            let pos = Pos { line: span.start.line(), col: span.start.col() + 1 };
            match event {
                Event::Scalar(value, ..) => {
                    // A scalar is either a map key or a value.
                    if let Some(Frame::Map { path, key, seen }) = stack.last_mut()
                        && key.is_none()
                    {
                        let full = join_key(path, &value);
                        if let Some(first) = seen.get(value.as_ref()) {
                            index.duplicates.push(DuplicateKey {
                                path: path.clone(),
                                key: value.to_string(),
                                pos,
                                first: *first,
                            });
                        } else {
                            seen.insert(value.to_string(), pos);
                        }
                        index.keys.entry(full).or_insert(pos);
                        *key = Some((value.to_string(), pos));
                        continue;
                    }
                    let path = Self::child_path(&mut stack);
                    index.values.entry(path).or_insert(pos);
                }
                Event::Alias(_) => {
                    let path = Self::child_path(&mut stack);
                    index.values.entry(path).or_insert(pos);
                }
                Event::MappingStart(..) => {
                    let path = Self::child_path(&mut stack);
                    index.values.entry(path.clone()).or_insert(pos);
                    stack.push(Frame::Map { path, key: None, seen: HashMap::new() });
                }
                Event::SequenceStart(..) => {
                    let path = Self::child_path(&mut stack);
                    index.values.entry(path.clone()).or_insert(pos);
                    stack.push(Frame::Seq { path, index: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Ok(index)
    }

    /// The path of the node that starts now, advancing the parent frame.
    fn child_path(stack: &mut [Frame]) -> String {
        match stack.last_mut() {
            None => String::new(),
            Some(Frame::Map { path, key, .. }) => match key.take() {
                Some((k, _)) => join_key(path, &k),
                // A complex (non-scalar) key: index it under the map itself.
                None => path.clone(),
            },
            Some(Frame::Seq { path, index }) => {
                let p = join_index(path, *index);
                *index += 1;
                p
            }
        }
    }

    /// Where the value at `path` starts, falling back to its closest indexed
    /// ancestor (a missing field is reported at its parent).
    pub fn value(&self, path: &str) -> Option<Pos> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.values.get(&p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }

    /// Where the key naming `path` starts (for "unknown field" errors), or
    /// the value's position if the path has no key.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "stack: s\nresources:\n  vpc:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.0.0.0/16\n  sg:\n    type: ec2.security_group\n    properties:\n      ingress:\n        - protocol: tcp\n          from_port: 22\n";

    #[test]
    fn indexes_nested_keys_values_and_sequences() {
        let idx = SpanIndex::build(DOC).unwrap();
        assert_eq!(idx.value("resources.vpc.properties.cidr_block"), Some(Pos { line: 6, col: 19 }));
        assert_eq!(idx.key("resources.vpc.properties.cidr_block"), Some(Pos { line: 6, col: 7 }));
        assert_eq!(idx.value("resources.sg.properties.ingress[0].from_port"), Some(Pos { line: 12, col: 22 }));
        assert_eq!(idx.key("resources.sg.type"), Some(Pos { line: 8, col: 5 }));
        assert!(idx.duplicates.is_empty());
    }

    #[test]
    fn missing_path_falls_back_to_closest_ancestor() {
        let idx = SpanIndex::build(DOC).unwrap();
        assert_eq!(idx.value("resources.vpc.properties.nope"), idx.value("resources.vpc.properties"));
        assert_eq!(idx.value("resources.sg.properties.ingress[0].x"), Some(Pos { line: 11, col: 11 }));
    }

    #[test]
    fn reports_duplicate_keys_with_both_positions() {
        let idx = SpanIndex::build("resources:\n  a: 1\n  b: 2\n  a: 3\n").unwrap();
        assert_eq!(idx.duplicates.len(), 1);
        let d = &idx.duplicates[0];
        assert_eq!((d.path.as_str(), d.key.as_str()), ("resources", "a"));
        assert_eq!(d.pos, Pos { line: 4, col: 3 });
        assert_eq!(d.first, Pos { line: 2, col: 3 });
    }

    #[test]
    fn malformed_yaml_reports_a_position() {
        let err = SpanIndex::build("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.0.line >= 1, "{err:?}");
    }
}
