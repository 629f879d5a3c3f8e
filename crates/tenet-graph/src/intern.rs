//! Ids as small integers: a million edges name the same hundred thousand
//! principals over and over; storing each name once keeps an edge to a few
//! dozen bytes.

use std::hash::{BuildHasher, BuildHasherDefault};

use hashbrown::HashTable;
use rustc_hash::FxHasher;

pub type Id = u32;

/// No id: for optional edge ends.
pub const NONE: Id = u32::MAX;

fn hash(s: &str) -> u64 {
    BuildHasherDefault::<FxHasher>::default().hash_one(s)
}

/// Each name stored once; the lookup table holds only ids, hashed by name.
#[derive(Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    index: HashTable<Id>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Id {
        if let Some(id) = self.get(s) {
            return id;
        }
        let id = self.names.len() as Id;
        self.names.push(s.into());
        let names = &self.names;
        self.index.insert_unique(hash(s), id, |&i| hash(&names[i as usize]));
        id
    }

    pub fn get(&self, s: &str) -> Option<Id> {
        self.index.find(hash(s), |&i| &*self.names[i as usize] == s).copied()
    }

    pub fn name(&self, id: Id) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Approximate heap bytes held, for the memory benchmark.
    pub fn heap_bytes(&self) -> usize {
        self.names.iter().map(|s| s.len() + 8).sum::<usize>() + self.names.capacity() * 16 + self.index.capacity() * 5
    }
}
