//! Bounded memory for the generator: rings of recent entities and an agenda of follow-ups.
//!
//! The generator must run for ten million changes without keeping every request, so it only
//! remembers the most recent few thousand entities of each sort. Older ones fall out and are
//! never touched again, which is also how real case-management data looks: old records stop
//! changing.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rand::Rng;

/// A fixed-capacity ring of recent items, each addressed by a serial number. A serial can be
/// reserved before the item exists (when the entity's id is not known until its transaction
/// commits) so that follow-ups can name the item before it is inserted.
#[derive(Debug)]
pub(crate) struct Recent<T> {
    cap: u64,
    next: u64,
    slots: Vec<Option<(u64, T)>>,
}

impl<T> Recent<T> {
    pub(crate) fn new(cap: usize) -> Self {
        Recent { cap: cap.max(1) as u64, next: 0, slots: Vec::new() }
    }

    pub(crate) fn reserve(&mut self) -> u64 {
        let serial = self.next;
        self.next += 1;
        serial
    }

    /// Stores `item` under a reserved serial, evicting whatever older item shared its slot.
    pub(crate) fn insert(&mut self, serial: u64, item: T) {
        let slot = (serial % self.cap) as usize;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        let newer_present = matches!(&self.slots[slot], Some((s, _)) if *s > serial);
        if !newer_present {
            self.slots[slot] = Some((serial, item));
        }
    }

    pub(crate) fn push(&mut self, item: T) -> u64 {
        let serial = self.reserve();
        self.insert(serial, item);
        serial
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    pub(crate) fn get(&self, serial: u64) -> Option<&T> {
        match self.slots.get((serial % self.cap) as usize) {
            Some(Some((s, item))) if *s == serial => Some(item),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, serial: u64) -> Option<&mut T> {
        match self.slots.get_mut((serial % self.cap) as usize) {
            Some(Some((s, item))) if *s == serial => Some(item),
            _ => None,
        }
    }

    /// Removes and returns the item with this serial.
    pub(crate) fn take(&mut self, serial: u64) -> Option<T> {
        let slot = self.slots.get_mut((serial % self.cap) as usize)?;
        if slot.as_ref().is_some_and(|(s, _)| *s == serial) {
            slot.take().map(|(_, item)| item)
        } else {
            None
        }
    }

    /// A uniformly chosen occupied slot, with its serial.
    pub(crate) fn random<R: Rng>(&self, rng: &mut R) -> Option<(u64, &T)> {
        if self.slots.is_empty() {
            return None;
        }
        let start = rng.gen_range(0..self.slots.len());
        // Reserved-but-never-filled slots are rare; probing past them keeps the pick cheap.
        (0..self.slots.len())
            .map(|i| (start + i) % self.slots.len())
            .find_map(|i| self.slots[i].as_ref().map(|(s, item)| (*s, item)))
    }

    /// A random item satisfying `accept`, trying a few times before giving up.
    pub(crate) fn random_where<R: Rng>(&self, rng: &mut R, accept: impl Fn(&T) -> bool) -> Option<(u64, &T)> {
        (0..8).filter_map(|_| self.random(rng)).find(|(_, item)| accept(item))
    }
}

/// Follow-ups due on a date (an assessment that ends, a concern that is concluded). Bounded:
/// past capacity the follow-up due furthest in the future is dropped, so some long-running
/// episodes simply stay open, as assessments started but never ended do in real returns.
#[derive(Debug)]
pub(crate) struct Agenda<T> {
    cap: usize,
    seq: u64,
    items: BTreeMap<(NaiveDate, u64), T>,
}

impl<T> Agenda<T> {
    pub(crate) fn new(cap: usize) -> Self {
        Agenda { cap: cap.max(1), seq: 0, items: BTreeMap::new() }
    }

    pub(crate) fn schedule(&mut self, due: NaiveDate, item: T) {
        self.seq += 1;
        self.items.insert((due, self.seq), item);
        if self.items.len() > self.cap {
            self.items.pop_last();
        }
    }

    pub(crate) fn has_due(&self, today: NaiveDate) -> bool {
        self.items.first_key_value().is_some_and(|((due, _), _)| *due <= today)
    }

    /// How many follow-ups are due, counting no further than `limit`.
    pub(crate) fn due_count(&self, today: NaiveDate, limit: usize) -> usize {
        self.items.keys().take(limit).take_while(|(due, _)| *due <= today).count()
    }

    pub(crate) fn pop_due(&mut self, today: NaiveDate) -> Option<(NaiveDate, T)> {
        if !self.has_due(today) {
            return None;
        }
        self.items.pop_first().map(|((due, _), item)| (due, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn ring_evicts_oldest_and_keeps_serials_honest() {
        let mut ring = Recent::new(3);
        let serials: Vec<u64> = (0..5).map(|i| ring.push(i)).collect();
        assert_eq!(ring.get(serials[0]), None);
        assert_eq!(ring.get(serials[4]), Some(&4));
        assert_eq!(ring.take(serials[4]), Some(4));
        assert_eq!(ring.get(serials[4]), None);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(ring.random(&mut rng).is_some_and(|(_, v)| *v >= 2));
    }

    #[test]
    fn agenda_drops_the_latest_when_full() {
        let d = |n| NaiveDate::from_ymd_opt(2024, 1, n).unwrap_or_default();
        let mut agenda = Agenda::new(2);
        agenda.schedule(d(5), "b");
        agenda.schedule(d(9), "c");
        agenda.schedule(d(1), "a");
        assert_eq!(agenda.due_count(d(6), 10), 2);
        assert_eq!(agenda.pop_due(d(3)), Some((d(1), "a")));
        assert_eq!(agenda.pop_due(d(3)), None);
        assert_eq!(agenda.pop_due(d(30)), Some((d(5), "b")));
        assert_eq!(agenda.pop_due(d(30)), None);
    }
}
