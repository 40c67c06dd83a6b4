//! Small ordered maps and sets kept as sorted vectors.
//!
//! `BTreeMap` brings its node-balancing code into the WebAssembly once per key and value type (about
//! 2–4 KB each; Slicelab had some 70 such types, near a tenth of the gzipped wasm). Most of those maps
//! hold a handful of entries: zones, nodes, a Service's ports or slices, a node's Services. [`VecMap`]
//! and [`VecSet`] keep them as one sorted `Vec`: the same ordered iteration, so every outcome is the
//! same, with lookups by binary search and a fraction of the code. Inserting into the middle moves the
//! tail, so maps that grow with the number of Pods stay `BTreeMap`s.
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

/// An ordered map on a sorted vector: a drop-in for the parts of `BTreeMap` Slicelab uses.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VecMap<K, V> {
    items: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap { items: Vec::new() }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.items.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

fn first<K, V>(e: &(K, V)) -> &K {
    &e.0
}
fn pair<K, V>(e: &(K, V)) -> (&K, &V) {
    (&e.0, &e.1)
}
fn pair_mut<K, V>(e: &mut (K, V)) -> (&K, &mut V) {
    (&e.0, &mut e.1)
}
fn second<K, V>(e: &(K, V)) -> &V {
    &e.1
}
fn second_mut<K, V>(e: &mut (K, V)) -> &mut V {
    &mut e.1
}

pub type Iter<'a, K, V> =
    std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
pub type Keys<'a, K, V> = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> &'a K>;
pub type Values<'a, K, V> = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> &'a V>;
pub type ValuesMut<'a, K, V> =
    std::iter::Map<std::slice::IterMut<'a, (K, V)>, fn(&'a mut (K, V)) -> &'a mut V>;
pub type IterMut<'a, K, V> =
    std::iter::Map<std::slice::IterMut<'a, (K, V)>, fn(&'a mut (K, V)) -> (&'a K, &'a mut V)>;

impl<K, V> VecMap<K, V> {
    pub const fn new() -> Self {
        VecMap { items: Vec::new() }
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn clear(&mut self) {
        self.items.clear()
    }
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.items.iter().map(pair as fn(&(K, V)) -> (&K, &V))
    }
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        self.items
            .iter_mut()
            .map(pair_mut as fn(&mut (K, V)) -> (&K, &mut V))
    }
    pub fn keys(&self) -> Keys<'_, K, V> {
        self.items.iter().map(first as fn(&(K, V)) -> &K)
    }
    pub fn values(&self) -> Values<'_, K, V> {
        self.items.iter().map(second as fn(&(K, V)) -> &V)
    }
    pub fn values_mut(&mut self) -> ValuesMut<'_, K, V> {
        self.items
            .iter_mut()
            .map(second_mut as fn(&mut (K, V)) -> &mut V)
    }
    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator {
        self.items.into_iter().map(|(k, _)| k)
    }
    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.items.into_iter().map(|(_, v)| v)
    }
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.items.first().map(pair)
    }
    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.items.last().map(pair)
    }
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        if self.items.is_empty() {
            None
        } else {
            Some(self.items.remove(0))
        }
    }
    pub fn pop_last(&mut self) -> Option<(K, V)> {
        self.items.pop()
    }
    /// Keeps the entries `keep` says yes to, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.items.retain_mut(|(k, v)| keep(k, v))
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.items.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.items[i].1)
    }
    pub fn get_key_value<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| pair(&self.items[i]))
    }
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.items[i].1)
    }
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }
    /// Sets `key` to `value`; the old value if there was one (the old key stays, as in `BTreeMap`).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.items[i].1, value)),
            Err(i) => {
                self.items.insert(i, (key, value));
                None
            }
        }
    }
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.items.remove(i).1)
    }
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let at = self.find(&key);
        Entry { map: self, at, key }
    }
    /// The entries with keys in `range`, in order.
    pub fn range<Q: Ord + ?Sized, R: std::ops::RangeBounds<Q>>(&self, range: R) -> Iter<'_, K, V>
    where
        K: Borrow<Q>,
    {
        use std::ops::Bound::*;
        let lo = match range.start_bound() {
            Included(q) => self.items.partition_point(|(k, _)| k.borrow() < q),
            Excluded(q) => self.items.partition_point(|(k, _)| k.borrow() <= q),
            Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Included(q) => self.items.partition_point(|(k, _)| k.borrow() <= q),
            Excluded(q) => self.items.partition_point(|(k, _)| k.borrow() < q),
            Unbounded => self.items.len(),
        };
        self.items[lo..hi.max(lo)]
            .iter()
            .map(pair as fn(&(K, V)) -> (&K, &V))
    }
}

/// A place in a [`VecMap`] for one key, filled or not.
pub struct Entry<'a, K, V> {
    map: &'a mut VecMap<K, V>,
    at: Result<usize, usize>,
    key: K,
}

impl<'a, K, V> Entry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.key
    }
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let i = match self.at {
            Ok(i) => i,
            Err(i) => {
                self.map.items.insert(i, (self.key, make()));
                i
            }
        };
        &mut self.map.items[i].1
    }
    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
    pub fn and_modify(self, f: impl FnOnce(&mut V)) -> Self {
        if let Ok(i) = self.at {
            f(&mut self.map.items[i].1);
        }
        self
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    /// As `BTreeMap`'s: a later pair with an equal key replaces the value of an earlier one.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut items: Vec<(K, V)> = iter.into_iter().collect();
        crate::sort::by(&mut items, |a, b| a.0.cmp(&b.0));
        // Stable sort keeps equal keys in arrival order: keep the first key with the last value.
        let mut out: Vec<(K, V)> = Vec::with_capacity(items.len());
        for (k, v) in items {
            match out.last_mut() {
                Some(last) if last.0.cmp(&k) == Ordering::Equal => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        VecMap { items: out }
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for VecMap<K, V> {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K: Ord, V> Extend<(K, V)> for VecMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut VecMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> std::ops::Index<&Q> for VecMap<K, V> {
    type Output = V;
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for this key in the VecMap")
    }
}

impl<K: serde::Serialize, V: serde::Serialize> serde::Serialize for VecMap<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, K: Ord + serde::Deserialize<'de>, V: serde::Deserialize<'de>> serde::Deserialize<'de>
    for VecMap<K, V>
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(std::collections::BTreeMap::<K, V>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// An ordered set on a sorted vector, as [`VecMap`] is a map.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VecSet<T> {
    items: Vec<T>,
}

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        VecSet { items: Vec::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for VecSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.items.iter()).finish()
    }
}

/// A set reads as its sorted slice: `len`, `is_empty`, `iter`, `first`, `last`.
impl<T> std::ops::Deref for VecSet<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T> VecSet<T> {
    pub const fn new() -> Self {
        VecSet { items: Vec::new() }
    }
    pub fn clear(&mut self) {
        self.items.clear()
    }
    pub fn pop_first(&mut self) -> Option<T> {
        if self.items.is_empty() {
            None
        } else {
            Some(self.items.remove(0))
        }
    }
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.items.retain(|t| keep(t))
    }
}

impl<T: Ord> VecSet<T> {
    fn find<Q: Ord + ?Sized>(&self, q: &Q) -> Result<usize, usize>
    where
        T: Borrow<Q>,
    {
        self.items.binary_search_by(|t| t.borrow().cmp(q))
    }
    pub fn contains<Q: Ord + ?Sized>(&self, q: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.find(q).is_ok()
    }
    pub fn get<Q: Ord + ?Sized>(&self, q: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
    {
        self.find(q).ok().map(|i| &self.items[i])
    }
    /// Adds `t`; false if an equal item was there (which stays, as in `BTreeSet`).
    pub fn insert(&mut self, t: T) -> bool {
        match self.find(&t) {
            Ok(_) => false,
            Err(i) => {
                self.items.insert(i, t);
                true
            }
        }
    }
    pub fn remove<Q: Ord + ?Sized>(&mut self, q: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.find(q) {
            Ok(i) => {
                self.items.remove(i);
                true
            }
            Err(_) => false,
        }
    }
    /// Items in `self` and not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a VecSet<T>) -> impl Iterator<Item = &'a T> + 'a {
        self.items.iter().filter(move |t| !other.contains(*t))
    }
}

impl<T: Ord> FromIterator<T> for VecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut items: Vec<T> = iter.into_iter().collect();
        crate::sort::by(&mut items, T::cmp);
        // Keep the first of equal items, as inserting them one by one into a `BTreeSet` does.
        items.dedup_by(|later, earlier| (*later).cmp(earlier) == Ordering::Equal);
        VecSet { items }
    }
}

impl<T: Ord> Extend<T> for VecSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for t in iter {
            self.insert(t);
        }
    }
}

impl<T> IntoIterator for VecSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a VecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        Entry(u8, u16),
        Retain(u8),
        PopFirst,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k % 40, v)),
            any::<u8>().prop_map(|k| Op::Remove(k % 40)),
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Entry(k % 40, v)),
            any::<u8>().prop_map(Op::Retain),
            Just(Op::PopFirst),
        ]
    }

    proptest! {
        /// Every operation gives what `BTreeMap` and `BTreeSet` give, and iteration is in the same order.
        #[test]
        fn behaves_as_btree(ops in proptest::collection::vec(op(), 0..200), init in proptest::collection::vec((0u8..40, any::<u16>()), 0..30)) {
            let mut b: BTreeMap<u8, u16> = init.iter().copied().collect();
            let mut v: VecMap<u8, u16> = init.iter().copied().collect();
            let mut bs: BTreeSet<u8> = init.iter().map(|p| p.0).collect();
            let mut vs: VecSet<u8> = init.iter().map(|p| p.0).collect();
            for o in ops {
                match o {
                    Op::Insert(k, x) => {
                        prop_assert_eq!(v.insert(k, x), b.insert(k, x));
                        prop_assert_eq!(vs.insert(k), bs.insert(k));
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(v.remove(&k), b.remove(&k));
                        prop_assert_eq!(vs.remove(&k), bs.remove(&k));
                    }
                    Op::Entry(k, x) => {
                        let e = v.entry(k).and_modify(|e| *e = e.wrapping_add(1)).or_insert(x);
                        *e = e.wrapping_add(2);
                        let e = b.entry(k).and_modify(|e| *e = e.wrapping_add(1)).or_insert(x);
                        *e = e.wrapping_add(2);
                    }
                    Op::Retain(m) => {
                        v.retain(|k, x| (*k as u16).wrapping_add(*x) % 3 != (m % 3) as u16);
                        b.retain(|k, x| (*k as u16).wrapping_add(*x) % 3 != (m % 3) as u16);
                        vs.retain(|k| k % 4 != m % 4);
                        bs.retain(|k| k % 4 != m % 4);
                    }
                    Op::PopFirst => {
                        prop_assert_eq!(v.pop_first(), b.pop_first());
                        prop_assert_eq!(vs.pop_first(), bs.pop_first());
                    }
                }
                prop_assert_eq!(v.len(), b.len());
                prop_assert!(v.iter().eq(b.iter()));
                prop_assert!(vs.iter().eq(bs.iter()));
                for k in 0..40u8 {
                    prop_assert_eq!(v.get(&k), b.get(&k));
                    prop_assert_eq!(vs.contains(&k), bs.contains(&k));
                }
                prop_assert!(v.range(5..=20).eq(b.range(5..=20)));
                prop_assert!(v.range(..7).eq(b.range(..7)));
                prop_assert!(v.range(30..).eq(b.range(30..)));
            }
            prop_assert_eq!(format!("{v:?}"), format!("{b:?}"));
            prop_assert_eq!(serde_json::to_string(&v).unwrap(), serde_json::to_string(&b).unwrap());
        }
    }

    #[test]
    fn collect_keeps_the_last_value_of_a_repeated_key() {
        let v: VecMap<&str, i32> = [("b", 1), ("a", 2), ("b", 3)].into_iter().collect();
        let b: BTreeMap<&str, i32> = [("b", 1), ("a", 2), ("b", 3)].into_iter().collect();
        assert!(v.iter().eq(b.iter()));
        assert_eq!(v["b"], 3);
    }
}
