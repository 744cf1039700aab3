//! Pruning rule: a configuration fails at once when a pending read can no longer see
//! its value, given what can still precede it.

use crate::model::{Model, Step, ValueId};

use super::SearchOp;
use super::links::{Links, NIL};

/// How far [`unreachable_reads`] looks ahead in the event list, in events: bounds the
/// cost of the check per configuration.
const READ_LOOKAHEAD_EVENTS: usize = 512;

/// How many pending reads [`unreachable_reads`] checks per configuration.
const READ_LOOKAHEAD_READS: usize = 4;

/// How many possible starting values [`unreachable_reads`] tracks before it gives up.
const READ_LOOKAHEAD_STARTS: usize = 16;

/// Put into `dead` (cleared first) a pending read that can never be linearized from the
/// current configuration, if it finds one; the configuration then fails, whatever is
/// tried next.
///
/// Before a read takes effect, the value evolves from the current one through the
/// operations that can precede the read (those called no later than its return), and
/// only a put, delete or cas can set it to something that does not extend what it was
/// (a "reset"); appends only extend it. So the value a read returns must extend the
/// current value, or the value some pending reset called before its return would
/// write. If it extends none of them, no order works. The reads looked at are the
/// first few to return and the walk is bounded: this is a pruning rule, so looking at
/// less only prunes less.
///
/// This matters for appends: a wrong order of appends is otherwise found only when a
/// read that sees it becomes a candidate, after every interleaving of the appends
/// before it has been tried.
pub(super) fn unreachable_reads(
    state: ValueId,
    model: &mut Model,
    ops: &[SearchOp],
    (links, events): (&Links, &[(u64, bool, usize)]),
    (ulinks, unknown): (&Links, &[(u64, usize)]),
    steps: &mut u64,
    dead: &mut Vec<usize>,
) {
    dead.clear();
    // Values the key may hold before the next read, up to appends.
    let mut starts: Vec<ValueId> = vec![state];
    let add = |starts: &mut Vec<ValueId>, op: usize| {
        if let Some(v) = ops[op].step.reset_value()
            && !starts.contains(&v)
        {
            starts.push(v);
        }
    };
    let mut reads = 0;
    let mut node = links.next[NIL as usize];
    let mut unode = ulinks.next[NIL as usize];
    for _ in 0..READ_LOOKAHEAD_EVENTS {
        if node == NIL || starts.len() > READ_LOOKAHEAD_STARTS {
            return;
        }
        let (time, is_return, op) = events[node as usize - 1];
        *steps += 1;
        // Unknown operations called up to this event may precede what follows it.
        while unode != NIL && unknown[unode as usize - 1].0 <= time {
            add(&mut starts, unknown[unode as usize - 1].1);
            unode = ulinks.next[unode as usize];
            *steps += 1;
        }
        if !is_return {
            add(&mut starts, op);
        } else if let Step::Read(target) = ops[op].step {
            if !starts.iter().any(|&s| model.may_grow_into(s, target)) {
                dead.push(op);
                return;
            }
            reads += 1;
            if reads == READ_LOOKAHEAD_READS {
                return;
            }
        }
        node = links.next[node as usize];
    }
}
