//! Unit tests of the page's pieces that need no simulation.

use super::*;
use check::{Call, Ret};

fn tiny_history(stale: bool) -> History {
    let k = || "k".to_string();
    let mut h = History::new();
    h.push(Record::Invoke {
        id: 1,
        process: 1,
        time_ns: 10,
        call: Call::Put {
            key: k(),
            value: "a".into(),
        },
    });
    h.push(Record::Ok {
        id: 1,
        process: 1,
        time_ns: 20,
        ret: Ret::Done,
    });
    h.push(Record::Invoke {
        id: 2,
        process: 2,
        time_ns: 30,
        call: Call::Get { key: k() },
    });
    h.push(Record::Ok {
        id: 2,
        process: 2,
        time_ns: 40,
        ret: Ret::Value(if stale { None } else { Some("a".into()) }),
    });
    h
}

fn report_of(history: History) -> Report {
    let verdict = check::check_history(&history, &Budget::default()).unwrap();
    Report::for_history("tiny", history, verdict, "cargo xtask check tiny.jsonl")
}

#[test]
fn a_linearizable_history_is_a_pass_and_a_stale_read_is_not() {
    let pass = report_of(tiny_history(false));
    assert!(pass.passed());
    assert!(pass.headline().starts_with("PASS"));
    let fail = report_of(tiny_history(true));
    assert!(!fail.passed());
    assert_eq!(fail.headline(), "NOT LINEARIZABLE on key \"k\"");
}

#[test]
fn the_failing_page_explains_the_stuck_read_with_the_value_it_should_have_seen() {
    let report = report_of(tiny_history(true));
    let html = render(&report);
    let Verdict::NotLinearizable(c) = &report.verdict else {
        panic!("a stale read");
    };
    let ops = report.history.operations().unwrap();
    let checker = check::explain(&ops, c, &Budget::default());
    let reason = maud::html! { (checker.reason) }.into_string();
    assert!(html.contains(&reason), "the checker's reason: {reason}");
    assert!(html.contains("the key could hold: &quot;a&quot;"));
    assert!(html.contains("class=\"op st\""), "the stuck bar is marked");
}

#[test]
fn text_from_the_history_is_escaped() {
    let mut h = tiny_history(false);
    if let Record::Invoke { call, .. } = &mut h.records[0] {
        *call = Call::Put {
            key: "k".into(),
            value: "<script>alert(1)</script>".into(),
        };
    }
    if let Record::Ok { ret, .. } = &mut h.records[3] {
        *ret = Ret::Value(Some("<script>alert(1)</script>".into()));
    }
    let html = render(&report_of(h));
    assert!(!html.contains("<script"));
}

#[test]
fn a_malformed_history_gives_a_page_that_says_so() {
    let mut h = History::new();
    h.push(Record::Ok {
        id: 9,
        process: 1,
        time_ns: 5,
        ret: Ret::Done,
    });
    let report = Report::for_history("bad", h, Verdict::Linearizable, "x");
    let html = render(&report);
    assert!(html.contains("The history is malformed"));
}

#[test]
fn the_index_links_every_report_with_its_verdict_and_replay() {
    let fail = report_of(tiny_history(true));
    let pass = report_of(tiny_history(false));
    let entries = [
        IndexEntry::new(&fail, "seed-1.html"),
        IndexEntry::new(&pass, "seed-2.html"),
    ];
    let html = render_index("sweep", &entries);
    assert!(html.contains("href=\"seed-1.html\""));
    assert!(html.contains("href=\"seed-2.html\""));
    assert!(html.contains("NOT LINEARIZABLE on key &quot;k&quot;"));
    assert!(html.contains("cargo xtask check tiny.jsonl"));
    assert!(html.contains("1 failing"));
}

#[test]
fn a_callers_explanation_replaces_the_derived_one_and_outlines_the_minimal_set() {
    let mut report = report_of(tiny_history(true));
    let Verdict::NotLinearizable(c) = &report.verdict else {
        panic!("a stale read");
    };
    report.explanation = Some(Explanation {
        key: c.key.clone(),
        prefix: c.longest_prefix.clone(),
        stuck: c.stuck.clone(),
        state_after_prefix: Some("a".into()),
        reasons: BTreeMap::from([(2, "a reason from the checker".to_string())]),
        minimal_set: vec![1, 2],
        notes: vec!["the model could be in state \"a\"".into()],
    });
    let html = render(&report);
    assert!(html.contains("a reason from the checker"));
    assert!(html.contains("a minimal failing set (outlined): [1, 2]"));
    assert!(html.contains("class=\"op ok mn\""), "op 1 is outlined");
    assert!(html.contains("the model could be in state"));
}

/// Clock drift is labelled by node, as a rate, not an unlabelled list.
#[test]
fn clock_drift_is_labelled_by_node() {
    let v = serde_json::json!([800_000, -800_000, 0, 0, 0, 0, 50_000]);
    assert_eq!(
        crate::drift_text(&v, 3),
        "n1 +80.0%, n2 -80.0%, n3 +0.0%, n7 +5.0%"
    );
}
