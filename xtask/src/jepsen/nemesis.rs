//! The nemesis schedule: which faults strike when, and for how long, drawn
//! from the run's seed (or given as a script) and printed before the run.
//!
//! A schedule is text, one step per comma: `AT+LASTS:FAULT`, e.g.
//! `2000ms+1500ms:kill-leader,5200ms+3000ms:partition-majority-minority`.
//! The printed schedule of a run, given back with `--script`, strikes the
//! same faults at the same times; the run is still not deterministic (real
//! time, real processes: which node leads when a fault strikes is not).
//! Faults never overlap: each is healed at `AT+LASTS`, before the next.

use super::rng::SplitMix;

/// The fault families `--nemesis` switches on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Families {
    /// kill -9 and restart.
    pub kill: bool,
    /// SIGSTOP and SIGCONT.
    pub pause: bool,
    /// Network partitions (namespaces).
    pub partition: bool,
    /// Membership changes through the admin API.
    pub membership: bool,
}

impl Families {
    /// Parses `kill,pause,partition,membership`, `all` or `none`.
    pub fn parse(s: &str) -> Result<Families, String> {
        let mut f = Families::default();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "all" => {
                    f = Families {
                        kill: true,
                        pause: true,
                        partition: true,
                        membership: true,
                    }
                }
                "none" => {}
                "kill" => f.kill = true,
                "pause" => f.pause = true,
                "partition" => f.partition = true,
                "membership" => f.membership = true,
                other => {
                    return Err(format!(
                        "unknown nemesis {other:?}: kill, pause, partition, membership, all or none"
                    ));
                }
            }
        }
        Ok(f)
    }

    /// The families on, as text.
    pub fn names(&self) -> String {
        let on: Vec<&str> = [
            (self.kill, "kill"),
            (self.pause, "pause"),
            (self.partition, "partition"),
            (self.membership, "membership"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        if on.is_empty() {
            "none".into()
        } else {
            on.join(",")
        }
    }
}

/// The shape of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The leader cut off from every other node.
    IsolateLeader,
    /// A random minority cut off from the majority.
    MajorityMinority,
    /// Two halves that do not hear each other, and one node that hears both.
    Bridge,
    /// Nobody hears the leader, the leader hears everybody.
    OneWay,
}

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of the leader; restarted at the heal.
    KillLeader,
    /// kill -9 of a random node; restarted at the heal.
    KillRandom,
    /// kill -9 of a majority (the leader among them); restarted at the heal.
    KillMajority,
    /// kill -9 of a majority (the leader among them) and SIGSTOP of the
    /// rest; at the heal the killed restart and elect a leader among
    /// themselves before the rest resume: what exposes writes acknowledged
    /// before they were durable.
    KillMajorityPauseRest,
    /// SIGSTOP of the leader; SIGCONT at the heal.
    PauseLeader,
    /// A partition; healed at the heal.
    Partition(Shape),
    /// A member removed through the admin API (for good).
    RemoveNode,
    /// A new node (a fresh id) joins through the admin API (`--join`).
    AddNode,
}

/// Every fault, with its name in the schedule's text.
const NAMES: &[(Fault, &str)] = &[
    (Fault::KillLeader, "kill-leader"),
    (Fault::KillRandom, "kill-random"),
    (Fault::KillMajority, "kill-majority"),
    (Fault::KillMajorityPauseRest, "kill-majority-pause-rest"),
    (Fault::PauseLeader, "pause-leader"),
    (
        Fault::Partition(Shape::IsolateLeader),
        "partition-isolate-leader",
    ),
    (
        Fault::Partition(Shape::MajorityMinority),
        "partition-majority-minority",
    ),
    (Fault::Partition(Shape::Bridge), "partition-bridge"),
    (Fault::Partition(Shape::OneWay), "partition-one-way"),
    (Fault::RemoveNode, "remove-node"),
    (Fault::AddNode, "add-node"),
];

impl Fault {
    /// The fault's name in a schedule.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n)
    }

    /// The fault named `name`.
    pub fn parse(name: &str) -> Option<Fault> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    /// Whether the fault needs network namespaces.
    pub fn needs_netns(self) -> bool {
        matches!(self, Fault::Partition(_))
    }
}

/// One step: `fault` at `at_ms` after the start, healed `lasts_ms` later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// When it strikes, in ms after the clients start.
    pub at_ms: u64,
    /// How long until it is healed.
    pub lasts_ms: u64,
    /// What strikes.
    pub fault: Fault,
}

/// A schedule as text (what `--script` reads).
pub fn to_text(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| format!("{}ms+{}ms:{}", s.at_ms, s.lasts_ms, s.fault.name()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a schedule's text; steps must not overlap.
pub fn parse(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad =
            || format!("bad step {part:?}: expected AT+LASTS:FAULT, e.g. 2s+1500ms:kill-leader");
        let (when, fault) = part.split_once(':').ok_or_else(bad)?;
        let (at, lasts) = when.split_once('+').ok_or_else(bad)?;
        let ms = |s: &str| crate::cli::parse_duration(s).map(|ns| ns / 1_000_000);
        let fault = Fault::parse(fault.trim()).ok_or_else(|| {
            let names: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
            format!("unknown fault {fault:?}; one of: {}", names.join(", "))
        })?;
        steps.push(Step {
            at_ms: ms(at)?,
            lasts_ms: ms(lasts)?,
            fault,
        });
    }
    for pair in steps.windows(2) {
        if pair[1].at_ms < pair[0].at_ms + pair[0].lasts_ms {
            return Err(format!(
                "steps overlap: {} starts before {} is healed",
                pair[1].fault.name(),
                pair[0].fault.name()
            ));
        }
    }
    Ok(steps)
}

/// Nodes a run may add beyond its founders (each a fresh id, and, with
/// namespaces, a namespace made at the start).
pub const MAX_ADDED: usize = 4;

/// Draws a schedule for a run of `duration_ms` over `nodes` nodes from
/// `seed`: faults of the families on, 1 to 4 s each, 1 to 3 s apart, the
/// first after 2 s, the last healed at least 1 s before the end.
/// Membership (one draw in five) removes a member while the cluster has
/// as many as it started with, and adds one otherwise; it never goes below
/// 3 members nor beyond [`MAX_ADDED`] additions.
pub fn draw(seed: u64, duration_ms: u64, nodes: usize, families: Families) -> Vec<Step> {
    let mut rng = SplitMix::new(seed ^ 0x6e65_6d65_7369_7321);
    let mut pool: Vec<Fault> = Vec::new();
    if families.kill {
        pool.extend([Fault::KillLeader, Fault::KillRandom, Fault::KillMajority]);
    }
    if families.pause {
        pool.extend([Fault::PauseLeader, Fault::PauseLeader]);
    }
    if families.partition {
        pool.extend([
            Fault::Partition(Shape::IsolateLeader),
            Fault::Partition(Shape::MajorityMinority),
            Fault::Partition(Shape::Bridge),
            Fault::Partition(Shape::OneWay),
        ]);
    }
    let mut members = nodes;
    let mut added = 0;
    let mut steps = Vec::new();
    let mut t = 2_000;
    loop {
        let lasts = rng.millis(1_000, 4_000);
        if t + lasts + 1_000 > duration_ms {
            break;
        }
        let membership = families.membership && (pool.is_empty() || rng.below(5) == 0);
        let fault = if membership && members >= nodes && members > 3 {
            members -= 1;
            Fault::RemoveNode
        } else if membership && added < MAX_ADDED {
            members += 1;
            added += 1;
            Fault::AddNode
        } else if pool.is_empty() {
            break;
        } else {
            pool[rng.below(pool.len() as u64) as usize]
        };
        steps.push(Step {
            at_ms: t,
            lasts_ms: lasts,
            fault,
        });
        t += lasts + rng.millis(1_000, 3_000);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawn_schedule_is_a_function_of_the_seed_and_reads_back_from_its_text() {
        let all = Families::parse("all").unwrap();
        let a = draw(7, 60_000, 5, all);
        assert_eq!(a, draw(7, 60_000, 5, all));
        assert_ne!(a, draw(8, 60_000, 5, all));
        assert!(!a.is_empty());
        assert_eq!(parse(&to_text(&a)).unwrap(), a);
        assert!(a.iter().all(|s| s.at_ms + s.lasts_ms + 1_000 <= 60_000));
        assert!(a.iter().filter(|s| s.fault == Fault::AddNode).count() <= MAX_ADDED);
        assert!(
            a.iter()
                .any(|s| matches!(s.fault, Fault::RemoveNode | Fault::AddNode)),
            "membership is drawn in a minute"
        );
    }

    #[test]
    fn families_and_scripts_refuse_bad_input() {
        assert!(Families::parse("kill,bogus").is_err());
        let kp = Families::parse("kill,pause").unwrap();
        assert!(kp.kill && kp.pause && !kp.partition && !kp.membership);
        assert!(
            draw(3, 30_000, 5, kp).iter().all(|s| !s.fault.needs_netns()
                && !matches!(s.fault, Fault::RemoveNode | Fault::AddNode))
        );
        assert!(parse("2s+1s:kill-leader,2500ms+1s:pause-leader").is_err());
        assert!(parse("2s:kill-leader").is_err());
        assert!(parse("2s+1s:explode").is_err());
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
