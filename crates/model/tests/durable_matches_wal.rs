//! The model's disk (`model::Durable`) stands for the real WAL: along long
//! pseudo-random walks through the model (elections, conflicting appends,
//! crashes and restarts), every write the model completes is also carried
//! out by `replica::Storage` on a `wal::MemDisk`, and after each one what
//! the WAL's recovery finds equals what `Durable::recovered` hands the
//! replica. If they ever differ, the model would recover replicas from a
//! state the real node cannot be in.

use model::{Action, Bounds, RaftModel, get, put};
use replica::Storage;
use stateright::Model;
use wal::MemDisk;

/// A small deterministic generator (splitmix64), so each walk is the same
/// on every run.
struct Walk(u64);

impl Walk {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

#[test]
fn the_models_disk_recovers_what_the_wal_recovers() {
    let bounds = Bounds {
        clients: vec![
            vec![put("x", "1"), get("x"), put("y", "2")],
            vec![put("x", "3"), put("y", "4")],
        ],
        max_term: 6,
        crashes: 6,
        ticks: 20,
        max_in_flight: 12,
        ..Bounds::default()
    };
    let model = RaftModel::new(bounds.clone());
    let mut writes_compared = 0;
    let mut rewrites = 0;
    for seed in 1..=200 {
        let mut walk = Walk(seed);
        let mut state = model.init_states().remove(0);
        let disks: Vec<MemDisk> = (0..bounds.nodes).map(|_| MemDisk::new()).collect();
        let mut storages: Vec<Storage<MemDisk>> = disks
            .iter()
            .map(|d| Storage::open(d.clone()).expect("an empty disk opens").0)
            .collect();
        for _ in 0..300 {
            let mut actions = Vec::new();
            model.actions(&state, &mut actions);
            if actions.is_empty() {
                break;
            }
            let action = actions[walk.next(actions.len())].clone();
            if let Action::WriteDone(i) = &action {
                let write = state.nodes[*i].writes.front().expect("a write in flight");
                let last = state.nodes[*i].durable.last_index();
                if write.entries.first().is_some_and(|e| e.index <= last) {
                    rewrites += 1; // replaces a stored suffix (§5.3)
                }
                storages[*i]
                    .execute(write)
                    .expect("the WAL takes the write");
            }
            let done = matches!(action, Action::WriteDone(_));
            let node = match action {
                Action::WriteDone(i) => Some(i),
                _ => None,
            };
            state = model.next_state(&state, action).expect("an offered step");
            if let (true, Some(i)) = (done, node) {
                let (_, from_wal) = Storage::open(disks[i].clone()).expect("the WAL recovers");
                let mut from_model = state.nodes[i].durable.recovered();
                // The WAL records the commit index as written; the model's
                // recovery clamps it to the log, as the WAL's recovery does
                // only when it must: compare the rest exactly.
                assert!(from_model.hard_state.commit <= from_wal.hard_state.commit);
                from_model.hard_state.commit = from_wal.hard_state.commit;
                assert_eq!(from_model, from_wal, "seed {seed}, node {}", i + 1);
                writes_compared += 1;
            }
        }
    }
    println!("{writes_compared} writes compared, {rewrites} replacing a suffix");
    assert!(writes_compared > 1000, "the walks completed few writes");
    assert!(rewrites > 0, "no walk replaced a stored suffix");
}
