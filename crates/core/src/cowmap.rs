//! `CowMap`: an ordered map kept as a list of sorted chunks, each behind an `Arc`. Cloning it copies
//! the list of chunk pointers (about one per hundred entries), not the entries, and a write copies
//! only the one chunk it touches, and only when a clone still shares it. The simulation's maps that
//! grow with the Pods (the API's objects, the informers' caches, the Pods' runtime state, the IPs in
//! use, per-Pod counters) are `CowMap`s, so a timeline snapshot of them costs a few hundred bytes
//! plus the chunks written since, instead of a whole copy of every tree.
//!
//! The same ordered iteration and lookups as `BTreeMap` (property-tested against it below).

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// Entries per chunk after a split; a chunk is split when it grows past twice this.
const CHUNK: usize = 64;

type Chunk<K, V> = Arc<Vec<(K, V)>>;

#[derive(Clone)]
pub struct CowMap<K, V> {
    chunks: Vec<Chunk<K, V>>,
    len: usize,
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        CowMap { chunks: Vec::new(), len: 0 }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for CowMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Eq, V: Eq> Eq for CowMap<K, V> {}

fn as_slice<K, V>(c: &Chunk<K, V>) -> &[(K, V)] {
    c.as_slice()
}

fn pair<K, V>(e: &(K, V)) -> (&K, &V) {
    (&e.0, &e.1)
}

fn second<K, V>(e: &(K, V)) -> &V {
    &e.1
}

fn first<K, V>(e: &(K, V)) -> &K {
    &e.0
}

type Entries<'a, K, V> = std::iter::FlatMap<std::slice::Iter<'a, Chunk<K, V>>, &'a [(K, V)], fn(&'a Chunk<K, V>) -> &'a [(K, V)]>;
pub type Iter<'a, K, V> = std::iter::Map<Entries<'a, K, V>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
pub type Values<'a, K, V> = std::iter::Map<Entries<'a, K, V>, fn(&'a (K, V)) -> &'a V>;
pub type Keys<'a, K, V> = std::iter::Map<Entries<'a, K, V>, fn(&'a (K, V)) -> &'a K>;

impl<K, V> CowMap<K, V> {
    pub const fn new() -> Self {
        CowMap { chunks: Vec::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn entries(&self) -> Entries<'_, K, V> {
        self.chunks.iter().flat_map(as_slice as fn(&Chunk<K, V>) -> &[(K, V)])
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        self.entries().map(pair as fn(&(K, V)) -> (&K, &V))
    }

    pub fn values(&self) -> Values<'_, K, V> {
        self.entries().map(second as fn(&(K, V)) -> &V)
    }

    pub fn keys(&self) -> Keys<'_, K, V> {
        self.entries().map(first as fn(&(K, V)) -> &K)
    }
}

impl<K: Ord + Clone, V: Clone> CowMap<K, V> {
    /// The chunk that holds `key` if any does: the first whose last key is not below it.
    fn chunk_of<Q: Ord + ?Sized>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
    {
        self.chunks.partition_point(|c| c.last().is_some_and(|(k, _)| k.borrow() < key))
    }

    /// (chunk, position in it) of `key`.
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(usize, usize)>
    where
        K: Borrow<Q>,
    {
        let c = self.chunk_of(key);
        let chunk = self.chunks.get(c)?;
        chunk.binary_search_by(|(k, _)| k.borrow().cmp(key)).ok().map(|i| (c, i))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).map(|(c, i)| &self.chunks[c][i].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_some()
    }

    /// The value of `key`, to change: its chunk is copied first if a clone still shares it (a miss
    /// copies nothing).
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let (c, i) = self.find(key)?;
        Some(&mut Arc::make_mut(&mut self.chunks[c])[i].1)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(vec![(key, value)]));
            self.len = 1;
            return None;
        }
        let c = self.chunk_of(&key).min(self.chunks.len() - 1);
        let chunk = Arc::make_mut(&mut self.chunks[c]);
        match chunk.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => Some(std::mem::replace(&mut chunk[i].1, value)),
            Err(i) => {
                chunk.insert(i, (key, value));
                self.len += 1;
                if chunk.len() > 2 * CHUNK {
                    let tail = chunk.split_off(CHUNK);
                    self.chunks.insert(c + 1, Arc::new(tail));
                }
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let (c, i) = self.find(key)?;
        let chunk = Arc::make_mut(&mut self.chunks[c]);
        let (_, v) = chunk.remove(i);
        self.len -= 1;
        let n = chunk.len();
        if n == 0 {
            self.chunks.remove(c);
        } else if n < CHUNK / 4 {
            // A small chunk joins a neighbour when the two fit in one.
            let next = c + 1;
            if next < self.chunks.len() && n + self.chunks[next].len() <= 2 * CHUNK {
                let moved = self.chunks.remove(next);
                let tail = Arc::try_unwrap(moved).unwrap_or_else(|a| (*a).clone());
                Arc::make_mut(&mut self.chunks[c]).extend(tail);
            } else if c > 0 && n + self.chunks[c - 1].len() <= 2 * CHUNK {
                let moved = self.chunks.remove(c);
                let tail = Arc::try_unwrap(moved).unwrap_or_else(|a| (*a).clone());
                Arc::make_mut(&mut self.chunks[c - 1]).extend(tail);
            }
        }
        Some(v)
    }

    /// The value of `key`, inserted with `make` first when missing.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if self.find(&key).is_none() {
            self.insert(key.clone(), make());
        }
        match self.find(&key) {
            Some((c, i)) => &mut Arc::make_mut(&mut self.chunks[c])[i].1,
            None => unreachable!("inserted just above"),
        }
    }

    /// How many chunks the map is in (for tests).
    #[cfg(test)]
    fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

impl<'a, K, V> IntoIterator for &'a CowMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<K: Ord + Clone, V: Clone> FromIterator<(K, V)> for CowMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = CowMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K: serde::Serialize, V: serde::Serialize> serde::Serialize for CowMap<K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u16, u32),
        Remove(u16),
        GetMut(u16, u32),
        GetOrInsert(u16, u32),
        /// Clone the map and go on with the clone, checking the old copy is left as it was.
        Fork,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..600, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0u16..600).prop_map(Op::Remove),
            2 => (0u16..600, any::<u32>()).prop_map(|(k, v)| Op::GetMut(k, v)),
            1 => (0u16..600, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
            1 => Just(Op::Fork),
        ]
    }

    fn same(m: &CowMap<u16, u32>, b: &BTreeMap<u16, u32>) {
        assert_eq!(m.len(), b.len());
        assert!(m.iter().eq(b.iter()), "same entries in the same order");
        assert!(m.keys().rev().eq(b.keys().rev()), "and backwards");
        assert!(m.values().eq(b.values()));
        assert_eq!(format!("{m:?}"), format!("{b:?}"));
        assert_eq!(serde_json::to_string(m).ok(), serde_json::to_string(b).ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn behaves_as_btree(ops in proptest::collection::vec(op(), 0..1500)) {
            let mut m: CowMap<u16, u32> = CowMap::new();
            let mut b: BTreeMap<u16, u32> = BTreeMap::new();
            let mut forks: Vec<(CowMap<u16, u32>, BTreeMap<u16, u32>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(m.insert(k, v), b.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(m.remove(&k), b.remove(&k)),
                    Op::GetMut(k, v) => {
                        let (x, y) = (m.get_mut(&k), b.get_mut(&k));
                        prop_assert_eq!(x.is_some(), y.is_some());
                        if let (Some(x), Some(y)) = (x, y) {
                            *x = v;
                            *y = v;
                        }
                    }
                    Op::GetOrInsert(k, v) => {
                        *m.get_or_insert_with(k, || v) ^= 1;
                        *b.entry(k).or_insert(v) ^= 1;
                    }
                    Op::Fork => forks.push((m.clone(), b.clone())),
                }
                prop_assert_eq!(m.get(&7), b.get(&7));
                prop_assert_eq!(m.contains_key(&300), b.contains_key(&300));
            }
            same(&m, &b);
            for k in 0..600u16 {
                prop_assert_eq!(m.get(&k), b.get(&k));
            }
            // Every earlier copy still holds what it held when it was made.
            for (fm, fb) in &forks {
                same(fm, fb);
            }
            // Chunks stay bounded: none over twice the chunk size.
            prop_assert!(m.chunks.iter().all(|c| c.len() <= 2 * CHUNK && !c.is_empty()));
        }
    }

    #[test]
    fn a_clone_shares_every_chunk_and_a_write_copies_one() {
        let m: CowMap<u32, u32> = (0..1_000).map(|i| (i, i)).collect();
        let mut c = m.clone();
        let n = m.chunk_count();
        assert!(n >= 1_000 / (2 * CHUNK), "split into chunks: {n}");
        let shared = |a: &CowMap<u32, u32>, b: &CowMap<u32, u32>| {
            a.chunks.iter().zip(&b.chunks).filter(|(x, y)| Arc::ptr_eq(x, y)).count()
        };
        assert_eq!(shared(&m, &c), n);
        *c.get_mut(&500).expect("present") = 7;
        assert_eq!(shared(&m, &c), n - 1, "only the written chunk is copied");
        assert_eq!(m.get(&500), Some(&500));
        assert_eq!(c.get(&500), Some(&7));
        assert!(c.get_mut(&5_000).is_none());
        assert_eq!(shared(&m, &c), n - 1, "a miss copies nothing");
    }
}
