//! Leader election (§5.2) with the election restriction (§5.4.1) and the
//! pre-vote phase (dissertation §9.6).
//!
//! Why pre-vote: a server cut off from the cluster keeps timing out. Without
//! pre-vote it bumps its term every time, and when it rejoins, its high term
//! forces the working leader to step down. With pre-vote it first asks "would
//! you vote for me in term T+1?" without changing anyone's term; a server that
//! hears from a leader (or whose log is ahead) says no, so the isolated server
//! never leaves its term and rejoins quietly.

use crate::quorum::VoteResult;
use crate::raft::Raft;
use crate::types::{EntryPayload, LogIndex, MessageBody, NodeId, Role, Term};

impl Raft {
    /// Starts an election now: the election timer fired, or the driver asked.
    pub fn hup(&mut self) {
        if self.role == Role::Leader || !self.is_promotable() {
            return;
        }
        if self.cfg.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    /// §9.6: probe with pre-votes first, without touching term or vote.
    fn become_pre_candidate(&mut self) {
        self.campaign_transfer = false;
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_timers();
        self.tracker.reset_votes();
        self.tracker.record_vote(self.id, true);
        if self.tracker.tally_votes() == VoteResult::Won {
            // A single voter needs nobody's agreement.
            self.become_candidate();
            return;
        }
        let next_term = Term(self.term.0 + 1);
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.tracker.voter_peers(self.id) {
            self.send_with_term(
                peer,
                next_term,
                MessageBody::PreVote {
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    /// §5.2: "increment currentTerm, vote for self, reset election timer,
    /// send RequestVote RPCs to all other servers".
    fn become_candidate(&mut self) {
        self.lead_transferee = None;
        self.term_durable = false;
        self.term = Term(self.term.0 + 1);
        self.vote = Some(self.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_timers();
        self.tracker.reset_votes();
        self.tracker.record_vote(self.id, true);
        if self.tracker.tally_votes() == VoteResult::Won {
            self.become_leader();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let transfer = self.campaign_transfer;
        for peer in self.tracker.voter_peers(self.id) {
            // Goes out only after the self-vote is durable (see `send_with_term`).
            self.send(
                peer,
                MessageBody::RequestVote {
                    last_log_index,
                    last_log_term,
                    transfer,
                },
            );
        }
    }

    /// §3.10: the leader asked this node to take over (TimeoutNow): a real
    /// election at once, no pre-vote, vote requests marked as a transfer.
    pub(crate) fn campaign_for_transfer(&mut self) {
        self.campaign_transfer = true;
        self.become_candidate();
    }

    /// §5.2: a candidate that wins a majority becomes leader.
    pub(crate) fn become_leader(&mut self) {
        debug_assert_eq!(self.role, Role::Candidate);
        self.campaign_transfer = false;
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.reset_timers();
        let last = self.log.last_index();
        self.tracker.reset(last);
        let persisted = self.log.persisted();
        let me = self.id;
        if let Some(pr) = self.tracker.get_mut(me) {
            // The leader counts itself only up to what it has persisted.
            pr.maybe_update(persisted);
            pr.recent_active = true;
        }
        self.reads.clear();
        // §5.4.2 and §8: a leader cannot know which earlier entries are
        // committed until it commits an entry of its own term, so it appends
        // a no-op at once (also the barrier ReadIndex waits for, §6.4).
        self.log.append_new(self.term, EntryPayload::Noop);
        self.broadcast_due = true;
    }

    /// A pre-vote request for `term` (the candidate's term + 1).
    pub(crate) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        debug_assert!(term >= self.term);
        // §5.4.1: only for a log at least as up-to-date as ours.
        let up_to_date = self.log.is_up_to_date(last_log_term, last_log_index);
        // In a later term our vote is free; in ours, the usual one-vote rule.
        let can_vote = term > self.term
            || self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none());
        // §9.6: only if we have not heard from a leader within the minimum
        // election timeout.
        let granted = can_vote && up_to_date && !self.in_lease();
        // §9.6: the pre-vote changes neither our term nor our vote. A grant
        // carries the asked term (so the pre-candidate can match it to its
        // round); a refusal carries ours (so a pre-candidate behind us learns
        // our term).
        let reply_term = if granted { term } else { self.term };
        self.send_with_term(from, reply_term, MessageBody::PreVoteResponse { granted });
    }

    /// A vote request in our (possibly just adopted) term.
    pub(crate) fn handle_request_vote(
        &mut self,
        from: NodeId,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        // §5.2: at most one vote per term, first come first served; a node
        // that knows this term's leader does not vote for anyone else.
        let can_vote = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        // §5.4.1 (election restriction): grant only to a candidate whose log
        // is at least as up-to-date as ours, so every leader holds all
        // committed entries.
        let granted = can_vote && self.log.is_up_to_date(last_log_term, last_log_index);
        if granted {
            self.vote = Some(from);
            // §5.2: granting a vote resets the election timer.
            self.election_elapsed = 0;
        }
        // Persisted before it leaves: the vote is in the same Ready's hard state.
        self.send(from, MessageBody::RequestVoteResponse { granted });
    }

    /// An answer to one of our pre-votes.
    pub(crate) fn handle_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::PreCandidate {
            return;
        }
        // Grants carry the term we asked about, refusals our current term;
        // anything else answers an older round.
        let current = if granted {
            term.0 == self.term.0 + 1
        } else {
            term == self.term
        };
        if !current {
            return;
        }
        self.tracker.record_vote(from, granted);
        match self.tracker.tally_votes() {
            VoteResult::Won => self.become_candidate(),
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, None);
            }
            VoteResult::Pending => {}
        }
    }

    /// An answer to one of our vote requests, in our term.
    pub(crate) fn handle_vote_response(&mut self, from: NodeId, granted: bool) {
        // Our request left after our term was persisted.
        self.term_durable = true;
        if self.role != Role::Candidate {
            return;
        }
        self.tracker.record_vote(from, granted);
        match self.tracker.tally_votes() {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, None);
            }
            VoteResult::Pending => {}
        }
    }
}
