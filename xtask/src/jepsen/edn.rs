//! The history as Jepsen EDN (what Knossos and Elle read), with the
//! nemesis's events as Jepsen writes them: `:process :nemesis` `:info`
//! maps, in time order among the clients' operations.
//!
//! The clients' maps come from `check::export::jepsen_edn` (their `:index`
//! is their record's position in the raftlab history); the nemesis's maps
//! carry no `:index`, so that the clients' indices stay those of the JSON
//! lines history.

use sim::timeline::{Timed, TimelineEvent};

/// The nemesis event as an EDN map.
fn nemesis_map(t: &Timed) -> String {
    let (f, value) = match &t.event {
        TimelineEvent::Crashed { node } => ("kill", format!("\"n{node}\"")),
        TimelineEvent::Restarted { node } => ("start", format!("\"n{node}\"")),
        TimelineEvent::Paused { node, .. } => ("pause", format!("\"n{node}\"")),
        TimelineEvent::Resumed { node } => ("resume", format!("\"n{node}\"")),
        TimelineEvent::Halted { node, .. } => ("halt", format!("\"n{node}\"")),
        TimelineEvent::Joined { node } => ("join", format!("\"n{node}\"")),
        TimelineEvent::Removed { node, .. } => ("remove", format!("\"n{node}\"")),
        TimelineEvent::Partitioned { shape, cut } => {
            let pairs: Vec<String> = cut
                .iter()
                .map(|(a, b)| format!("[\"n{a}\" \"n{b}\"]"))
                .collect();
            (
                "start-partition",
                format!("{{:shape \"{shape}\", :cut [{}]}}", pairs.join(" ")),
            )
        }
        TimelineEvent::Healed => ("stop-partition", "nil".into()),
        TimelineEvent::Leader { node, term } => {
            ("leader", format!("{{:node \"n{node}\", :term {term}}}"))
        }
        TimelineEvent::SteppedDown { node, term } => (
            "stepped-down",
            format!("{{:node \"n{node}\", :term {term}}}"),
        ),
        TimelineEvent::EndOfWorkload => ("end-of-workload", "nil".into()),
        TimelineEvent::ClockDrift { node, ppm } => {
            ("clock-drift", format!("{{:node \"n{node}\", :ppm {ppm}}}"))
        }
        TimelineEvent::ClockJumped { node, ms } => {
            ("clock-jump", format!("{{:node \"n{node}\", :ms {ms}}}"))
        }
        TimelineEvent::Membership { config } => ("membership", format!("{config:?}")),
        TimelineEvent::Scripted { action } => ("scripted", format!("{action:?}")),
    };
    format!(
        "{{:type :info, :f :{f}, :value {value}, :process :nemesis, :time {}}}",
        t.time_ns
    )
}

/// The `:time` of an exported line.
fn time_of(line: &str) -> u64 {
    line.split(":time ")
        .nth(1)
        .map(|r| {
            r.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// The clients' history and the nemesis's events as one EDN history.
pub fn history_edn(history: &check::History, nemesis: &[Timed]) -> String {
    let clients = check::export::jepsen_edn(history);
    let mut events = nemesis.iter().peekable();
    let mut out = String::with_capacity(clients.len() + nemesis.len() * 80);
    for line in clients.lines() {
        let t = time_of(line);
        while let Some(e) = events.next_if(|e| e.time_ns <= t) {
            out.push_str(&nemesis_map(e));
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    for e in events {
        out.push_str(&nemesis_map(e));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use check::{Call, History, Record, Ret};

    #[test]
    fn nemesis_events_are_interleaved_by_time_and_the_result_reads_back() {
        let mut h = History::new();
        h.push(Record::Invoke {
            id: 1,
            process: 1,
            time_ns: 10,
            call: Call::Put {
                key: "k".into(),
                value: "v".into(),
            },
        });
        h.push(Record::Ok {
            id: 1,
            process: 1,
            time_ns: 30,
            ret: Ret::Done,
        });
        let nemesis = [
            Timed {
                time_ns: 20,
                event: TimelineEvent::Crashed { node: 2 },
            },
            Timed {
                time_ns: 40,
                event: TimelineEvent::Restarted { node: 2 },
            },
        ];
        let edn = history_edn(&h, &nemesis);
        let lines: Vec<&str> = edn.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains(":f :kill") && lines[1].contains(":process :nemesis"));
        assert!(lines[3].contains(":f :start"));
        // The repository's own EDN reader skips the nemesis and reads the rest.
        let back = check::import::jepsen_edn(edn.as_bytes(), check::import::CasFail::CompareFailed)
            .expect("reads back");
        assert_eq!(back.history.records.len(), 2);
        assert_eq!(back.nemesis_events, 2);
    }
}
