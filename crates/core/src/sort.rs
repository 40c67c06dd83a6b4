//! Stable sorting with one copy of the sort algorithm in the WebAssembly.
//!
//! Every `slice::sort_by` call with its own element type or comparator is a separate copy of Rust's
//! sort (about 4 KB of wasm each; Slicelab had some 30). In wasm32 builds, [`by`] sorts a list of
//! indices through one non-generic function and then moves the elements into that order, so the
//! algorithm exists once. Natively it is `slice::sort_by`. Both are stable sorts with the same
//! comparator, so they give the same order (tested below against the standard sort).
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Sorts `v` stably by `cmp`.
pub fn by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if cfg!(target_arch = "wasm32") {
        by_index(v, &mut cmp);
    } else {
        v.sort_by(cmp);
    }
}

/// Sorts `v` stably by the key `f` gives each element.
pub fn by_key<T, K: Ord>(v: &mut [T], mut f: impl FnMut(&T) -> K) {
    by(v, |a, b| f(a).cmp(&f(b)));
}

/// Sorts `v` stably in its natural order.
pub fn all<T: Ord>(v: &mut [T]) {
    by(v, T::cmp);
}

/// A map of the pairs (a later pair with an equal key wins, as with `collect`). `collect` sorts the
/// pairs first, a copy of the sort algorithm for each map type; in wasm32 this inserts them one by one.
pub fn map<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    if cfg!(target_arch = "wasm32") {
        let mut m = BTreeMap::new();
        for (k, v) in pairs {
            m.insert(k, v);
        }
        m
    } else {
        pairs.into_iter().collect()
    }
}

/// A set of the items, as [`map`] is a map.
pub fn set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    if cfg!(target_arch = "wasm32") {
        let mut m = BTreeSet::new();
        for t in items {
            m.insert(t);
        }
        m
    } else {
        items.into_iter().collect()
    }
}

/// The index-sorting path: one sort of `u32` indices for every element type.
fn by_index<T>(v: &mut [T], cmp: &mut dyn FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let order = {
        let items = &*v;
        sorted_order(items.len(), &mut |a, b| cmp(&items[a], &items[b]))
    };
    permute(v, order);
}

/// The indices `0..n` sorted stably by `cmp` on them.
#[inline(never)]
fn sorted_order(n: usize, cmp: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by(|&a, &b| cmp(a as usize, b as usize));
    order
}

/// Rearranges `v` so that position `i` holds what was at `order[i]`, following each cycle of the
/// permutation with swaps (linear time; `order` is used up as the record of what is done).
fn permute<T>(v: &mut [T], mut order: Vec<u32>) {
    for start in 0..v.len() {
        let mut cur = start;
        loop {
            let next = order[cur] as usize;
            order[cur] = cur as u32;
            if next == start || next == cur {
                break;
            }
            v.swap(cur, next);
            cur = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_index_sort_orders_as_the_standard_stable_sort(v in proptest::collection::vec((0u8..6, any::<u16>()), 0..300)) {
            // Compare on the first field only, so that ties show whether the sort is stable.
            let mut want = v.clone();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            let mut got = v.clone();
            by_index(&mut got, &mut |a, b| a.0.cmp(&b.0));
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn the_public_sorts_sort() {
        let mut v = vec!["b", "a", "c", "a"];
        all(&mut v);
        assert_eq!(v, ["a", "a", "b", "c"]);
        by_key(&mut v, |s| std::cmp::Reverse(*s));
        assert_eq!(v, ["c", "b", "a", "a"]);
        let mut rev: Vec<u32> = (0..1000).rev().collect();
        by_index(&mut rev, &mut |a, b| a.cmp(b));
        assert!(rev.iter().enumerate().all(|(i, &x)| x == i as u32));
        assert_eq!(map([("b", 1), ("a", 2), ("b", 3)]), BTreeMap::from([("a", 2), ("b", 3)]));
        assert_eq!(set(["b", "a", "b"]), BTreeSet::from(["a", "b"]));
    }
}
