//! The event lists the search walks: doubly linked over nodes `1..=n`, with dancing-links
//! removal and restore.

/// Sentinel of both circular lists: `next[NIL]` is the head, `prev[NIL]` the tail.
pub(super) const NIL: u32 = 0;

/// A doubly linked list over nodes `1..=n` with sentinel [`NIL`].
pub(super) struct Links {
    pub(super) next: Vec<u32>,
    pub(super) prev: Vec<u32>,
}

impl Links {
    /// The list `1, 2, ..., n` in that order.
    pub(super) fn chain(n: usize) -> Self {
        let n = u32::try_from(n).expect("fewer than 2^32 events per key");
        let next = (0..=n).map(|i| if i == n { NIL } else { i + 1 }).collect();
        let prev = (0..=n).map(|i| if i == 0 { n } else { i - 1 }).collect();
        Links { next, prev }
    }

    #[inline]
    pub(super) fn remove(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
    }

    /// Undo `remove(x)`; valid only while removals are undone in reverse order.
    #[inline]
    pub(super) fn restore(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        self.prev[n as usize] = x;
    }
}
