//! The event queue: what happens next, in virtual time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Virtual time in nanoseconds since the start of the run.
pub type Nanos = u64;

/// One millisecond of virtual time.
pub const MS: Nanos = 1_000_000;

/// A priority queue ordered by (virtual time, insertion sequence number):
/// events at the same instant run in the order they were scheduled, so the
/// order never depends on anything but the seed.
///
/// The heap holds small keys (time, sequence number, slot) and the events
/// sit still in a slab of slots: a sift moves 24 bytes, not a whole event
/// (a message with its entries is hundreds of bytes; moving events through
/// the heap was most of the simulator's memmove). Freed slots are reused
/// last-freed first, so a run allocates slots only while its queue grows.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

/// An event's place in the order, and where it waits.
#[derive(Debug, PartialEq, Eq)]
struct Key {
    at: Nanos,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first.
        // `seq` is unique, so `slot` never decides.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at virtual time `at`.
    pub fn push(&mut self, at: Nanos, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 events waiting")
            }
        };
        self.heap.push(Key { at, seq, slot });
    }

    /// Takes the earliest event.
    pub fn pop(&mut self) -> Option<(Nanos, E)> {
        let key = self.heap.pop()?;
        let event = self.slots[key.slot as usize]
            .take()
            .expect("a queued key's slot holds its event");
        self.free.push(key.slot);
        Some((key.at, event))
    }

    /// The number of events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_then_in_insertion_order() {
        let mut q = EventQueue::default();
        q.push(20, "c");
        q.push(10, "a");
        q.push(20, "d");
        q.push(10, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(10, "a"), (10, "b"), (20, "c"), (20, "d")]);
    }

    #[test]
    fn reused_slots_keep_the_order() {
        let mut q = EventQueue::default();
        q.push(5, 0);
        q.push(1, 1);
        assert_eq!(q.pop(), Some((1, 1)));
        // Takes the freed slot; still after the earlier event at 5.
        q.push(5, 2);
        q.push(3, 3);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(3, 3), (5, 0), (5, 2)]);
        assert!(q.is_empty());
    }
}
