//! Carries out the nemesis's faults on the real processes and network, and
//! records each (and every change of leader seen) on the timeline the
//! report draws, as the simulator's `TimelineEvent`s.

use super::history::Shared;
use super::nemesis::{Fault, Shape, Step};
use super::netns::Net;
use super::procs::Cluster;
use super::rng::SplitMix;
use sim::timeline::{Timed, TimelineEvent};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a fault did, for its heal to undo.
#[derive(Debug, Default)]
pub struct Active {
    killed: Vec<usize>,
    paused: Vec<usize>,
    partitioned: bool,
    /// Restart the killed and wait for their leader before resuming the
    /// paused (kill-majority-pause-rest).
    elect_before_resume: bool,
}

/// The nemesis: the cluster, the network, and what it did.
pub struct Nemesis<'a> {
    /// The nodes.
    pub cluster: &'a mut Cluster,
    /// The namespaces, when partitions are possible.
    pub net: Option<&'a Net>,
    /// The clients' shared state (the clock, the endpoints).
    pub shared: &'a Shared,
    /// The bearer token of the nodes' admin endpoints.
    pub admin_token: String,
    /// Faults and leadership, in time order.
    pub events: Vec<Timed>,
    /// Faults carried out, by name.
    pub counts: BTreeMap<&'static str, u64>,
    /// What could not be done as scheduled, and why.
    pub notes: Vec<String>,
    /// Addresses (HTTP, peer, namespace) for nodes that join, in order.
    pub spare: std::collections::VecDeque<(String, String, Option<String>)>,
    rng: SplitMix,
    leader: Option<(u64, u64)>,
}

impl<'a> Nemesis<'a> {
    /// A nemesis drawing its victims from `seed`.
    pub fn new(
        cluster: &'a mut Cluster,
        net: Option<&'a Net>,
        shared: &'a Shared,
        admin_token: String,
        seed: u64,
    ) -> Nemesis<'a> {
        Nemesis {
            cluster,
            net,
            shared,
            admin_token,
            events: Vec::new(),
            counts: BTreeMap::new(),
            notes: Vec::new(),
            spare: Default::default(),
            rng: SplitMix::new(seed ^ 0x7669_6374_696d_7321),
            leader: None,
        }
    }

    fn event(&mut self, event: TimelineEvent) {
        self.events.push(Timed {
            time_ns: self.shared.recorder.now_ns(),
            event,
        });
    }

    fn id(&self, i: usize) -> u64 {
        self.cluster.nodes[i].id
    }

    /// Members not removed, by index.
    fn members(&self) -> Vec<usize> {
        (0..self.cluster.nodes.len())
            .filter(|&i| !self.cluster.nodes[i].removed)
            .collect()
    }

    /// Records a change of leader, if there was one since the last look.
    pub fn observe_leader(&mut self) {
        let Some(i) = self.cluster.leader() else {
            return;
        };
        let term = self
            .cluster
            .status(i, Duration::from_millis(300))
            .and_then(|s| s["term"].as_u64())
            .unwrap_or(0);
        let now = (self.id(i), term);
        if self.leader != Some(now) {
            if let Some((node, term)) = self.leader {
                self.event(TimelineEvent::SteppedDown { node, term });
            }
            self.leader = Some(now);
            self.event(TimelineEvent::Leader {
                node: now.0,
                term: now.1,
            });
        }
    }

    /// The leader's index, or a random member's if none is found quickly.
    fn leader_or_random(&mut self) -> usize {
        match self.cluster.wait_leader(Duration::from_secs(2)) {
            Some(l) => l,
            None => {
                let m = self.members();
                m[self.rng.below(m.len() as u64) as usize]
            }
        }
    }

    /// `k` members, `first` among them, the rest drawn.
    fn pick(&mut self, first: usize, k: usize) -> Vec<usize> {
        let mut rest: Vec<usize> = self.members().into_iter().filter(|&i| i != first).collect();
        let mut out = vec![first];
        while out.len() < k && !rest.is_empty() {
            out.push(rest.remove(self.rng.below(rest.len() as u64) as usize));
        }
        out
    }

    fn kill(&mut self, victims: &[usize], active: &mut Active) {
        for &i in victims {
            if self.cluster.nodes[i].running() {
                self.cluster.kill(i);
                let node = self.id(i);
                self.event(TimelineEvent::Crashed { node });
                active.killed.push(i);
            }
        }
    }

    fn pause(&mut self, victims: &[usize], until_ns: u64, active: &mut Active) {
        for &i in victims {
            if self.cluster.signal_pause(i, true) {
                let node = self.id(i);
                self.event(TimelineEvent::Paused { node, until_ns });
                active.paused.push(i);
            }
        }
    }

    /// Strikes `step`'s fault; what its heal must undo.
    pub fn begin(&mut self, step: &Step) -> Active {
        let mut active = Active::default();
        let until_ns = self.shared.recorder.now_ns() + step.lasts_ms * 1_000_000;
        *self.counts.entry(step.fault.name()).or_default() += 1;
        let members = self.members();
        if members.is_empty() {
            self.notes
                .push(format!("{} skipped: no member left", step.fault.name()));
            return active;
        }
        let majority = members.len() / 2 + 1;
        match step.fault {
            Fault::KillLeader => {
                let l = self.leader_or_random();
                self.kill(&[l], &mut active);
            }
            Fault::KillRandom => {
                let i = members[self.rng.below(members.len() as u64) as usize];
                self.kill(&[i], &mut active);
            }
            Fault::KillMajority => {
                let l = self.leader_or_random();
                let victims = self.pick(l, majority);
                self.kill(&victims, &mut active);
            }
            Fault::KillMajorityPauseRest => {
                let l = self.leader_or_random();
                let victims = self.pick(l, majority);
                let rest: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|i| !victims.contains(i))
                    .collect();
                // The rest first, so that none of them hears of the
                // majority's death and campaigns before it stops.
                self.pause(&rest, until_ns, &mut active);
                self.kill(&victims, &mut active);
                active.elect_before_resume = true;
            }
            Fault::PauseLeader => {
                let l = self.leader_or_random();
                self.pause(&[l], until_ns, &mut active);
            }
            Fault::Partition(shape) => self.partition(shape, &mut active),
            Fault::RemoveNode => self.remove(),
            Fault::AddNode => self.add(),
        }
        active
    }

    fn partition(&mut self, shape: Shape, active: &mut Active) {
        let Some(net) = self.net else {
            self.notes
                .push("a partition was scheduled without namespaces: skipped".into());
            return;
        };
        let mut members = self.members();
        let leader = self.leader_or_random();
        let both = |a: &[usize], b: &[usize]| -> Vec<(usize, usize)> {
            let mut cut = Vec::new();
            for &x in a {
                for &y in b {
                    cut.push((x, y));
                    cut.push((y, x));
                }
            }
            cut
        };
        let others: Vec<usize> = members.iter().copied().filter(|&i| i != leader).collect();
        let (name, cut) = match shape {
            Shape::IsolateLeader => ("isolate the leader", both(&[leader], &others)),
            Shape::OneWay => (
                "one-way: nobody hears the leader",
                others.iter().map(|&o| (leader, o)).collect(),
            ),
            Shape::MajorityMinority | Shape::Bridge => {
                // A drawn order of the members.
                for k in (1..members.len()).rev() {
                    let j = self.rng.below(k as u64 + 1) as usize;
                    members.swap(k, j);
                }
                if shape == Shape::MajorityMinority {
                    let (minority, majority) = members.split_at(members.len() / 2);
                    ("majority/minority", both(minority, majority))
                } else {
                    // Halves around one bridge node that hears both.
                    let half = (members.len() - 1) / 2;
                    let (a, rest) = members.split_at(half);
                    ("bridge", both(a, &rest[1..]))
                }
            }
        };
        match net.partition(&cut) {
            Ok(()) => {
                let cut = cut.iter().map(|&(a, b)| (self.id(a), self.id(b))).collect();
                self.event(TimelineEvent::Partitioned {
                    shape: name.into(),
                    cut,
                });
                active.partitioned = true;
            }
            Err(e) => self.notes.push(format!("partition failed: {e}")),
        }
    }

    /// Removes a drawn member through `DELETE /admin/nodes/{id}` and, once
    /// the leader's configuration no longer holds it, stops it for good.
    fn remove(&mut self) {
        let members = self.members();
        if members.len() <= 3 {
            self.notes
                .push("remove-node skipped: the cluster keeps 3 members".into());
            return;
        }
        let victim = members[self.rng.below(members.len() as u64) as usize];
        let id = self.id(victim);
        let auth = format!("Bearer {}", self.admin_token);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut accepted = false;
        while !accepted && Instant::now() < deadline {
            let Some(l) = self.cluster.wait_leader(Duration::from_secs(2)) else {
                continue;
            };
            let r = client::http::request(
                &self.cluster.nodes[l].http,
                "DELETE",
                &format!("/admin/nodes/{id}"),
                &[("Authorization", &auth)],
                b"",
                Duration::from_secs(2),
            );
            match r {
                Ok(r) if r.status == 202 || r.status == 200 => accepted = true,
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        let gone = accepted
            && wait(deadline, || {
                self.cluster.leader().is_some_and(|l| {
                    self.cluster
                        .status(l, Duration::from_millis(500))
                        .is_some_and(|s| {
                            let voters = s["voters"].as_array().cloned().unwrap_or_default();
                            !voters.iter().any(|v| v.as_u64() == Some(id))
                                && s["applied"] == s["commit"]
                        })
                })
            });
        if !gone {
            self.notes.push(format!(
                "remove-node: node {id} was not removed within 10 s"
            ));
            return;
        }
        self.cluster.kill(victim);
        self.cluster.nodes[victim].removed = true;
        let http = self.cluster.nodes[victim].http.clone();
        self.shared
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|e| *e != http);
        self.event(TimelineEvent::Removed {
            node: id,
            reason: format!("removed from the cluster (DELETE /admin/nodes/{id})"),
        });
    }

    /// Starts a node with a fresh id and `--join` through the leader, and
    /// waits (up to 10 s) for it to be promoted to voter; clients use it
    /// from then on.
    fn add(&mut self) {
        let Some((http, peer, netns)) = self.spare.pop_front() else {
            self.notes
                .push("add-node skipped: no spare address left".into());
            return;
        };
        let Some(l) = self.cluster.wait_leader(Duration::from_secs(5)) else {
            self.notes
                .push("add-node skipped: no leader to join through".into());
            self.spare.push_front((http, peer, netns));
            return;
        };
        let via = self.cluster.nodes[l].http.clone();
        let i = self.cluster.add(http.clone(), peer, netns);
        let id = self.id(i);
        if let Err(e) = self.cluster.spawn_join(i, &via) {
            self.notes
                .push(format!("add-node: node {id} did not start: {e}"));
            self.cluster.nodes[i].removed = true;
            return;
        }
        self.event(TimelineEvent::Joined { node: id });
        let voter = wait(Instant::now() + Duration::from_secs(10), || {
            self.cluster.leader().is_some_and(|l| {
                self.cluster
                    .status(l, Duration::from_millis(500))
                    .and_then(|s| s["voters"].as_array().cloned())
                    .is_some_and(|v| v.iter().any(|x| x.as_u64() == Some(id)))
            })
        });
        if !voter {
            self.notes.push(format!(
                "add-node: node {id} was not a voter within 10 s of its start"
            ));
        }
        self.shared
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(http);
    }

    /// Undoes `active`: heals the network, restarts the killed, resumes the
    /// paused (after the restarted elected a leader, when asked).
    pub fn heal(&mut self, active: Active) {
        if active.partitioned
            && let Some(net) = self.net
        {
            match net.heal() {
                Ok(()) => self.event(TimelineEvent::Healed),
                Err(e) => self.notes.push(format!("heal failed: {e}")),
            }
        }
        for &i in &active.killed {
            match self.cluster.spawn(i, false) {
                Ok(()) => {
                    let node = self.id(i);
                    self.event(TimelineEvent::Restarted { node });
                }
                Err(e) => self.notes.push(format!("restart failed: {e}")),
            }
        }
        if active.elect_before_resume {
            // Paused nodes are not candidates of `leader()`: this waits for
            // one of the restarted, then gives it time to commit its term's
            // first entry, which truncates what only the paused hold.
            let _ = self.cluster.wait_leader(Duration::from_secs(10));
            self.observe_leader();
            std::thread::sleep(Duration::from_millis(500));
        }
        for &i in &active.paused {
            if self.cluster.signal_pause(i, false) {
                let node = self.id(i);
                self.event(TimelineEvent::Resumed { node });
            }
        }
    }

    /// Heals whatever may still be wrong: every partition, every pause,
    /// every member not running is restarted.
    pub fn heal_all(&mut self) {
        if let Some(net) = self.net {
            let _ = net.heal();
        }
        for i in self.members() {
            if self.cluster.nodes[i].paused && self.cluster.signal_pause(i, false) {
                let node = self.id(i);
                self.event(TimelineEvent::Resumed { node });
            }
            if !self.cluster.nodes[i].running() && self.cluster.spawn(i, false).is_ok() {
                let node = self.id(i);
                self.event(TimelineEvent::Restarted { node });
            }
        }
    }

    /// Records the end of the workload.
    pub fn end_of_workload(&mut self) {
        self.event(TimelineEvent::EndOfWorkload);
    }
}

/// Polls `done` every 100 ms until it holds or `deadline` passes.
pub fn wait(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
