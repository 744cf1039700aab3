//! Membership churn: the nemesis as an operator who grows, shrinks and
//! replaces the cluster (the leader too) and transfers leadership, while
//! every other fault runs.
//!
//! A plan is drawn when none is under way and carried out one step per
//! churn event through whichever node leads then: a new node is started
//! empty (it belongs to no cluster), added as a learner, and promoted (or
//! swapped in for a victim) once it has caught up; a removed node is shut
//! down for good once its removal is committed. Refusals that say "not
//! now" (another change under way, a learner still behind, a leader that
//! has not committed in its term) are retried at the next event; the others
//! abandon the plan. Every refusal is counted by kind.
//!
//! Bounds: between 3 and 7 voters; never more disks that may lose synced
//! data (the disk fault budget) than a minority of the voters; nodes with a
//! corrupt disk, which stay down, are the preferred victims.

use super::{Event, World};
use crate::queue::MS;
use crate::timeline::TimelineEvent;
use crate::trace::{Actor, TraceEvent};
use raft::{ConfChange, LogIndex, Membership, MembershipError, NodeId};
use replica::{AdminAccepted, AdminOp, AdminRefused, AdminRequest, Input};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The fewest and most voters churn leaves.
const MIN_VOTERS: usize = 3;
const MAX_VOTERS: usize = 7;

/// A churn plan not done after this many churn events is abandoned.
const PLAN_PATIENCE: u32 = 20;

/// A membership change under way: a goal, checked against the committed
/// configuration at every churn event until it holds (a proposal can be
/// lost with its leader, and is then made again).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    goal: Goal,
    /// Churn events spent on it so far.
    attempts: u32,
}

#[derive(Clone, Copy, Debug)]
enum Goal {
    /// The spare `node` becomes a voter, through a learner stage; with
    /// `replace`, in place of that voter in one joint change.
    Join { node: usize, replace: Option<usize> },
    /// `node` is no longer a member.
    Remove { node: usize },
    /// Leadership moves to `to`.
    Transfer { to: usize },
}

/// What churn did, for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChurnStats {
    /// Configuration changes completed: committed configurations that are
    /// not joint (each learner change, and each joint change once left).
    pub completed: u64,
    /// New nodes that became voters (through a learner stage).
    pub nodes_added: u64,
    /// Voters removed.
    pub nodes_removed: u64,
    /// Voters replaced by a new node in one joint change.
    pub replacements: u64,
    /// Removals (or replacements) whose victim led when it was asked.
    pub leader_removals: u64,
    /// Leadership transfers asked for.
    pub transfers: u64,
    /// Plans given up (refused for good, or not done in time).
    pub abandoned: u64,
    /// Nodes shut down for good after their removal committed.
    pub retired: u64,
    /// Refused requests, by kind of refusal.
    pub refusals: BTreeMap<String, u64>,
}

impl World {
    /// One churn event: retire removed nodes, then one step of the plan.
    pub(super) fn churn(&mut self) {
        if self.chaos_over {
            return;
        }
        self.retire_removed();
        if let Some(leader) = self.leader_index() {
            if self.churn_plan.is_none() {
                self.churn_plan = self
                    .draw_plan(leader)
                    .map(|goal| Plan { goal, attempts: 0 });
            }
            if let Some(mut plan) = self.churn_plan {
                plan.attempts += 1;
                self.churn_plan = Some(plan);
                if plan.attempts > PLAN_PATIENCE {
                    self.abandon_plan();
                } else {
                    self.churn_step(leader, plan.goal);
                }
            }
        }
        let every = self.params.churn_every_ms * MS;
        let next = self.now + self.churn_rng.range(every / 2, every + every / 2);
        self.queue.push(next, Event::Churn);
    }

    /// The voters (both halves while joint) of the latest configuration any
    /// live node knows, as slot indices; the founding voters before any.
    pub(super) fn current_voters(&self) -> BTreeSet<usize> {
        let latest = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .max_by_key(|r| (r.raft().membership_index(), r.raft().term()))
            .map(|r| r.raft().membership().clone());
        match latest {
            Some(m) => m
                .voters
                .iter()
                .chain(&m.outgoing)
                .map(|id| id.0 as usize - 1)
                .collect(),
            None => (0..self.config.nodes).collect(),
        }
    }

    /// The leader's configuration, if committed (no change under way).
    fn committed_membership(&self, leader: usize) -> Option<Membership> {
        let raft = self.nodes[leader].replica.as_ref()?.raft();
        (raft.membership_index() <= raft.commit_index()).then(|| raft.membership().clone())
    }

    /// Draws the next change, if one is possible now.
    fn draw_plan(&mut self, leader: usize) -> Option<Goal> {
        let m = self.committed_membership(leader)?;
        if m.is_joint() {
            return None;
        }
        let voters: Vec<usize> = m.voters.iter().map(|id| id.0 as usize - 1).collect();
        let spare = (0..self.nodes.len()).find(|&i| self.nodes[i].dormant);
        // A victim: a node that stays down (corrupt disk) if any, else the
        // leader now and then, else any voter.
        let failed: Vec<usize> = voters
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].failed.is_some())
            .collect();
        let victim = if let Some(&f) = failed.first() {
            f
        } else if self.churn_rng.chance(0.3) {
            leader
        } else {
            voters[self.churn_rng.index(voters.len())]
        };
        let within_budget = |w: &World, set: &[usize]| {
            let lossy = set
                .iter()
                .filter(|&&i| w.nodes[i].disk.may_lose_data())
                .count();
            lossy <= set.len().saturating_sub(1) / 2
        };
        let without =
            |node: usize| -> Vec<usize> { voters.iter().copied().filter(|&i| i != node).collect() };
        let with = |node: usize, minus: Option<usize>| -> Vec<usize> {
            let mut v: Vec<usize> = voters
                .iter()
                .copied()
                .filter(|&i| Some(i) != minus)
                .collect();
            v.push(node);
            v
        };
        let kind = self.churn_rng.range(0, 4);
        match kind {
            0 if voters.len() < MAX_VOTERS => {
                let node = spare?;
                within_budget(self, &with(node, None)).then_some(Goal::Join {
                    node,
                    replace: None,
                })
            }
            1 if voters.len() > MIN_VOTERS => {
                within_budget(self, &without(victim)).then_some(Goal::Remove { node: victim })
            }
            2 => {
                let node = spare?;
                within_budget(self, &with(node, Some(victim))).then_some(Goal::Join {
                    node,
                    replace: Some(victim),
                })
            }
            _ => {
                let others: Vec<usize> = voters
                    .iter()
                    .copied()
                    .filter(|&i| i != leader && self.nodes[i].replica.is_some())
                    .collect();
                (!others.is_empty()).then(|| Goal::Transfer {
                    to: others[self.churn_rng.index(others.len())],
                })
            }
        }
    }

    /// A scripted removal of the leader: replaces any plan under way with
    /// removing `leader`, and takes its first step now.
    pub(super) fn remove_leader(&mut self, leader: usize) {
        self.churn_plan = Some(Plan {
            goal: Goal::Remove { node: leader },
            attempts: 0,
        });
        self.churn_step(leader, Goal::Remove { node: leader });
    }

    /// Works towards `goal` through `leader`: one proposal, or the
    /// observation that the goal holds (the plan is then done).
    fn churn_step(&mut self, leader: usize, goal: Goal) {
        let id = |i: usize| NodeId(i as u64 + 1);
        let Some(m) = self.committed_membership(leader) else {
            return; // A change is under way; look again later.
        };
        match goal {
            Goal::Join { node, replace } => {
                let victim_gone = replace.is_none_or(|v| !m.contains(id(v)));
                if m.voters.contains(&id(node)) && victim_gone {
                    self.stats.membership.nodes_added += 1;
                    if replace.is_some() {
                        self.stats.membership.replacements += 1;
                    }
                    self.churn_plan = None;
                } else if !m.contains(id(node)) {
                    if self.nodes[node].dormant {
                        self.nodes[node].dormant = false;
                        self.trace(
                            Actor::Nemesis,
                            TraceEvent::Fault(format!("start new node n{}", node + 1)),
                        );
                        self.mark(TimelineEvent::Joined {
                            node: node as u64 + 1,
                        });
                        self.start_node(node);
                    }
                    self.propose_change(leader, ConfChange::AddLearner(id(node)));
                } else if m.learners.contains(&id(node)) {
                    let change = match replace {
                        Some(victim) if m.voters.contains(&id(victim)) => ConfChange::Replace {
                            remove: id(victim),
                            add: id(node),
                        },
                        _ => ConfChange::Promote(id(node)),
                    };
                    let removes_leader = replace == Some(leader);
                    if self.propose_change(leader, change) && removes_leader {
                        self.stats.membership.leader_removals += 1;
                    }
                } else {
                    // A voter already, but the victim is still there.
                    self.abandon_plan();
                }
            }
            Goal::Remove { node } => {
                if !m.contains(id(node)) {
                    self.stats.membership.nodes_removed += 1;
                    self.churn_plan = None;
                } else if self.propose_change(leader, ConfChange::Remove(id(node)))
                    && node == leader
                {
                    self.stats.membership.leader_removals += 1;
                }
            }
            Goal::Transfer { to } => {
                self.churn_plan = None;
                self.trace(
                    Actor::Nemesis,
                    TraceEvent::Fault(format!(
                        "transfer leadership n{} -> n{}",
                        leader + 1,
                        to + 1
                    )),
                );
                match self.admin(leader, AdminOp::TransferLeadership(id(to))) {
                    Some(Ok(_)) => self.stats.membership.transfers += 1,
                    Some(Err(AdminRefused::Transfer(e))) => self.count_refusal(format!("{e:?}")),
                    Some(Err(other)) => self.count_refusal(other.to_string()),
                    None => {}
                }
            }
        }
    }

    /// Proposes `change` on `leader`. Returns whether it was accepted; a
    /// refusal is counted, and abandons the plan unless it says "later".
    fn propose_change(&mut self, leader: usize, change: ConfChange) -> bool {
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault(format!("membership: {change:?} via n{}", leader + 1)),
        );
        let result = self.admin(leader, AdminOp::ChangeMembership(change));
        match result {
            Some(Ok(_)) => true,
            Some(Err(AdminRefused::Transfer(e))) => {
                self.count_refusal(format!("{e:?}"));
                false
            }
            Some(Err(refused @ AdminRefused::NothingToSnapshot { .. })) => {
                unreachable!("a membership change answered as a snapshot: {refused}")
            }
            Some(Err(AdminRefused::Membership(e))) => {
                let later = matches!(
                    e,
                    MembershipError::ChangeInProgress { .. }
                        | MembershipError::LeaderNotSettled
                        | MembershipError::LearnerBehind { .. }
                        | MembershipError::TransferInProgress
                        | MembershipError::NotLeader { .. }
                );
                let kind = format!("{e:?}");
                let kind = kind
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or("?")
                    .to_string();
                self.count_refusal(kind);
                if !later {
                    self.abandon_plan();
                }
                false
            }
            None => false, // The leader failed; try again later.
        }
    }

    fn count_refusal(&mut self, kind: String) {
        *self.stats.membership.refusals.entry(kind).or_insert(0) += 1;
    }

    /// Gives up the plan; a spare started for it is shut down again.
    fn abandon_plan(&mut self) {
        let Some(plan) = self.churn_plan.take() else {
            return;
        };
        self.stats.membership.abandoned += 1;
        if let Goal::Join { node, .. } = plan.goal
            && !self.nodes[node].joined
            && !self.nodes[node].dormant
        {
            self.retire(node, "its addition was abandoned");
        }
    }

    /// Shuts down for good every node that a committed configuration
    /// included once and the committed configuration now excludes.
    fn retire_removed(&mut self) {
        let Some(leader) = self.leader_index() else {
            return;
        };
        let Some(m) = self.committed_membership(leader) else {
            return;
        };
        let members = m.members();
        for i in 0..self.nodes.len() {
            let id = NodeId(i as u64 + 1);
            if members.contains(&id) {
                self.nodes[i].joined = true;
            } else if self.nodes[i].joined && !self.nodes[i].retired && !self.nodes[i].dormant {
                self.retire(i, "removed from the cluster");
            }
        }
    }

    fn retire(&mut self, node: usize, why: &str) {
        let id = node as u64 + 1;
        self.trace(
            Actor::Nemesis,
            TraceEvent::Fault(format!("retire n{id}: {why}")),
        );
        if self.nodes[node].replica.is_some() {
            self.take_down(node);
        }
        self.nodes[node].retired = true;
        self.stats.membership.retired += 1;
        self.mark(TimelineEvent::Removed {
            node: id,
            reason: why.to_string(),
        });
    }

    /// A replica applied a configuration entry: count each committed,
    /// non-joint configuration once.
    pub(super) fn membership_applied(&mut self, node: u64, index: LogIndex, m: Membership) {
        if self.applied_memberships.insert(index) {
            self.trace(
                Actor::Node(node),
                TraceEvent::Fault(format!("configuration at {index} committed: {m}")),
            );
            self.mark(TimelineEvent::Membership {
                config: m.to_string(),
            });
            if !m.is_joint() {
                self.stats.membership.completed += 1;
            }
        }
    }
}

impl World {
    /// Hands `op` to `node` as an admin input and returns its answer
    /// (`None` if the node failed while handling it).
    pub(super) fn admin(
        &mut self,
        node: usize,
        op: AdminOp,
    ) -> Option<Result<AdminAccepted, AdminRefused>> {
        self.admin_reply = None;
        let request = AdminRequest { req_id: 0, op };
        self.with_replica(node, |r, effects| r.handle(Input::Admin(request), effects))?;
        let reply = self.admin_reply.take();
        debug_assert!(reply.is_some(), "an admin request is answered at once");
        reply.map(|r| r.result)
    }
}
