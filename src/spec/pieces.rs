//! Reading a large stack file on several threads.
//!
//! libyaml reads a document on one thread, and at 10,000 resources that is
//! half of a load. Here the `resources:` block is cut between two of its
//! entries into one piece per thread, each piece is read as a YAML document
//! of its own, and the rest of the file is read once with `resources: {}`
//! in the block's place.
//!
//! # Guarantees
//! - [`read`] gives what `serde_yaml_ng::from_str::<RawStack>` gives for
//!   the whole file, or `None`, and the caller reads the whole file (which
//!   is also how every problem is reported).
//! - A cut is made only before a line indented exactly as the block's first
//!   entry that does not start with `-`, `?` or `:` (a sequence may sit at
//!   its key's indent). Such a line starts the next entry unless it
//!   continues a quoted scalar or a flow collection (block scalars end
//!   before a line this shallow).
//!   In that case the piece before the cut does not read on its own: it
//!   ends in an unclosed quote or bracket. The `resources:` line is checked
//!   the same way: the text up to it, read alone with `resources: {}`, must
//!   read, so that line is a key of the top-level map and nothing else.
//! - An alias whose anchor is in another piece does not read; a key in two
//!   pieces is refused here. Either gives `None`.
//! - Whatever else this does not handle also gives `None`: merge keys (the
//!   caller's check), more than one document or a directive, a line inside
//!   the block indented less than its entries or with a tab before them,
//!   and a second `resources:` line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::raw::{RawResource, RawStack};
use super::strict;

/// Below this many bytes a piece costs a thread more than it saves.
const MIN_PIECE_BYTES: usize = 128 * 1024;

/// Reads `src` on at most `threads` threads; `None` when it is small, has
/// nothing to cut, or a piece does not read (see the module's guarantees).
pub(super) fn read(src: &str, threads: usize) -> Option<RawStack> {
    let pieces = threads.min(src.len() / MIN_PIECE_BYTES);
    if pieces < 2 {
        return None;
    }
    read_in(src, pieces)
}

/// [`read`] in at most `pieces` pieces, whatever the file's size.
fn read_in(src: &str, pieces: usize) -> Option<RawStack> {
    let block = Block::find(src)?;
    let cuts = block.cuts(pieces);
    if cuts.len() < 3 {
        return None;
    }
    let mut rest = String::with_capacity(block.key + (src.len() - block.end) + 16);
    rest.push_str(&src[..block.key]);
    rest.push_str("resources: {}\n");
    serde_yaml_ng::from_str::<IgnoredAny>(&rest).ok()?;
    rest.push_str(&src[block.end..]);

    let texts: Vec<&str> = cuts.windows(2).map(|w| &src[w[0]..w[1]]).collect();
    let threads = texts.len();
    let (_, maps) = crate::par::map_chunks(
        texts,
        threads,
        &mut (),
        || (),
        |(), text| serde_yaml_ng::from_str::<Entries>(text).ok().map(|e| e.0),
    );
    let mut raw: RawStack = serde_yaml_ng::from_str(&rest).ok()?;
    for map in maps {
        let mut map = map?;
        let both = raw.resources.len() + map.len();
        raw.resources.append(&mut map);
        if raw.resources.len() != both {
            return None;
        }
    }
    Some(raw)
}

/// A piece: entries of `resources:`, none twice.
struct Entries(BTreeMap<String, RawResource>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        strict::map(d).map(Entries)
    }
}

/// Where the `resources:` block is, by byte offsets into the file.
#[derive(Debug, PartialEq)]
struct Block {
    /// The start of the `resources:` line.
    key: usize,
    /// The first byte after it.
    start: usize,
    /// The first byte after the block: the next top-level line, or the end.
    end: usize,
    /// The start of each line indented as the first entry, but for a
    /// sequence item or a complex key's `?` and `:`.
    entries: Vec<usize>,
}

impl Block {
    fn find(src: &str) -> Option<Block> {
        let mut block: Option<Block> = None;
        let mut inside = false;
        let mut indent = None;
        let mut at = 0;
        for line in src.split_inclusive('\n') {
            let here = at;
            at += line.len();
            if line.starts_with("---") || line.starts_with("...") || line.starts_with('%') {
                return None;
            }
            let text = line.trim_end_matches(['\n', '\r']);
            let body = text.trim_start_matches(' ');
            let spaces = text.len() - body.len();
            // Blank and comment lines neither start an entry nor end the
            // block.
            if matches!(body.trim_start_matches([' ', '\t']).chars().next(), None | Some('#')) {
                continue;
            }
            if spaces == 0 {
                inside = false;
                if let Some(after) = body.strip_prefix("resources:")
                    && (after.is_empty() || after.starts_with([' ', '\t']))
                    && matches!(after.trim_start().chars().next(), None | Some('#'))
                {
                    if block.is_some() {
                        return None;
                    }
                    block = Some(Block { key: here, start: at, end: src.len(), entries: Vec::new() });
                    inside = true;
                } else if let Some(b) = block.as_mut()
                    && b.end == src.len()
                {
                    b.end = here;
                }
                continue;
            }
            let Some(b) = block.as_mut().filter(|_| inside) else { continue };
            let indent = *indent.get_or_insert(spaces);
            if spaces < indent || (spaces == indent && body.starts_with('\t')) {
                return None;
            }
            if spaces == indent && !body.starts_with(['-', '?', ':']) {
                b.entries.push(here);
            }
        }
        block.filter(|b| !b.entries.is_empty())
    }

    /// Byte offsets that cut the block into at most `pieces` pieces of
    /// about the same size, each starting at an entry; the first is the
    /// block's start and the last its end.
    fn cuts(&self, pieces: usize) -> Vec<usize> {
        let mut cuts = vec![self.start];
        let len = self.end - self.start;
        for k in 1..pieces {
            let target = self.start + len * k / pieces;
            let i = self.entries.partition_point(|&e| e < target);
            if let Some(&e) = self.entries.get(i)
                && e > *cuts.last().unwrap_or(&0)
            {
                cuts.push(e);
            }
        }
        cuts.push(self.end);
        cuts
    }
}

#[cfg(test)]
mod tests;
