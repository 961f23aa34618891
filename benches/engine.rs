//! Engine-only benchmark: parse + resolve, graph, and diff of a synthetic
//! stack of N resources against a live state where every object exists and
//! 1 % differ. No AWS, no emulator: what converge itself costs.
//!
//! `cargo bench --bench engine -- [N …]` runs each size in processes of its
//! own (so peak memory is that size's), `CONVERGE_BENCH_RUNS` times (default
//! 5), and prints a JSON line per size of the runs' medians:
//! `{"resources": N, "parse_ms": …, "graph_ms": …, "diff_ms": …,
//! "total_ms": …, "destroy_ms": …, "peak_rss_mb": …, "runs": …,
//! "min_total_ms": …}`; `destroy_ms` (not in the total) orders a destroy
//! of every object.
//! `scripts/bench` runs it for 1k, 10k and 50k resources.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use converge::graph::Graph;
use converge::kinds::Live;
use converge::live::LiveState;
use converge::plan::{desired_props, plan};
use converge::spec::{LoadOptions, load_str};
use serde_json::{Value, json};

/// A stack of about `n` resources: one VPC per 100 resources, and in each
/// VPC security groups, each allowing the previous one (a chain of
/// references), and buckets.
fn synthetic(n: usize) -> String {
    let mut s = String::from("stack: bench\nregion: eu-west-1\nresources:\n");
    let blocks = n.div_ceil(100);
    for b in 0..blocks {
        s.push_str(&format!(
            "  vpc{b}:\n    type: ec2.vpc\n    properties:\n      cidr_block: 10.{}.0.0/16\n",
            b % 250
        ));
        for i in 0..49 {
            let from = if i == 0 {
                String::new()
            } else {
                format!("\n          security_groups: [\"${{resources.sg{b}_{}.id}}\"]", i - 1)
            };
            s.push_str(&format!(
                "  sg{b}_{i}:\n    type: ec2.security_group\n    properties:\n      vpc_id: ${{resources.vpc{b}.id}}\n      description: group {i}\n      ingress:\n        - port: 443\n          protocol: tcp{}\n",
                if from.is_empty() { "\n          cidr_blocks: [10.0.0.0/8]".to_string() } else { from }
            ));
        }
        for i in 0..50 {
            s.push_str(&format!("  bucket{b}_{i}:\n    type: s3.bucket\n    name: bench-{b}-{i}\n"));
        }
    }
    s
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn one(n: usize) -> Value {
    let src = synthetic(n);
    let t = Instant::now();
    let stack = load_str(Path::new("bench.yaml"), &src, &LoadOptions::default()).expect("the synthetic stack loads");
    let parse = t.elapsed();
    let t = Instant::now();
    let graph = Graph::new(stack.resources.values().map(|r| (r.name.as_str(), &r.deps)));
    let order = graph.order();
    let graph_time = t.elapsed();
    assert_eq!(order.len(), stack.resources.len());

    // Live state (not timed): every object as the spec wants it, 1 % with
    // a description changed by hand.
    let known: BTreeMap<String, BTreeMap<String, Value>> =
        stack.resources.keys().map(|n| (n.clone(), [("id".to_string(), json!(format!("id-{n}")))].into())).collect();
    let mut live = LiveState::default();
    for (i, (name, r)) in stack.resources.iter().enumerate() {
        let mut props = desired_props(r, &known).expect("resolves");
        if i % 100 == 7 && r.kind.type_name() == "ec2.security_group" {
            props["description"] = json!("changed by hand");
        }
        let outputs = known[name].clone();
        let l = Live { name: name.clone(), id: format!("id-{name}"), props, tags: r.tags.clone(), outputs };
        live.objects.entry((r.kind.type_name(), name.clone())).or_default().push(l.into());
    }
    let t = Instant::now();
    let p = plan(&stack, &live, None).expect("plans");
    let diff = t.elapsed();
    let peak = peak_rss_mb();
    // Not in the total: the order of a destroy of every object, users first.
    let t = Instant::now();
    let d = converge::plan::destroy(&stack, &live);
    let destroy = t.elapsed();
    assert_eq!(d.resources.len(), stack.resources.len());
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    json!({
        "resources": stack.resources.len(),
        "changes": p.resources.iter().filter(|r| r.action != converge::plan::Action::NoOp).count(),
        "parse_ms": ms(parse),
        "graph_ms": ms(graph_time),
        "diff_ms": ms(diff),
        "total_ms": ms(parse + graph_time + diff),
        "destroy_ms": ms(destroy),
        "peak_rss_mb": peak,
    })
}

fn main() {
    // As the converge binary does.
    converge::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let [flag, n] = args.as_slice()
        && flag == "one"
    {
        println!("{}", one(n.parse().expect("a size")));
        return;
    }
    let sizes: Vec<usize> = if args.is_empty() {
        vec![1_000, 10_000, 50_000]
    } else {
        args.iter().map(|a| a.parse().expect("a size")).collect()
    };
    let me = std::env::current_exe().expect("this benchmark's path");
    // This shared machine's timings move by tens of percent between runs:
    // each size runs in `CONVERGE_BENCH_RUNS` processes (default 5), and
    // each field is their median; `min_total_ms` is the fastest run.
    let runs: usize = std::env::var("CONVERGE_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5).max(1);
    for n in sizes {
        let rows: Vec<Value> = (0..runs)
            .map(|_| {
                let out = std::process::Command::new(&me).args(["one", &n.to_string()]).output().expect("run one size");
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                serde_json::from_slice(&out.stdout).expect("one size's JSON line")
            })
            .collect();
        let median = |k: &str| {
            let mut v: Vec<f64> = rows.iter().filter_map(|r| r[k].as_f64()).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let mut out = rows[0].clone();
        for k in ["parse_ms", "graph_ms", "diff_ms", "total_ms", "destroy_ms", "peak_rss_mb"] {
            out[k] = json!(median(k));
        }
        out["runs"] = json!(runs);
        out["min_total_ms"] = json!(rows.iter().filter_map(|r| r["total_ms"].as_f64()).fold(f64::INFINITY, f64::min));
        println!("{out}");
    }
}
