//! Ids as small integers: a million edges name the same hundred thousand
//! principals over and over; storing each name once keeps an edge to a few
//! dozen bytes.

use rustc_hash::FxHashMap;

pub type Id = u32;

/// No id: for optional edge ends.
pub const NONE: Id = u32::MAX;

#[derive(Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    index: FxHashMap<Box<str>, Id>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Id {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.names.len() as Id;
        let boxed: Box<str> = s.into();
        self.names.push(boxed.clone());
        self.index.insert(boxed, id);
        id
    }

    pub fn get(&self, s: &str) -> Option<Id> {
        self.index.get(s).copied()
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
        self.names.iter().map(|s| s.len() * 2 + 16).sum::<usize>()
            + self.names.capacity() * 16
            + self.index.capacity() * 24
    }
}
