//! Values by id, found in O(1). An id is a slot index (low 32 bits) and the slot's
//! generation (high 32 bits), so an old id never finds a later entry that reused its slot:
//! a client or stream that is gone is gone, whatever still holds its id.

pub type Id = u64;

pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    /// The id the next `insert` returns.
    pub fn next_id(&self) -> Id {
        match self.free.last() {
            Some(&i) => (self.slots[i as usize].0.wrapping_add(1) as u64) << 32 | i as u64,
            None => 1 << 32 | self.slots.len() as u64,
        }
    }

    pub fn insert(&mut self, value: T) -> Id {
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
        self.len += 1;
        (slot.0 as u64) << 32 | index as u64
    }

    pub fn get(&self, id: Id) -> Option<&T> {
        match self.slots.get(id as u32 as usize) {
            Some((generation, Some(v))) if *generation == (id >> 32) as u32 => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        match self.slots.get_mut(id as u32 as usize) {
            Some((generation, Some(v))) if *generation == (id >> 32) as u32 => Some(v),
            _ => None,
        }
    }

    pub fn contains(&self, id: Id) -> bool {
        self.get(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every entry, with its id.
    pub fn iter(&self) -> impl Iterator<Item = (Id, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, (generation, v))| v.as_ref().map(|v| ((*generation as u64) << 32 | i as u64, v)))
    }

    /// Every id, in slot order.
    pub fn ids(&self) -> Vec<Id> {
        self.iter().map(|(id, _)| id).collect()
    }

    pub fn remove(&mut self, id: Id) -> Option<T> {
        if !self.contains(id) {
            return None;
        }
        self.free.push(id as u32);
        self.len -= 1;
        self.slots[id as u32 as usize].1.take()
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
        assert_eq!((s.get(a), s.get(b)), (Some(&'a'), Some(&'b')));
        assert_eq!(s.next_id(), 1 << 32 | 2);
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(a), None);
        let next = s.next_id();
        let c = s.insert('c');
        assert_eq!(c, next);
        assert_eq!(c as u32, a as u32, "slot reused");
        assert_eq!((s.get(a), s.get(c)), (None, Some(&'c')), "but the old id does not find it");
        assert_eq!(s.get(12345), None);
        let all: Vec<(Id, char)> = s.iter().map(|(i, v)| (i, *v)).collect();
        assert_eq!(all, vec![(c, 'c'), (b, 'b')]);
        assert_eq!(s.len(), 2);
        *s.get_mut(b).unwrap() = 'x';
        assert_eq!(s.get(b), Some(&'x'));
    }
}
