//! Whole pages: a passing simulated run, the same run with a stale read
//! planted in its history, and a 10,000-operation history. Each page must
//! parse, reference nothing outside itself, name its replay command and every
//! failing operation; where Debian's chromium is installed, it must render to
//! a PNG that is not blank and that shows the failure above the fold.

use check::{Budget, Call, History, OpId, Record, Ret, Verdict};
use report::{Report, render};
use scraper::{Html, Selector};
use sim::queue::MS;
use sim::timeline::{Timed, TimelineEvent};
use sim::{SimConfig, Tracer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A 10,000-operation report must stay under this size.
const MAX_REPORT_BYTES: usize = 5 * 1024 * 1024;

fn simulated(seed: u64) -> sim::Outcome {
    let config = SimConfig {
        duration: 5_000 * MS,
        ..SimConfig::new(seed)
    };
    sim::run(&config, Tracer::silent(), &Budget::default()).expect("valid configuration")
}

fn passing_report() -> Report {
    let outcome = simulated(7);
    assert!(outcome.summary.ok, "{:?}", outcome.summary.violations);
    Report::from_outcome(&outcome)
}

/// The same run with one read changed to a value that was overwritten before
/// the read began, checked again: the report of a stale read.
fn failing_report() -> Report {
    let outcome = simulated(7);
    let mut report = Report::from_outcome(&outcome);
    check::mutate::plant_stale_read(&mut report.history).expect("a read after two puts");
    let verdict = check::check_history(&report.history, &Budget::default()).unwrap();
    assert!(
        matches!(verdict, Verdict::NotLinearizable(_)),
        "{verdict:?}"
    );
    report.violations = vec!["a stale read planted by the test".into()];
    report.violation_kinds = vec!["not linearizable".into()];
    report.verdict = verdict;
    report
}

/// 10,000 operations by 10 clients over 5 keys, overlapping, each taking
/// effect at its midpoint (so the history is linearizable), some of unknown
/// outcome and some failed; then one late read made stale. With a timeline of
/// crashes, partitions and leaders, like a long simulated run.
fn big_report() -> Report {
    long_report(1_000)
}

/// Like [`big_report`], with `per_client` operations per client.
fn long_report(per_client: u64) -> Report {
    const CLIENTS: u64 = 10;
    const KEYS: u64 = 5;
    struct Planned {
        id: OpId,
        process: u64,
        call: Call,
        invoke: u64,
        complete: u64,
        kind: u8, // 0 ok, 1 fail, 2 info
    }
    let mut planned = Vec::new();
    for p in 0..CLIENTS {
        for j in 0..per_client {
            let id = p * per_client + j + 1;
            let key = format!("k{}", (j * 7 + p) % KEYS);
            let call = match (j + p) % 4 {
                0 | 2 => Call::Get { key },
                1 => Call::Put {
                    key,
                    value: format!("v{id}"),
                },
                _ => Call::Append {
                    key,
                    value: format!("a{id}"),
                },
            };
            let invoke = j * MS + p * 37_000;
            let complete = invoke + 100_000 + ((j * (p + 1)) % 7) * 100_000;
            let kind = if id.is_multiple_of(97) {
                2
            } else if id.is_multiple_of(89) {
                1
            } else {
                0
            };
            planned.push(Planned {
                id,
                process: p + 1,
                call,
                invoke,
                complete,
                kind,
            });
        }
    }
    // Results: apply in midpoint order; failed operations take no effect.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].invoke + planned[i].complete, planned[i].id));
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut results: BTreeMap<OpId, Ret> = BTreeMap::new();
    for i in order {
        let op = &planned[i];
        if op.kind == 1 {
            continue;
        }
        let v = state.entry(op.call.key().to_string()).or_default();
        let ret = match &op.call {
            Call::Get { .. } => Ret::Value(v.clone()),
            Call::Put { value, .. } => {
                *v = Some(value.clone());
                Ret::Done
            }
            Call::Append { value, .. } => {
                v.get_or_insert_with(String::new).push_str(value);
                Ret::Done
            }
            _ => unreachable!("only gets, puts and appends are planned"),
        };
        results.insert(op.id, ret);
    }
    let mut timed: Vec<(u64, Record)> = Vec::new();
    for op in &planned {
        timed.push((
            op.invoke,
            Record::Invoke {
                id: op.id,
                process: op.process,
                time_ns: op.invoke,
                call: op.call.clone(),
            },
        ));
        let completion = match op.kind {
            0 => Record::Ok {
                id: op.id,
                process: op.process,
                time_ns: op.complete,
                ret: results[&op.id].clone(),
            },
            1 => Record::Fail {
                id: op.id,
                process: op.process,
                time_ns: op.complete,
                error: "not leader".into(),
            },
            _ => Record::Info {
                id: op.id,
                process: op.process,
                time_ns: op.complete,
                reason: "timed out".into(),
            },
        };
        timed.push((op.complete, completion));
    }
    timed.sort_by_key(|(t, r)| (*t, r.id()));
    let mut history = History::new();
    for (_, r) in timed {
        history.push(r);
    }
    // A late read of k0 sees the value of its very first put: stale.
    let first_put = planned
        .iter()
        .filter(|o| o.kind == 0 && matches!(&o.call, Call::Put { key, .. } if key == "k0"))
        .min_by_key(|o| o.complete)
        .map(|o| match &o.call {
            Call::Put { value, .. } => value.clone(),
            _ => unreachable!(),
        })
        .unwrap();
    let late_read = planned
        .iter()
        .filter(|o| o.kind == 0 && o.invoke > per_client * 9 / 10 * MS)
        .find(|o| matches!(&o.call, Call::Get { key } if key == "k0"))
        .map(|o| o.id)
        .unwrap();
    for r in &mut history.records {
        if let Record::Ok { id, ret, .. } = r
            && *id == late_read
        {
            *ret = Ret::Value(Some(first_put.clone()));
        }
    }
    let verdict = check::check_history(&history, &Budget::default()).unwrap();
    assert!(
        matches!(&verdict, Verdict::NotLinearizable(c) if c.key == "k0"),
        "{verdict:?}"
    );
    let mut report = Report::for_history(
        "10k operations",
        history,
        verdict,
        "cargo xtask check big.jsonl",
    );
    report.nodes = 5;
    let at = |ms: u64, event| Timed {
        time_ns: ms * MS,
        event,
    };
    let mut timeline = Vec::new();
    for i in 0..20u64 {
        let node = i % 5 + 1;
        timeline.push(at(i * 50, TimelineEvent::Leader { node, term: i + 1 }));
        timeline.push(at(
            i * 50 + 20,
            TimelineEvent::Crashed {
                node: (node % 5) + 1,
            },
        ));
        timeline.push(at(
            i * 50 + 30,
            TimelineEvent::Restarted {
                node: (node % 5) + 1,
            },
        ));
        timeline.push(at(
            i * 50 + 35,
            TimelineEvent::Partitioned {
                shape: "isolate".into(),
                cut: vec![(node, 1), (1, node)],
            },
        ));
        timeline.push(at(i * 50 + 45, TimelineEvent::Healed));
        timeline.push(at(
            i * 50 + 49,
            TimelineEvent::SteppedDown { node, term: i + 1 },
        ));
    }
    timeline.push(at(per_client, TimelineEvent::EndOfWorkload));
    report.timeline = timeline;
    report
}

fn stuck_ids(report: &Report) -> Vec<OpId> {
    match &report.verdict {
        Verdict::NotLinearizable(c) => c.stuck.clone(),
        _ => Vec::new(),
    }
}

/// Parses the page and checks what every page must have.
fn check_page(report: &Report, html: &str) {
    let doc = Html::parse_document(html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    // Structure: the verdict banner, the replay command, charts.
    let replay: Vec<String> = doc
        .select(&sel("#replay"))
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(replay, vec![report.replay.clone()]);
    assert_eq!(doc.select(&sel("#verdict h1")).count(), 1);
    assert!(
        doc.select(&sel("svg")).count() >= 3,
        "charts are inline SVG"
    );
    // Nothing outside the file: no scripts, stylesheets, frames or images,
    // and every link is to a fragment of the page.
    for tag in ["script", "link", "iframe", "img", "object", "embed"] {
        assert_eq!(doc.select(&sel(tag)).count(), 0, "a <{tag}> element");
    }
    for element in doc.select(&sel("*")) {
        for (name, value) in element.value().attrs() {
            let name = name.to_ascii_lowercase();
            if name == "src" || name.ends_with("href") {
                assert!(
                    value.starts_with('#'),
                    "{name}={value:?} points outside the page"
                );
            }
            if name == "style" || name == "fill" {
                assert!(
                    !value.contains("url(") || value.contains("url(#"),
                    "{value}"
                );
            }
        }
    }
    for style in doc.select(&sel("style")) {
        let css: String = style.text().collect();
        assert!(!css.contains("@import"));
        assert!(
            !css.contains("url(") || !css.contains("url(http"),
            "external url in CSS"
        );
    }
    // Every failing operation is drawn, marked, and named in the explanation.
    let why: String = doc.select(&sel("#why")).flat_map(|e| e.text()).collect();
    for id in stuck_ids(report) {
        assert!(why.contains(&format!("op {id}:")), "op {id} not explained");
        let marked = doc.select(&sel("rect.st title")).any(|t| {
            t.text()
                .collect::<String>()
                .starts_with(&format!("op {id} ·"))
        });
        assert!(marked, "op {id} is not drawn as stuck");
    }
}

#[test]
fn a_passing_report_parses_and_is_self_contained() {
    let report = passing_report();
    let html = render(&report);
    check_page(&report, &html);
    assert!(html.contains("PASS"));
    assert!(html.contains("cargo xtask simulate --seed 7"));
}

#[test]
fn a_failing_report_names_the_replay_and_every_failing_operation() {
    let report = failing_report();
    assert!(!stuck_ids(&report).is_empty());
    let html = render(&report);
    check_page(&report, &html);
    assert!(html.contains("NOT LINEARIZABLE"));
    assert!(
        html.contains(r#"<span class="kind">not linearizable</span>"#),
        "each violation is tagged with the rule it broke"
    );
}

#[test]
fn a_ten_thousand_operation_report_stays_under_five_megabytes() {
    let report = big_report();
    let ops = report.history.operations().unwrap().len();
    assert_eq!(ops, 10_000);
    let html = render(&report);
    println!("10,000-operation report: {} bytes", html.len());
    assert!(
        html.len() < MAX_REPORT_BYTES,
        "{} bytes is over the limit",
        html.len()
    );
    check_page(&report, &html);
}

#[test]
fn a_longer_history_draws_a_bounded_part_of_each_key_and_says_so() {
    let report = long_report(3_000);
    let html = render(&report);
    println!("30,000-operation report: {} bytes", html.len());
    assert!(html.len() < MAX_REPORT_BYTES, "{} bytes", html.len());
    assert!(html.contains("the history file has them all"));
    check_page(&report, &html);
}

/// The browser: `$RAFTLAB_CHROMIUM`, else Debian's `/usr/bin/chromium`
/// (which `.ci/ensure-chromium` installs in CI).
fn chromium() -> PathBuf {
    std::env::var_os("RAFTLAB_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Renders `html` headless at 1280×900 and returns the screenshot's path, or
/// `None` (with a message) where chromium is not installed.
fn screenshot(name: &str, html: &str) -> Option<PathBuf> {
    let browser = chromium();
    if !browser.exists() {
        println!(
            "SKIPPED: {} is not installed, so {name} was not rendered \
             (bash .ci/ensure-chromium installs it as root on Debian)",
            browser.display()
        );
        return None;
    }
    let dir = std::env::temp_dir().join("raftlab-report-shots");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join(format!("{name}.html"));
    let png = dir.join(format!("{name}.png"));
    std::fs::write(&page, html).unwrap();
    let _ = std::fs::remove_file(&png);
    let profile = dir.join(format!("profile-{name}"));
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,900")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish rendering {name} in 120s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(png.exists(), "chromium wrote no screenshot of {name}");
    println!("screenshot of {name}: {}", png.display());
    Some(png)
}

/// The screenshot's pixels as RGB triples.
fn pixels(png: &Path) -> Vec<[u8; 3]> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect()
}

fn assert_not_blank(px: &[[u8; 3]]) {
    let non_white = px.iter().filter(|p| **p != [255, 255, 255]).count();
    assert!(
        non_white * 50 > px.len(),
        "only {non_white} of {} pixels are not white",
        px.len()
    );
}

/// Whether some pixel is close to `colour`.
fn shows(px: &[[u8; 3]], colour: [u8; 3]) -> bool {
    px.iter()
        .any(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= 6))
}

#[test]
fn reports_render_in_headless_chromium_with_the_failure_above_the_fold() {
    let passing = render(&passing_report());
    let Some(png) = screenshot("passing", &passing) else {
        return;
    };
    let px = pixels(&png);
    assert_not_blank(&px);
    assert!(
        shows(&px, [0xe3, 0xf4, 0xe1]),
        "the green verdict banner is visible"
    );

    let failing = render(&failing_report());
    let png = screenshot("failing", &failing).unwrap();
    let px = pixels(&png);
    assert_not_blank(&px);
    assert!(
        shows(&px, [0xfd, 0xe4, 0xe4]),
        "the red verdict banner is visible"
    );
    assert!(
        shows(&px, [0xff, 0x9d, 0x9a]),
        "a stuck operation's bar is visible without scrolling"
    );

    let big = render(&big_report());
    let png = screenshot("ten-thousand", &big).unwrap();
    let px = pixels(&png);
    assert_not_blank(&px);
    assert!(shows(&px, [0xff, 0x9d, 0x9a]));
}

/// Nodes that churn added get a lane of their own, and a liveness failure is
/// shown with the violations, marked as such.
#[test]
fn a_report_draws_every_node_that_took_part_and_names_liveness_failures() {
    let config = SimConfig {
        duration: 20_000 * MS,
        swarm: false,
        ..SimConfig::new(7)
    };
    let outcome = sim::run(&config, Tracer::silent(), &Budget::default()).unwrap();
    assert!(
        outcome.summary.stats.membership.nodes_added > 0,
        "churn added nodes"
    );
    let report = Report::from_outcome(&outcome);
    assert!(report.nodes > config.nodes as u64, "{} lanes", report.nodes);
    let page = render(&report);
    let last = format!("node {}<", report.nodes);
    assert!(page.contains(&last), "a lane for {last}");

    let stuck = SimConfig {
        duration: 4_000 * MS,
        faults: false,
        script: (1..=3)
            .map(|node| sim::ScriptedFault::at(2_000, sim::Action::CrashForGood { node }))
            .collect(),
        ..SimConfig::new(1)
    };
    let outcome = sim::run(&stuck, Tracer::silent(), &Budget::default()).unwrap();
    assert_eq!(outcome.summary.exit_code(), 3);
    let report = Report::from_outcome(&outcome);
    assert!(report.violations.iter().any(|v| v.starts_with("liveness:")));
    assert!(render(&report).contains("liveness:"));
}

/// The failing report of a simulated run names, for each operation that
/// cannot be linearized, the nodes that led while it ran and the exact
/// `--trace-node` command for each, and where the history is; bars number
/// operations by id (as the text does), the linearization place second.
#[test]
fn a_failing_report_gives_the_trace_node_commands_and_the_history_path() {
    let mut report = failing_report();
    report.history_path = Some("histories/runs/seed-7.jsonl".into());
    // The planted stale read was not really served by anyone: without who
    // served it, the report lists the leaders while it ran.
    report.served.clear();
    let html = render(&report);
    let doc = Html::parse_document(&html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    let history: String = doc
        .select(&sel("#history"))
        .flat_map(|e| e.text())
        .collect();
    assert_eq!(history, "histories/runs/seed-7.jsonl");
    let trace: String = doc.select(&sel("#trace")).flat_map(|e| e.text()).collect();
    assert!(trace.contains("led"), "{trace}");
    let command = format!("{} --trace-node ", report.replay);
    assert!(html.contains(&command), "no trace command in the page");
    for id in stuck_ids(&report) {
        assert!(html.contains(&format!(">#{id}")), "op {id} unlabelled");
    }
}

/// The expected-violation scenario's report says, in plain text (no
/// hovering), which node served the stale read, how (a lease read), under
/// what lease and clock drift, and gives the command that traces that node.
#[test]
fn a_stale_lease_read_report_names_the_node_its_lease_and_its_clock() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios/clock-skew-lease-violation.toml");
    let scenario = sim::scenario::Scenario::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let config = scenario.config("clock-skew-lease-violation", 1).unwrap();
    let outcome = sim::run(&config, Tracer::silent(), &Budget::default()).unwrap();
    let Verdict::NotLinearizable(c) = &outcome.verdict else {
        panic!(
            "the scenario's stale read was not caught: {:?}",
            outcome.verdict
        );
    };
    let stuck = c.stuck[0];
    let served = &outcome.served[&stuck];
    assert_eq!(served.how, sim::served::ServedHow::AtOnce, "{served:?}");
    let report = Report::from_outcome(&outcome);
    let html = render(&report);
    let doc = Html::parse_document(&html);
    let text: String = doc
        .select(&Selector::parse("p.served").unwrap())
        .flat_map(|e| e.text())
        .collect();
    for needle in [
        format!("op {stuck} was answered by n{}", served.node),
        "a lease read".to_string(),
        "Lease reads were on".to_string(),
        "clock drifted -80.00%".to_string(),
        "9.00×".to_string(),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in {text:?}");
    }
    let command = format!("{} --trace-node {}", report.replay, served.node);
    let commands: Vec<String> = doc
        .select(&Selector::parse("code.replay").unwrap())
        .map(|e| e.text().collect())
        .collect();
    assert!(commands.contains(&command), "{commands:?}");
    // The scripted clock change is on the fault timeline, labelled on the
    // leader's lane, and each scripted fault is marked.
    let marks: Vec<String> = doc
        .select(&Selector::parse("text.marklabel").unwrap())
        .map(|e| e.text().collect())
        .collect();
    assert!(marks.iter().any(|m| m == "clock -80.0%"), "{marks:?}");
    assert!(
        html.contains("scripted IsolateLeader"),
        "no scripted marker"
    );
    // The step-through ends at the stale read.
    let stuck_row: String = doc
        .select(&Selector::parse("#step-stuck td.op").unwrap())
        .flat_map(|e| e.text())
        .collect();
    assert_eq!(stuck_row, format!("#{stuck}"));
    if let Some(png) = screenshot("lease-violation", &html) {
        let px = pixels(&png);
        assert_not_blank(&px);
        assert!(shows(&px, [0xfd, 0xe4, 0xe4]), "the red verdict banner");
        // Visible without hovering or scrolling: the paragraph naming the
        // node, its lease and its clock, and the command tracing that node,
        // painted in colours of their own, show in the first 1280×900.
        // (Tooltips are never painted, so a painted element is one a reader
        // sees as is.)
        const SERVED: [u8; 3] = [0x00, 0xfe, 0x01];
        const TRACE: [u8; 3] = [0xfe, 0x00, 0xfd];
        let marked = html.replacen(
            "</style>",
            "p.served{background:#00fe01!important}             code.trace{background:#fe00fd!important}</style>",
            1,
        );
        let png = screenshot("lease-violation-marked", &marked).unwrap();
        let px = pixels(&png);
        let painted = |c: [u8; 3]| px.iter().filter(|p| **p == c).count();
        println!(
            "above the fold: served paragraph {} px, trace command {} px",
            painted(SERVED),
            painted(TRACE)
        );
        assert!(
            painted(SERVED) > 5_000,
            "the served paragraph is not on screen"
        );
        assert!(
            painted(TRACE) > 1_000,
            "the --trace-node command is not on screen"
        );
    }
}

/// The value of `key` after each operation of `order`, replayed on a plain
/// sequential key-value model written here (independently of the report's).
/// A batch's writes share its id, so operations are looked up on `key` only.
fn replayed_states(ops: &[check::Operation], key: &str, order: &[OpId]) -> Vec<Option<String>> {
    let by_id: BTreeMap<OpId, &check::Operation> = ops
        .iter()
        .filter(|o| o.call.key() == key)
        .map(|o| (o.id, o))
        .collect();
    let mut value: Option<String> = None;
    order
        .iter()
        .map(|id| {
            match &by_id[id].call {
                Call::Put { value: v, .. } => value = Some(v.clone()),
                Call::Delete { .. } => value = None,
                Call::Append { value: v, .. } => {
                    value = Some(value.take().unwrap_or_default() + v);
                }
                Call::Cas { expected, new, .. } if *expected == value => {
                    value = Some(new.clone());
                }
                _ => {}
            }
            value.clone()
        })
        .collect()
}

/// Porcupine-style step-through: the failing report lists the longest
/// linearizable prefix in order, one row per operation (op id first, its
/// place Ln second) with the key's value after it, each row linking to the
/// next, and ends at the operation that cannot be placed, with why.
#[test]
fn a_failing_report_steps_through_the_longest_prefix_with_the_value_after_each_step() {
    let report = failing_report();
    let Verdict::NotLinearizable(c) = &report.verdict else {
        unreachable!("failing_report asserts it")
    };
    assert!(!c.longest_prefix.is_empty());
    let ops = check::project_batches(&report.history.operations().unwrap()).into_owned();
    let states = replayed_states(&ops, &c.key, &c.longest_prefix);
    let html = render(&report);
    let doc = Html::parse_document(&html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    let cells = |row: scraper::ElementRef| -> Vec<String> {
        row.select(&sel("td"))
            .map(|td| td.text().collect::<String>())
            .collect()
    };
    let rows: Vec<scraper::ElementRef> = doc.select(&sel("#steps tbody tr[id]")).collect();
    let listed = c.longest_prefix.len().min(report::steps::MAX_LISTED_STEPS);
    let skip = c.longest_prefix.len() - listed;
    assert_eq!(rows.len(), listed + 1, "every listed step and the failure");
    for (i, row) in rows[..listed].iter().enumerate() {
        let place = skip + i + 1;
        let id = c.longest_prefix[place - 1];
        assert_eq!(row.value().id(), Some(format!("step-{place}").as_str()));
        let cells = cells(*row);
        assert_eq!(cells[1], format!("#{id}"), "the op id leads");
        assert_eq!(cells[2], format!("L{place}"), "the place is second");
        let shown = report::steps::state_cell(&states[place - 1]);
        assert_eq!(cells[6], shown, "the value after op {id}");
        let next = if i + 1 < listed {
            format!("#step-{}", place + 1)
        } else {
            "#step-stuck".to_string()
        };
        let links: Vec<&str> = row
            .select(&sel("td.nav a"))
            .filter_map(|a| a.value().attr("href"))
            .collect();
        assert!(links.contains(&next.as_str()), "{links:?}");
    }
    let last = rows[listed];
    assert_eq!(last.value().id(), Some("step-stuck"));
    let cells = cells(last);
    assert_eq!(cells[1], format!("#{}", c.stuck[0]));
    assert!(cells[6].starts_with("cannot be placed: "), "{cells:?}");
    // The stepping needs no script: the current row is the :target one.
    assert!(html.contains("table.steps tr:target"));
    // The failing bar links to the step it could not follow.
    assert!(
        doc.select(&sel(r##"a[href="#step-stuck"] rect.st"##))
            .next()
            .is_some(),
        "the red bar links to the step-through"
    );
}

/// Membership drawn truthfully: a node churn added is drawn only from when
/// it joined (its lane's bar starts after the axis's start), and a node churn
/// removed is drawn grey and labelled "removed", not red and "halted".
#[test]
fn a_churn_report_draws_nodes_from_when_they_joined_and_removal_apart_from_failure() {
    // The first seed whose churn both added a node and retired one (which
    // seed does moves whenever a schedule changes: it was 7).
    let (config, outcome) = (1..=40)
        .map(|seed| {
            let config = SimConfig {
                duration: 20_000 * MS,
                swarm: false,
                ..SimConfig::new(seed)
            };
            let outcome = sim::run(&config, Tracer::silent(), &Budget::default()).unwrap();
            (config, outcome)
        })
        .find(|(_, outcome)| {
            let m = &outcome.summary.stats.membership;
            m.nodes_added > 0 && m.retired > 0
        })
        .expect("churn added and retired a node in one of seeds 1..=40");
    let joined: Vec<u64> = outcome
        .timeline
        .iter()
        .filter_map(|t| match t.event {
            TimelineEvent::Joined { node } => Some(node),
            _ => None,
        })
        .collect();
    let removed: Vec<u64> = outcome
        .timeline
        .iter()
        .filter_map(|t| match t.event {
            TimelineEvent::Removed { node, .. } => Some(node),
            _ => None,
        })
        .collect();
    assert!(!joined.is_empty() && !removed.is_empty());
    let report = Report::from_outcome(&outcome);
    let html = render(&report);
    let doc = Html::parse_document(&html);
    let sel = |s: &str| Selector::parse(s).unwrap();
    let chart = doc
        .select(&sel(r#"svg[aria-label="fault timeline"]"#))
        .next()
        .expect("a fault timeline");
    let titles = |class: &str| -> Vec<(f64, String)> {
        chart
            .select(&sel(&format!("rect.{class}")))
            .map(|r| {
                let x: f64 = r.value().attr("x").unwrap().parse().unwrap();
                let title: String = r.select(&sel("title")).flat_map(|t| t.text()).collect();
                (x, title)
            })
            .collect()
    };
    let up = titles("up");
    for n in &joined {
        let (x, title) = up
            .iter()
            .find(|(_, t)| t.starts_with(&format!("node {n} ")))
            .unwrap_or_else(|| panic!("no lane for node {n}"));
        assert!(title.contains("joined at"), "{title}");
        assert!(*x > report::svg::LABEL_W, "node {n} drawn from t=0");
        // Nor is it drawn cut off by a partition before it existed.
        for (cut_x, cut) in titles("cut") {
            if cut.starts_with(&format!("node {n}:")) {
                assert!(cut_x >= *x, "node {n} cut before it joined: {cut}");
            }
        }
    }
    let founders = up
        .iter()
        .filter(|(x, _)| *x == report::svg::LABEL_W)
        .count();
    assert_eq!(founders, config.nodes, "founding members from t=0");
    let removals = titles("removed");
    for n in &removed {
        assert!(
            removals
                .iter()
                .any(|(_, t)| t.starts_with(&format!("node {n} removed from the cluster"))),
            "node {n}: {removals:?}"
        );
    }
    for (_, title) in titles("down") {
        assert!(
            !title.contains("removed"),
            "a removal drawn as a failure: {title}"
        );
    }
    let labels: Vec<String> = chart
        .select(&sel("text.inbarrm"))
        .map(|t| t.text().collect())
        .collect();
    assert!(labels.iter().any(|l| l == "removed"), "{labels:?}");
    assert!(html.contains("svg rect.removed{"), "its own style");
}
