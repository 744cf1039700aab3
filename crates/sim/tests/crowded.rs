//! Runs with many clients: regressions found by the sweep at `--clients 50`.

use check::{Budget, Call, Record};
use sim::invariants::ViolationKind;
use sim::{SimConfig, Tracer};

/// Seeds 13 and 46 of `cargo xtask sweep --seeds 1..=60 --nodes 3
/// --clients 50`: liveness failures ("client 7's op 1474 (delete k5) gave
/// up 10017ms after the heal"). Both drew one entry per append (1 or 2 in
/// flight), so the leader committed about 90 entries a second, while 50
/// clients timed out after 262 ms (seed 13) or 69 ms (seed 46) and
/// retried; every retry reaching the leader proposed its write again. The
/// log grew faster than it committed (seed 13: 2,996 entries committed for
/// 920 writes, 1,213 entries in a log; seed 46: 4,108 entries in a log),
/// so the backlog at the heal outlasted the 10 s bound. A retry of a write
/// the leader already holds now waits on that entry (replica
/// `a_retry_of_a_write_still_waiting_proposes_no_second_entry_and_gets_the_answer`),
/// and so does one whose write a new leader inherited uncommitted (replica
/// `a_retry_at_a_new_leader_waits_on_the_copy_it_inherited_uncommitted_instead_of_proposing_another`).
#[test]
fn retries_under_a_backlog_do_not_grow_the_log_so_fifty_clients_stay_live() {
    for seed in [13, 46] {
        let mut config = SimConfig::new(seed);
        config.nodes = 3;
        config.clients = 50;
        let outcome = sim::run(&config, Tracer::silent(), &Budget::default()).expect("valid");
        let s = &outcome.summary;
        assert_eq!(s.params.raft.max_entries_per_append, 1, "seed {seed}");
        assert!(s.liveness.is_empty(), "seed {seed}: {:?}", s.liveness);
        assert!(s.ok, "seed {seed}: {:?}", s.violations);
        let writes = outcome
            .history
            .records
            .iter()
            .filter(
                |r| matches!(r, Record::Invoke { call, .. } if !matches!(call, Call::Get { .. })),
            )
            .count() as u64;
        // About one entry per write, plus a no-op per election and the
        // membership entries. A retry proposes no copy where a copy is
        // already uncommitted in the leader's log: the one it proposed
        // itself, or one it inherited from the leader before it. It still
        // proposes one where the old leader's entry did not reach the new
        // one, and where the write already applied and only its answer
        // was lost (most of what is left: on these two seeds, leaders
        // proposed 242 writes their session table had already applied).
        // Measured: 2,110 entries committed for 2,036 writes
        // (seed 13), 1,614 for 1,443 (seed 46); while a new leader still
        // proposed copies of what it inherited, 2,138 for 2,044 and 1,584
        // for 1,325.
        assert!(
            s.commits * 5 <= writes * 6,
            "seed {seed}: {} entries committed for {writes} writes",
            s.commits
        );
        // A log holds the applied entries the snapshot policy keeps, plus
        // what is not yet applied: on a leader about one entry per client
        // (two across a change of leader), on a follower behind a slow disk
        // what it received and has not made durable; not one per retry.
        // Measured: 180 (seed 13) and 71 (seed 46); 181 and 110 while a
        // new leader proposed copies of what it inherited; 1,213 and 4,108
        // while every retry proposed a copy.
        let bound = s.params.snapshot_every + s.params.snapshot_keep + 4 * config.clients as u64;
        assert!(
            s.stats.max_log_entries <= bound,
            "seed {seed}: {} entries in a log (bound {bound})",
            s.stats.max_log_entries
        );
    }
}

/// Seed 236 of `cargo xtask sweep --seeds 1..=300 --nodes 3 --clients 30
/// --swarm off` (found once the fix above changed its schedule): not
/// linearizable, three reads of k2 answered at 29.36 s with a value
/// overwritten 0.8 s before. Node 2 had led term 15 (read rounds up to
/// 581), led again in term 16 (rounds restart) and was cut off by a
/// partition that held its term-15 appends; replayed to node 3, now in term
/// 16, they were answered in term 16 echoing round 581, which node 2 took
/// as confirming its term-16 round 152, and it served reads from its stale
/// state. The answer to an older term's append now acknowledges no round
/// (raft `a_re_elected_leader_is_not_confirmed_by_answers_to_its_old_terms_rounds_6_4`).
/// The `read rounds` invariant says it online: with the old echo it breaks
/// on this seed even where the history happens to stay linearizable.
#[test]
fn seed_236_answers_to_a_held_append_of_an_older_term_confirm_no_read() {
    let mut config = SimConfig::new(236);
    config.nodes = 3;
    config.clients = 30;
    config.swarm = false;
    let s = sim::run(&config, Tracer::silent(), &Budget::default())
        .expect("valid")
        .summary;
    assert!(
        s.params.families.holds,
        "seed 236 holds and replays messages"
    );
    assert!(s.stats.messages_held > 0, "no message was held");
    assert!(
        !s.violation_kinds.contains(&ViolationKind::ReadRounds),
        "an answer echoed a read round of another leadership: {:?}",
        s.violations
    );
    assert_eq!(s.linearizable, Some(true), "{:?}", s.violations);
    assert!(s.ok, "{:?} {:?}", s.violations, s.liveness);
}

/// Seed 11 of `cargo xtask sweep --seeds 1..=100 --clients 30 --swarm off`:
/// a liveness failure with no bug behind it. Raft drew one entry per append
/// and one append in flight (stop-and-wait); two of the five founding
/// voters halted on corrupt logs, so the healed quorum needed a member
/// (behind a slow disk during the chaos) 730 entries behind, and each entry
/// cost a round trip: about 15 s of copying against a 10 s bound. The bound
/// now allows for the catch-up at the drawn pace (`catch_up_allowance`),
/// and the clients' retries are spaced to span it.
///
/// The schedule has since moved (a retry at a new leader now waits on the
/// copy of its write already in that leader's log instead of proposing
/// another): seed 11 still draws stop-and-wait, but one voter halts on a
/// corrupt log, not two, and the run stays live even with the allowance
/// turned off. No seed of 1..=500 under these settings now needs it, so
/// this test checks that the allowance is made and the run is live, no
/// longer that the allowance is what keeps it live; the arithmetic is
/// unit-tested in `world::liveness`
/// (`catch_up_time_is_a_round_trip_per_batch_of_entries_capped`).
#[test]
fn seed_11_stop_and_wait_replication_is_allowed_its_catch_up_time_and_stays_live() {
    let mut config = SimConfig::new(11);
    config.clients = 30;
    config.swarm = false;
    let outcome = sim::run(&config, Tracer::silent(), &Budget::default()).expect("valid");
    let s = &outcome.summary;
    let raft = &s.params.raft;
    assert_eq!(
        (raft.max_entries_per_append, raft.max_inflight_appends),
        (1, 1),
        "stop-and-wait was drawn"
    );
    assert_eq!(s.failed_nodes.len(), 1, "a voter halted on a corrupt log");
    assert!(
        s.stats.liveness_bound_ms > 20_000,
        "the catch-up was allowed for: bound {} ms",
        s.stats.liveness_bound_ms
    );
    assert!(s.liveness.is_empty(), "{:?}", s.liveness);
    assert!(s.ok, "{:?}", s.violations);
}

/// Seeds 40 and 226 of `cargo xtask sweep --seeds 1..=300 --nodes 3
/// --clients 50` (found once a retry at a new leader stopped proposing a
/// copy, which moved their schedules): a false alarm of the checker, "commit
/// rule broken ... the leader of t5 moved its commit index to i2168, an
/// entry of t3" and "stale answers counted". Node 2 led term 4; an append
/// of term 5 from node 1 deposed it and, in the same step, moved its commit
/// index to node 1's. The checker counted any commit moved in a step that
/// began as leader as that leader's (meant for a leader that removes itself
/// and steps down in its own term, §4.2.2), and checked it against the term
/// after the step. It now counts it only if the node's term did not change.
#[test]
fn seeds_40_and_226_a_leader_deposed_by_an_append_moves_its_commit_as_a_follower() {
    for seed in [40, 226] {
        let mut config = SimConfig::new(seed);
        config.nodes = 3;
        config.clients = 50;
        let s = sim::run(&config, Tracer::silent(), &Budget::default())
            .expect("valid")
            .summary;
        for kind in [ViolationKind::CommitRule, ViolationKind::StaleAnswers] {
            assert!(
                !s.violation_kinds.contains(&kind),
                "seed {seed}: {:?}",
                s.violations
            );
        }
        assert!(s.ok, "seed {seed}: {:?} {:?}", s.violations, s.liveness);
    }
}
