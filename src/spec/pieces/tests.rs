use super::*;

/// The whole file read by serde_yaml_ng, as text to compare (`RawStack`
/// has no `PartialEq`); `None` when it does not read.
fn whole(src: &str) -> Option<String> {
    serde_yaml_ng::from_str::<RawStack>(src).ok().map(|r| format!("{r:?}"))
}

fn in_pieces(src: &str, pieces: usize) -> Option<String> {
    read_in(src, pieces).map(|r| format!("{r:?}"))
}

/// `n` resources, each a few lines, some with a block scalar and a
/// multi-line flow list.
fn stack(n: usize) -> String {
    let mut s = String::from("stack: s\nregion: eu-west-1\ntags: {team: a}\nresources:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  r{i}:\n    type: ec2.security_group\n    # a comment\n    properties:\n      description: |\n        group {i}\n\n        resources:\n      ingress: [\n          {{port: {i}}}]\n"
        ));
    }
    s.push_str("variables:\n  x: 1\n");
    s
}

#[test]
fn pieces_read_as_the_whole_file() {
    for n in [2, 3, 7, 40] {
        let src = stack(n);
        let expected = whole(&src).expect("the test stack reads");
        for pieces in 2..=5 {
            assert_eq!(in_pieces(&src, pieces).as_deref(), Some(expected.as_str()), "{n} resources, {pieces} pieces");
        }
        // Comments and blank lines at the entries' indent, a comment on
        // the `resources:` line, CRLF line ends.
        let decorated = src.replace("resources:\n  r0", "resources:   # all of them\n\n  # first\n  r0");
        let crlf = src.replace('\n', "\r\n");
        for other in [decorated, crlf] {
            assert_eq!(in_pieces(&other, 3), whole(&other), "{other}");
            assert!(in_pieces(&other, 3).is_some());
        }
    }
    let block = Block::find(&stack(4)).expect("a block");
    assert_eq!(block.entries.len(), 4);
    // A sequence at its key's indent, and a complex key, start no entry.
    let compact = stack(4).replacen("  r2:", "  r9:\n  - a\n  ? r10\n  : b\n  r2:", 1);
    assert_eq!(Block::find(&compact).expect("a block").entries.len(), 5);
    assert_eq!(block.cuts(2).len(), 3);
    // One entry: nothing to cut.
    assert_eq!(in_pieces(&stack(1), 4), None);
}

/// Files where a cut at a line indented like an entry is not between two
/// entries, or where the pieces are not independent: reading in pieces
/// gives the whole file's result or nothing, never something else.
#[test]
fn a_cut_inside_something_else_is_refused_never_read_otherwise() {
    let base = stack(6);
    let quoted =
        |q: char| base.replacen("  r3:\n", &format!("  r3:\n    name: {q}a\n  r9: {{type: ec2.vpc}}\n  b{q}\n"), 1);
    let cases: Vec<(&str, String)> = vec![
        ("a double-quoted scalar over an entry-indented line", quoted('"')),
        ("a single-quoted scalar over an entry-indented line", quoted('\'')),
        ("a flow map over an entry-indented line", base.replacen("  r3:\n", "  r3:\n    tags: {a: b,\n  r9: c}\n", 1)),
        (
            "the `resources:` line inside a quoted scalar",
            format!(
                "stack: \"s\nresources:\n{}\"\nresources: {{}}\n",
                stack(6).split_once("resources:\n").unwrap().1.replace("variables:\n  x: 1\n", "")
            ),
        ),
        ("an alias to an anchor in another piece", {
            let s = base.replacen("description: |\n        group 0", "description: &d |\n        group 0", 1);
            s.replacen(
                "  r5:\n    type: ec2.security_group\n",
                "  r5:\n    type: ec2.security_group\n    name: *d\n",
                1,
            )
        }),
        (
            "an alias to an anchor before the block",
            base.replacen("tags: {team: a}", "tags: {team: &t a}", 1).replacen(
                "  r5:\n    type: ec2.security_group\n",
                "  r5:\n    type: ec2.security_group\n    name: *t\n",
                1,
            ),
        ),
        ("a resource in two pieces", base.replacen("  r5:", "  r0:", 1)),
        ("a second document", format!("{base}---\nstack: t\n")),
        ("a directive", format!("%YAML 1.1\n---\n{base}")),
        ("an entry indented less than the first", base.replacen("  r4:", " r4:", 1)),
        ("a second `resources:` key", format!("{base}resources:\n  z: {{type: ec2.vpc}}\n")),
        ("a tab on a blank line, which libyaml refuses", base.replacen("  r3:", "\t\n  r3:", 1)),
        ("resources as a list", "stack: s\nresources:\n  - a\n  - b\n  - c\n".to_string()),
    ];
    for (what, src) in &cases {
        for pieces in 2..=4 {
            let got = in_pieces(src, pieces);
            assert!(
                got.is_none() || got == whole(src),
                "{what}, {pieces} pieces: read as\n{got:?}\nnot\n{:?}",
                whole(src)
            );
        }
    }
    // The cases that read whole are refused in pieces for the reason
    // given, not by chance: each has a cut inside it.
    for (what, src) in &cases[..6] {
        assert!(whole(src).is_some(), "{what}: reads whole");
        assert_eq!(in_pieces(src, 6), None, "{what}");
    }
}

#[test]
fn small_files_are_read_whole() {
    let src = stack(40);
    assert!(src.len() < 2 * MIN_PIECE_BYTES);
    assert!(read(&src, 8).is_none());
    let big = stack(2 * MIN_PIECE_BYTES / 150 + 100);
    assert!(big.len() > 2 * MIN_PIECE_BYTES);
    assert_eq!(read(&big, 2).map(|r| format!("{r:?}")), whole(&big));
    assert!(read(&big, 1).is_none());
}
