//! Membership changes (dissertation chapter 4) and leadership transfer
//! (§3.10).
//!
//! * A configuration is a log entry and takes effect on a server as soon as
//!   it is in that server's log (§4.1), committed or not; if it is truncated
//!   away, the previous one is back. [`Raft::sync_membership`] keeps the
//!   tracker in step with the log after every change to it.
//! * Changing voters goes through joint consensus (§4.3): the leader appends
//!   C_old,new (incoming voters, outgoing voters); while it is in force every
//!   decision needs a majority of both; once it is committed the leader
//!   appends C_new on its own.
//! * One change at a time: a leader refuses a change while a configuration
//!   entry is uncommitted or a joint configuration is in force, and until it
//!   has committed an entry of its own term (the fix for the single-server
//!   change bug found in 2015; harmless and simple to keep for joint
//!   changes too).
//! * New voters join as learners first (§4.2.1) and are promoted once they
//!   hold the commit index, so that adding them does not stall commitment.
//! * A leader that is not in C_new manages the cluster until C_new commits
//!   (counting itself only in C_old while joint), then steps down (§4.2.2).
//!   A server not in its own configuration campaigns only while that
//!   configuration is not known committed and it was a voter of the one
//!   before (it may hold the only copy of C_new); a removed server
//!   that never learnt of its removal cannot disrupt the others: pre-vote
//!   and the leader's lease (§4.2.3, §9.6) keep their terms where they are.

use crate::errors::{MembershipError, TransferError};
use crate::raft::Raft;
use crate::types::{EntryPayload, LogIndex, Membership, MessageBody, NodeId, Role, Term};
use std::collections::BTreeSet;

/// A configuration change a leader can be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// Add a non-voting member; it starts receiving the log (or a snapshot).
    AddLearner(NodeId),
    /// Make a learner a voter (joint consensus). It must hold the commit
    /// index.
    Promote(NodeId),
    /// Remove a member: a learner at once, a voter through joint consensus.
    /// The leader may remove itself; it steps down once C_new commits.
    Remove(NodeId),
    /// Replace voter `remove` by learner `add` in one joint change.
    Replace {
        /// The voter that leaves.
        remove: NodeId,
        /// The caught-up learner that becomes a voter.
        add: NodeId,
    },
    /// Any target: these voters and these learners. Every new voter must be
    /// a caught-up learner.
    Set {
        /// The voters after the change.
        voters: BTreeSet<NodeId>,
        /// The learners after the change.
        learners: BTreeSet<NodeId>,
    },
}

impl Raft {
    /// The leader appends the configuration entry for `change`, after
    /// checking that it is safe (see the module documentation). Returns its
    /// index.
    pub fn propose_membership(&mut self, change: ConfChange) -> Result<LogIndex, MembershipError> {
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader {
                leader: self.leader,
            });
        }
        if self.lead_transferee.is_some() {
            return Err(MembershipError::TransferInProgress);
        }
        let committed = self.log.committed();
        if self.log.term_at(committed) != Some(self.term) {
            return Err(MembershipError::LeaderNotSettled);
        }
        let current = self.log.membership().clone();
        let index = self.log.membership_index();
        if index > committed || current.is_joint() {
            return Err(MembershipError::ChangeInProgress { index });
        }
        let (voters, learners) = target(&current, change)?;
        for &id in voters.difference(&current.voters) {
            if !current.learners.contains(&id) {
                return Err(MembershipError::NotALearner(id));
            }
            let matched = self.tracker.get(id).map_or(LogIndex(0), |p| p.match_index);
            if matched < committed {
                return Err(MembershipError::LearnerBehind {
                    id,
                    matched,
                    committed,
                });
            }
        }
        if voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        let next = if voters == current.voters {
            // Learners do not count towards any quorum: no joint step.
            Membership {
                voters,
                outgoing: BTreeSet::new(),
                learners,
            }
        } else {
            Membership {
                voters,
                outgoing: current.voters.clone(),
                learners,
            }
        };
        if next.voters == current.voters && next.learners == current.learners {
            return Err(MembershipError::NoChange);
        }
        next.validate().map_err(MembershipError::Invalid)?;
        let index = self
            .log
            .append_new(self.term, EntryPayload::Membership(next));
        self.broadcast_due = true;
        self.sync_membership();
        Ok(index)
    }

    /// Makes the tracker follow the configuration in force in the log, if
    /// it changed (§4.1). Cheap when it did not: the configuration entry's
    /// (index, term) identifies it.
    pub fn sync_membership(&mut self) {
        let index = self.log.membership_index();
        let key = (index, self.log.term_at(index).unwrap_or(Term(0)));
        if key == self.membership_key {
            return;
        }
        self.membership_key = key;
        let membership = self.log.membership().clone();
        self.tracker
            .set_membership(&membership, self.log.last_index());
        if let Some(to) = self.lead_transferee
            && !membership.voters.contains(&to)
        {
            self.lead_transferee = None;
        }
        match self.role {
            Role::Leader => {
                // New members need the log; a learner's first append probes.
                self.broadcast_due = true;
            }
            Role::Candidate | Role::PreCandidate if !self.is_promotable() => {
                let term = self.term;
                self.become_follower(term, None);
            }
            _ => {}
        }
    }

    /// Leader, after its commit index moved: leave a committed joint
    /// configuration (§4.3: "once C_old,new has been committed, the leader
    /// creates a log entry describing C_new"), and step down once a C_new
    /// without it is committed (§4.2.2). Returns whether it still leads.
    pub(crate) fn membership_after_commit(&mut self) -> bool {
        if self.role != Role::Leader || self.log.membership_index() > self.log.committed() {
            return self.role == Role::Leader;
        }
        let membership = self.log.membership();
        if membership.is_joint() {
            let next = membership.leave_joint();
            self.log
                .append_new(self.term, EntryPayload::Membership(next));
            self.broadcast_due = true;
            self.sync_membership();
            return true;
        }
        if !membership.is_voter(self.id) {
            let term = self.term;
            self.become_follower(term, None);
            return false;
        }
        true
    }

    /// Leader: hands leadership to `to` (§3.10). Proposals are refused
    /// meanwhile; once `to` holds the whole log it is told to campaign at
    /// once (TimeoutNow). The transfer is abandoned after an election
    /// timeout, or when leadership is lost.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.log.membership().voters.contains(&to) {
            return Err(TransferError::NotAVoter(to));
        }
        if to == self.id {
            self.lead_transferee = None;
            return Ok(());
        }
        if self.lead_transferee == Some(to) {
            return Ok(());
        }
        self.lead_transferee = Some(to);
        self.transfer_elapsed = 0;
        self.transfer_sent = false;
        self.maybe_send_timeout_now(to);
        if !self.transfer_sent {
            self.send_appends(to);
        }
        Ok(())
    }

    /// Leader: tells the transfer target to campaign once it holds the whole
    /// log (a candidate behind would lose, §5.4.1).
    pub(crate) fn maybe_send_timeout_now(&mut self, to: NodeId) {
        if self.lead_transferee != Some(to) || self.transfer_sent {
            return;
        }
        let caught_up = self
            .tracker
            .get(to)
            .is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.transfer_sent = true;
            self.send(to, MessageBody::TimeoutNow);
        }
    }

    /// Leader, every tick: a transfer that has not completed within an
    /// election timeout is abandoned, and proposals are accepted again.
    pub(crate) fn tick_transfer(&mut self) {
        if self.lead_transferee.is_some() {
            self.transfer_elapsed = self.transfer_elapsed.saturating_add(1);
            if self.transfer_elapsed >= self.cfg.election_tick {
                self.lead_transferee = None;
            }
        }
    }

    /// A TimeoutNow from the leader of our term: campaign at once, skipping
    /// pre-vote, with a vote request that voters answer even within the
    /// leader's lease (§3.10).
    pub(crate) fn handle_timeout_now(&mut self) {
        if self.role == Role::Leader || !self.is_promotable() {
            return;
        }
        self.campaign_for_transfer();
    }
}

/// The (voters, learners) `change` asks for, from `current`.
fn target(
    current: &Membership,
    change: ConfChange,
) -> Result<(BTreeSet<NodeId>, BTreeSet<NodeId>), MembershipError> {
    let (mut voters, mut learners) = (current.voters.clone(), current.learners.clone());
    match change {
        ConfChange::AddLearner(id) => {
            if current.contains(id) {
                return Err(MembershipError::AlreadyMember(id));
            }
            if id == NodeId(0) {
                return Err(MembershipError::Invalid("node 0"));
            }
            learners.insert(id);
        }
        ConfChange::Promote(id) => {
            if !learners.remove(&id) {
                return Err(if voters.contains(&id) {
                    MembershipError::AlreadyMember(id)
                } else if current.contains(id) {
                    MembershipError::NotALearner(id)
                } else {
                    MembershipError::UnknownNode(id)
                });
            }
            voters.insert(id);
        }
        ConfChange::Remove(id) => {
            if !voters.remove(&id) && !learners.remove(&id) {
                return Err(MembershipError::UnknownNode(id));
            }
        }
        ConfChange::Replace { remove, add } => {
            if !voters.remove(&remove) {
                return Err(MembershipError::UnknownNode(remove));
            }
            if !learners.remove(&add) {
                return Err(if current.contains(add) {
                    MembershipError::AlreadyMember(add)
                } else {
                    MembershipError::NotALearner(add)
                });
            }
            voters.insert(add);
        }
        ConfChange::Set {
            voters: v,
            learners: l,
        } => {
            (voters, learners) = (v, l);
        }
    }
    Ok((voters, learners))
}
