//! Bugs the tests plant on purpose, to prove that the simulator's checks
//! catch what asynchronous storage makes possible. A replica plants one
//! only through [`crate::Replica::plant`], which exists only with the
//! `planted-bugs` cargo feature: no normal build can reach them (the
//! simulator's tests turn the feature on for themselves).

/// One rule of asynchronous storage, broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedBug {
    /// A leader counts its own entries toward a commit as soon as it hands
    /// them to the disk, before the write completes (§10.2.1 allows the
    /// appends to leave early, never the self-count).
    LeaderCountsBeforeDurable,
    /// A follower acknowledges appended entries before the write holding
    /// them completes (Figure 2).
    AckBeforeDurable,
    /// A voter answers a vote before the hard state recording it is
    /// durable (Figure 2, §5.2).
    VoteBeforeDurable,
    /// A client's write is answered once the leader's own write of it
    /// completes, before it is committed and applied.
    ReplyBeforeApplied,
}

impl PlantedBug {
    /// Every planted bug.
    pub const ALL: [PlantedBug; 4] = [
        PlantedBug::LeaderCountsBeforeDurable,
        PlantedBug::AckBeforeDurable,
        PlantedBug::VoteBeforeDurable,
        PlantedBug::ReplyBeforeApplied,
    ];

    /// A short name, as the simulator prints it.
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::LeaderCountsBeforeDurable => "leader-counts-before-durable",
            PlantedBug::AckBeforeDurable => "ack-before-durable",
            PlantedBug::VoteBeforeDurable => "vote-before-durable",
            PlantedBug::ReplyBeforeApplied => "reply-before-applied",
        }
    }
}

#[cfg(feature = "planted-bugs")]
mod plants {
    use super::PlantedBug;
    use crate::effects::Effect;
    use crate::envelope::ClientReply;
    use crate::replica::Replica;
    use kv::Output;
    use raft::{Entry, Message, MessageBody};

    impl Replica {
        /// With [`PlantedBug::AckBeforeDurable`] or
        /// [`PlantedBug::VoteBeforeDurable`]: sends the answers that should
        /// wait for the disk at once; returns the rest.
        pub(crate) fn planted_early_answers(
            &self,
            held: Vec<Message>,
            effects: &mut Vec<Effect>,
        ) -> Vec<Message> {
            let (early, rest): (Vec<Message>, Vec<Message>) =
                held.into_iter().partition(|m| match m.body {
                    MessageBody::AppendEntriesResponse { success: true, .. } => {
                        self.planted(PlantedBug::AckBeforeDurable)
                    }
                    MessageBody::RequestVoteResponse { granted: true } => {
                        self.planted(PlantedBug::VoteBeforeDurable)
                    }
                    _ => false,
                });
            self.send_all(early, effects);
            rest
        }

        /// With [`PlantedBug::ReplyBeforeApplied`]: a leader answers the
        /// writes among `entries` (its own write of them just completed)
        /// before they commit.
        pub(crate) fn planted_early_replies(
            &mut self,
            entries: &[Entry],
            effects: &mut Vec<Effect>,
        ) {
            if !self.planted(PlantedBug::ReplyBeforeApplied)
                || self.raft.role() != raft::Role::Leader
            {
                return;
            }
            let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
                return;
            };
            let early: Vec<kv::ClientId> = self
                .pending_writes
                .iter()
                .filter(|(_, p)| p.answer_is_done && (first.index..=last.index).contains(&p.index))
                .map(|(client, _)| *client)
                .collect();
            for client in early {
                let pending = self.pending_writes.remove(&client).expect("listed above");
                effects.push(Effect::Reply(ClientReply {
                    req_id: pending.req_id,
                    result: Ok(Output::Done),
                }));
            }
        }
    }
}
