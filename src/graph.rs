//! The dependency graph between a stack's resources.
//!
//! Edges point from a dependency to its dependent, so a topological order
//! is a valid creation order and its reverse a valid deletion order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

/// Borrows the resources' names: building one allocates no strings.
pub struct Graph<'a> {
    /// Node `i` is the `i`-th name in sorted order.
    g: DiGraph<&'a str, ()>,
}

impl<'a> Graph<'a> {
    /// Builds the graph from `(resource, its dependencies)`. Dependencies on
    /// names that are not nodes are ignored (the resolver reports them).
    ///
    /// Nodes are added in name order, so a node's index orders it by name
    /// too ([`Graph::order`] breaks ties without comparing strings), and a
    /// name is found by binary search. Built from a stack's resources (a
    /// sorted map), node `i` is its `i`-th resource.
    pub fn new<I: IntoIterator<Item = (&'a str, &'a BTreeSet<String>)>>(items: I) -> Graph<'a> {
        let mut items: Vec<_> = items.into_iter().collect();
        if !items.is_sorted_by(|a, b| a.0 < b.0) {
            items.sort_unstable_by_key(|(name, _)| *name);
            items.dedup_by_key(|(name, _)| *name);
        }
        let mut g = DiGraph::with_capacity(items.len(), items.len());
        for (name, _) in &items {
            g.add_node(*name);
        }
        let mut graph = Graph { g };
        for (i, (_, deps)) in items.iter().enumerate() {
            for d in deps.iter() {
                if let Some(from) = graph.index(d) {
                    graph.g.add_edge(from, NodeIndex::new(i), ());
                }
            }
        }
        graph
    }

    fn index(&self, name: &str) -> Option<NodeIndex> {
        self.g.raw_nodes().binary_search_by(|n| (*n.weight).cmp(name)).ok().map(NodeIndex::new)
    }

    /// A dependency cycle as `[a, b, a]` (a depends on b depends on a),
    /// starting from its alphabetically first member; `None` if acyclic.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        let mut best: Option<Vec<String>> = None;
        for scc in petgraph::algo::tarjan_scc(&self.g) {
            let start = *scc.iter().min_by_key(|n| &self.g[**n])?;
            let cyclic = scc.len() > 1 || self.g.contains_edge(start, start);
            if !cyclic {
                continue;
            }
            // Shortest path start → … → start along "depends on" edges.
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
            let mut queue = VecDeque::from([start]);
            let mut closing = None;
            'bfs: while let Some(n) = queue.pop_front() {
                let mut next: Vec<NodeIndex> = self.g.neighbors_directed(n, Direction::Incoming).collect();
                next.sort_by_key(|m| &self.g[*m]);
                for m in next {
                    if m == start {
                        closing = Some(n);
                        break 'bfs;
                    }
                    if members.contains(&m) && !parent.contains_key(&m) {
                        parent.insert(m, n);
                        queue.push_back(m);
                    }
                }
            }
            let mut path = vec![self.g[start].to_string()];
            let mut n = closing?;
            let mut rev = Vec::new();
            while n != start {
                rev.push(self.g[n].to_string());
                n = parent[&n];
            }
            path.extend(rev.into_iter().rev());
            path.push(self.g[start].to_string());
            if best.as_ref().is_none_or(|b| path[0] < b[0]) {
                best = Some(path);
            }
        }
        best
    }

    /// Every resource, dependencies before dependents, ties by name.
    pub fn order(&self) -> Vec<String> {
        self.order_indices().into_iter().map(|i| self.g[NodeIndex::new(i)].to_string()).collect()
    }

    /// [`Graph::order`] as node indices: for a graph built from a stack's
    /// resources, indices into them in name order.
    pub fn order_indices(&self) -> Vec<usize> {
        let mut indegree: Vec<usize> =
            self.g.node_indices().map(|n| self.g.neighbors_directed(n, Direction::Incoming).count()).collect();
        // Indices are in name order (see `new`): the smallest ready index is
        // the alphabetically first ready resource.
        let mut ready: BinaryHeap<Reverse<usize>> =
            indegree.iter().enumerate().filter(|(_, d)| **d == 0).map(|(n, _)| Reverse(n)).collect();
        let mut out = Vec::with_capacity(indegree.len());
        while let Some(Reverse(n)) = ready.pop() {
            out.push(n);
            for m in self.g.neighbors_directed(NodeIndex::new(n), Direction::Outgoing) {
                let d = &mut indegree[m.index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(m.index()));
                }
            }
        }
        out
    }

    /// The nodes of `order` (an [`Graph::order_indices`]) by level: a node's
    /// level is one more than its dependencies' deepest, so nodes of one
    /// level depend only on those of earlier levels. Within a level, in
    /// the order of `order`.
    pub fn levels(&self, order: &[usize]) -> Vec<Vec<usize>> {
        let mut level = vec![0usize; self.g.node_count()];
        let mut out: Vec<Vec<usize>> = Vec::new();
        for &n in order {
            let l = self
                .g
                .neighbors_directed(NodeIndex::new(n), Direction::Incoming)
                .map(|d| level[d.index()] + 1)
                .max()
                .unwrap_or(0);
            level[n] = l;
            if out.len() <= l {
                out.resize_with(l + 1, Vec::new);
            }
            out[l].push(n);
        }
        out
    }

    /// `targets` and everything they depend on, transitively.
    pub fn with_dependencies(&self, targets: &BTreeSet<String>) -> BTreeSet<String> {
        self.closure(targets, Direction::Incoming)
    }

    /// Everything that depends on `name`, transitively (`name` excluded).
    pub fn dependents(&self, name: &str) -> BTreeSet<String> {
        let mut all = self.closure(&BTreeSet::from([name.to_string()]), Direction::Outgoing);
        all.remove(name);
        all
    }

    fn closure(&self, start: &BTreeSet<String>, dir: Direction) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeIndex> = start.iter().filter_map(|n| self.index(n)).collect();
        while let Some(n) = stack.pop() {
            if seen.insert(self.g[n].to_string()) {
                stack.extend(self.g.neighbors_directed(n, dir));
            }
        }
        seen
    }

    /// Direct dependencies of `name`, sorted.
    pub fn dependencies(&self, name: &str) -> Vec<String> {
        let Some(n) = self.index(name) else {
            return Vec::new();
        };
        let mut v: Vec<String> =
            self.g.neighbors_directed(n, Direction::Incoming).map(|m| self.g[m].to_string()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&'static str, &[&str])]) -> Graph<'static> {
        // The graph borrows its nodes' dependencies: a test's may live on.
        let deps: &'static [BTreeSet<String>] =
            edges.iter().map(|(_, d)| d.iter().map(|s| s.to_string()).collect()).collect::<Vec<_>>().leak();
        Graph::new(edges.iter().zip(deps).map(|((n, _), d)| (*n, d)))
    }

    #[test]
    fn order_puts_dependencies_first_and_is_deterministic() {
        let g =
            graph(&[("sg", &["vpc"]), ("subnet_b", &["vpc"]), ("subnet_a", &["vpc"]), ("vpc", &[]), ("bucket", &[])]);
        assert_eq!(g.order(), ["bucket", "vpc", "sg", "subnet_a", "subnet_b"]);
        // Nodes are indexed by name: bucket 0, sg 1, subnet_a 2, subnet_b 3,
        // vpc 4.
        assert_eq!(g.order_indices(), [0, 4, 1, 2, 3]);
        assert_eq!(g.levels(&g.order_indices()), [vec![0, 4], vec![1, 2, 3]]);
        let chain = graph(&[("c", &["b"]), ("b", &["a"]), ("a", &[]), ("d", &["a", "c"])]);
        assert_eq!(chain.levels(&chain.order_indices()), [vec![0], vec![1], vec![2], vec![3]]);
    }

    #[test]
    fn finds_and_prints_cycles() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert_eq!(g.find_cycle().unwrap(), ["a", "b", "c", "a"]);
        let g = graph(&[("a", &["a"])]);
        assert_eq!(g.find_cycle().unwrap(), ["a", "a"]);
        let g = graph(&[("a", &["b"]), ("b", &[])]);
        assert!(g.find_cycle().is_none());
    }

    #[test]
    fn closures_follow_edges_transitively() {
        let g =
            graph(&[("vpc", &[]), ("subnet", &["vpc"]), ("sg", &["vpc"]), ("db", &["subnet", "sg"]), ("bucket", &[])]);
        let t = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(g.with_dependencies(&t(&["db"])), t(&["db", "subnet", "sg", "vpc"]));
        assert_eq!(g.dependencies("db"), ["sg", "subnet"]);
        assert_eq!(g.dependents("vpc"), t(&["subnet", "sg", "db"]));
        assert_eq!(g.dependents("db"), t(&[]));
    }
}
