//! Work split over the machine's cores, results in order.
//!
//! Loading a spec and planning do the same work for every resource, and
//! resources are independent of each other (a plan: of those on the same
//! level of the graph). A large stack is cut into contiguous chunks, one
//! per core; the calling thread takes the first. Below a size where a
//! thread costs more than it saves, everything runs on the calling thread.
//!
//! # Guarantees
//! - The results come back in the order of the items, whatever the number
//!   of threads: callers merge them as if one thread had made them.
//! - Each chunk has a state of its own (a resolver's list of problems):
//!   nothing is shared but what `f` reads.
//! - A panic in a helper thread is raised again on the calling thread.

use std::num::NonZeroUsize;

/// The cores this process may run on (its CPU affinity and cgroup quota
/// count), at least one.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// How many threads share `n` items when each should have at least
/// `min_per_thread`: at most one per core, and at least one.
pub fn threads_for(n: usize, min_per_thread: usize) -> usize {
    cores().min(n / min_per_thread.max(1)).max(1)
}

/// Maps `items` with `f` on `threads` threads, in contiguous chunks: the
/// first on the calling thread with state `first`, each other on a thread
/// of its own with a state from `state`. Returns the helpers' states, in
/// chunk order, and every result in item order.
pub fn map_chunks<T: Send, S: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    first: &mut S,
    state: impl Fn() -> S,
    f: impl Fn(&mut S, T) -> R + Sync,
) -> (Vec<S>, Vec<R>) {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return (Vec::new(), items.into_iter().map(|t| f(first, t)).collect());
    }
    let chunk = items.len().div_ceil(threads);
    let mut rest = items.into_iter();
    let mine: Vec<T> = rest.by_ref().take(chunk).collect();
    let mut chunks = Vec::with_capacity(threads - 1);
    loop {
        let c: Vec<T> = rest.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push((state(), c));
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|(mut s, c)| {
                scope.spawn(move || {
                    let out: Vec<R> = c.into_iter().map(|t| f(&mut s, t)).collect();
                    (s, out)
                })
            })
            .collect();
        let mut all: Vec<R> = mine.into_iter().map(|t| f(first, t)).collect();
        let mut states = Vec::with_capacity(handles.len());
        for h in handles {
            let (s, out) = h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            states.push(s);
            all.extend(out);
        }
        (states, all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_and_each_chunk_its_state() {
        for threads in [1, 2, 3, 7, 50] {
            let mut mine = Vec::new();
            let (helpers, out) =
                map_chunks((0..20).collect(), threads, &mut mine, Vec::new, |seen: &mut Vec<i32>, x| {
                    seen.push(x);
                    x * 10
                });
            assert_eq!(out, (0..20).map(|x| x * 10).collect::<Vec<_>>(), "{threads}");
            // The calling thread's chunk comes first; every item was seen
            // by exactly one state, in order.
            let seen: Vec<i32> = std::iter::once(mine).chain(helpers).flatten().collect();
            assert_eq!(seen, (0..20).collect::<Vec<_>>(), "{threads}");
        }
        let (_, none) = map_chunks(Vec::<i32>::new(), 4, &mut (), || (), |_, x| x);
        assert!(none.is_empty());
    }

    #[test]
    fn a_helper_panic_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            map_chunks((0..4).collect(), 2, &mut (), || (), |_, x: i32| assert!(x < 3, "item {x}"))
        });
        assert!(caught.is_err());
    }

    #[test]
    fn small_work_stays_on_the_calling_thread() {
        assert_eq!(threads_for(10, 256), 1);
        assert_eq!(threads_for(0, 0), 1);
        assert!(threads_for(1 << 20, 1) >= 1);
    }
}
