//! Deletes: a destroy's plan, and the order of deletes (an object before
//! what it uses, by live ids and by the spec's edges).

use super::*;

/// Plans deleting every object of the stack/env.
pub fn destroy(stack: &Stack, live: &LiveState) -> Plan {
    let deletes = live
        .objects
        .iter()
        .flat_map(|((kind, _), objects)| objects.iter().map(|o| delete_change(stack, kind, o, "destroy")))
        .collect();
    Plan {
        stack: stack.name.clone(),
        env: stack.env.clone(),
        region: stack.region.clone(),
        resources: order_deletes(stack, deletes),
        read: Vec::new(),
    }
}

/// True if `a`'s live properties mention `b`'s id (a subnet names its VPC, a
/// rule its source group): `a` must go before `b`.
pub fn uses(a: &Live, b: &Live) -> bool {
    pub(super) fn mentions(v: &Value, id: &str) -> bool {
        match v {
            Value::String(s) => s == id,
            Value::Array(xs) => xs.iter().any(|x| mentions(x, id)),
            Value::Object(m) => m.values().any(|x| mentions(x, id)),
            _ => false,
        }
    }
    a.id != b.id && mentions(&a.props, &b.id)
}

/// True if the object `a` (resource name and kind) must be deleted before
/// `b`: its live properties name `b`'s id, or the spec has resource `a`
/// depend on resource `b`. The second covers references an API does not
/// report back (a Redis group's subnet group).
pub fn deleted_before(
    stack: &Stack,
    a: (&str, &dyn DynKind),
    a_live: &Live,
    b: (&str, &dyn DynKind),
    b_live: &Live,
) -> bool {
    let spec_edge = match (in_spec(stack, a), in_spec(stack, b)) {
        (Some(ra), Some(_)) => ra.deps.contains(b.0),
        _ => false,
    };
    spec_edge || uses(a_live, b_live)
}

/// The spec's resource `name` if it has kind `kind`.
pub(super) fn in_spec<'s>(stack: &'s Stack, (name, kind): (&str, &dyn DynKind)) -> Option<&'s Resource> {
    stack.resources.get(name).filter(|r| r.kind.type_name() == kind.type_name())
}

/// Every pair `(j, i)` of `objects` to delete (resource name, kind, live
/// object) where `j` goes before `i` ([`deleted_before`]), found through an
/// index of ids and resource names: linear in the objects' properties and
/// the pairs found, never a comparison of every pair.
pub fn delete_edges(stack: &Stack, objects: &[((&str, &dyn DynKind), &Live)]) -> BTreeSet<(usize, usize)> {
    pub(super) fn strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(xs) => xs.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    let mut by_id: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (who, live)) in objects.iter().enumerate() {
        by_id.entry(live.id.as_str()).or_default().push(i);
        if in_spec(stack, *who).is_some() {
            by_name.entry(who.0).or_default().push(i);
        }
    }
    let mut edges = BTreeSet::new();
    let mut mentioned = Vec::new();
    for (j, (who, live)) in objects.iter().enumerate() {
        mentioned.clear();
        strings(&live.props, &mut mentioned);
        for id in &mentioned {
            for &i in by_id.get(id).into_iter().flatten() {
                if objects[i].1.id != live.id {
                    edges.insert((j, i));
                }
            }
        }
        for dep in in_spec(stack, *who).into_iter().flat_map(|r| &r.deps) {
            for &i in by_name.get(dep.as_str()).into_iter().flatten() {
                if i != j {
                    edges.insert((j, i));
                }
            }
        }
    }
    edges
}

/// Orders deletes so that users go before what they use (the reverse of
/// creation order), ties by kind and name: of the deletes nothing unplaced
/// must precede, the first in that order goes next; a cycle of uses (two
/// groups naming each other) is broken at its first.
pub(super) fn order_deletes(stack: &Stack, mut deletes: Vec<ResourceChange>) -> Vec<ResourceChange> {
    use std::cmp::Reverse;
    deletes.sort_by(|a, b| (a.kind, &a.name, &a.id).cmp(&(b.kind, &b.name, &b.id)));
    let objects: Vec<((&str, &dyn DynKind), &Live)> = deletes
        .iter()
        .map(|r| {
            let kind = crate::kinds::lookup(r.kind).expect("registered kind");
            ((r.name.as_str(), kind), &**r.live.as_ref().expect("a delete has its live object"))
        })
        .collect();
    let n = deletes.len();
    let mut after = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for (j, i) in delete_edges(stack, &objects) {
        after[j].push(i);
        waiting[i] += 1;
    }
    let mut ready: std::collections::BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut first_unplaced = 0;
    while order.len() < n {
        let next = loop {
            match ready.pop() {
                Some(Reverse(i)) if placed[i] => {}
                Some(Reverse(i)) => break i,
                None => {
                    while placed[first_unplaced] {
                        first_unplaced += 1;
                    }
                    break first_unplaced;
                }
            }
        };
        placed[next] = true;
        order.push(next);
        for &i in &after[next] {
            waiting[i] -= 1;
            if waiting[i] == 0 && !placed[i] {
                ready.push(Reverse(i));
            }
        }
    }
    let mut slots: Vec<Option<ResourceChange>> = deletes.into_iter().map(Some).collect();
    order.into_iter().map(|i| slots[i].take().expect("placed once")).collect()
}
