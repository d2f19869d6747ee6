//! Connections by id, found in O(1) on the fan-out path. An id is a slot index (low 32
//! bits) and the slot's generation (high 32 bits), so an old id never finds a later entry
//! that reused its slot.

use super::ConnId;

pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T: Copy> Slab<T> {
    pub fn insert(&mut self, value: T) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.0 = slot.0.wrapping_add(1);
        slot.1 = Some(value);
        (slot.0 as u64) << 32 | index as u64
    }

    pub fn get(&self, id: ConnId) -> Option<T> {
        match self.slots.get(id as u32 as usize) {
            Some(&(generation, value)) if generation == (id >> 32) as u32 => value,
            _ => None,
        }
    }

    /// Every entry, with its id.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, T)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, &(generation, value))| value.map(|v| ((generation as u64) << 32 | i as u64, v)))
    }

    pub fn remove(&mut self, id: ConnId) {
        if self.get(id).is_some() {
            self.slots[id as u32 as usize].1 = None;
            self.free.push(id as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_reused_by_later_entries() {
        let mut s = Slab::default();
        let a = s.insert('a');
        let b = s.insert('b');
        assert_eq!((s.get(a), s.get(b)), (Some('a'), Some('b')));
        s.remove(a);
        s.remove(a);
        assert_eq!(s.get(a), None);
        let c = s.insert('c');
        assert_eq!(c as u32, a as u32, "slot reused");
        assert_eq!((s.get(a), s.get(c)), (None, Some('c')), "but the old id does not find it");
        assert_eq!(s.get(12345), None);
        let all: Vec<(ConnId, char)> = s.iter().collect();
        assert_eq!(all, vec![(c, 'c'), (b, 'b')]);
    }
}
