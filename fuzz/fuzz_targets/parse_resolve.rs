//! Any bytes as a stack file, through everything `converge validate` does
//! offline: YAML parsing, the location index, resolving variables,
//! environments, references and templates, kind checks, the graph. The
//! property: an error or a stack, never a panic, a hang or unbounded
//! memory (libFuzzer's -rss_limit_mb and -timeout enforce the last two).
#![no_main]

use std::path::Path;

use converge::spec::{LoadOptions, load_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    // The environment the GitLab stack defines, and none: both paths.
    for env in [None, Some("staging".to_string())] {
        let opts = LoadOptions { env, ..LoadOptions::default() };
        let _ = load_str(Path::new("stacks/fuzz.yaml"), src, &opts);
    }
});
