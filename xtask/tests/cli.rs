//! The binary as a user runs it: exit statuses of usage errors (clap's and
//! ours), and errors as one JSON object on stdout under `--json`. Only
//! commands that fail before simulating anything, so this stays fast.

use std::process::Command;

fn xtask(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the xtask binary runs");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn usage_errors_exit_64_with_a_message() {
    for args in [
        &["simulate", "--seed", "1", "--nodes", "2"][..],
        &["simulate", "--seed", "1", "--scenario", "no-such-scenario"],
        &["simulate", "--seed", "1", "--trace-node", "99"],
        &["sweep"],
        &["sweep", "--seeds", "1..=2", "--recheck", "nan"],
        &["sweep", "--seeds", "1..=2", "--jobs", "0"],
        &["sweep", "merge", "/no/such/shard.json"],
        &["simulate", "--no-such-flag"],
    ] {
        let (code, _, stderr) = xtask(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn with_json_errors_are_a_json_object_on_stdout() {
    for args in [
        &["simulate", "--seed", "1", "--nodes", "2", "--json"][..],
        &["sweep", "--seeds", "1..=2", "--jobs", "0", "--json"],
        &["sweep", "merge", "/no/such/shard.json", "--json"],
    ] {
        let (code, stdout, _) = xtask(args);
        assert_eq!(code, 64, "{args:?}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout:?}"));
        assert_eq!(v["kind"], "usage", "{args:?}");
        assert_eq!(v["exit_code"], 64, "{args:?}");
        assert!(!v["error"].as_str().unwrap_or("").is_empty(), "{args:?}");
    }
}

#[test]
fn help_exits_0_and_each_switch_describes_itself() {
    let (code, stdout, _) = xtask(&["simulate", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--clocks"), "{stdout}");
    assert!(
        !stdout.contains("A clean network and no crashes"),
        "{stdout}"
    );
    let (code, stdout, _) = xtask(&["replay", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("4 the trace hash differs"), "{stdout}");
}

/// `check --json`: a file that is missing or malformed (65), a bad flag
/// value or a bad format name (64) each come as one JSON object on stdout,
/// with the same exit status as without `--json`.
#[test]
fn check_with_json_reports_bad_files_and_usage_as_json() {
    let dir = std::env::temp_dir().join(format!("xtask-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let malformed = dir.join("bad.jsonl");
    std::fs::write(&malformed, "{\"type\":\"invoke\"}\n").unwrap();
    let empty = dir.join("empty.edn");
    std::fs::write(&empty, "; nothing\n").unwrap();
    let missing = dir.join("missing.jsonl");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/check/tests/fixtures/porcupine/kv/c10-ok.txt"
    );
    let s = |p: &std::path::Path| p.display().to_string();
    for (args, code, kind) in [
        (vec!["check", &s(&missing), "--json"], 65, "input"),
        (vec!["check", &s(&malformed), "--json"], 65, "input"),
        (vec!["check", &s(&empty), "--json"], 65, "input"),
        (
            vec!["check", fixture, "--timeout", "-1", "--json"],
            64,
            "usage",
        ),
        (
            vec!["check", fixture, "--format", "xml", "--json"],
            64,
            "usage",
        ),
        (vec!["check", "--json"], 64, "usage"),
    ] {
        let (got, stdout, stderr) = xtask(&args);
        assert_eq!(got, code, "{args:?}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout:?}"));
        assert_eq!(v["kind"], kind, "{args:?}");
        assert_eq!(v["exit_code"], code, "{args:?}");
        assert!(!v["error"].as_str().unwrap_or("").is_empty(), "{args:?}");
        // Without --json: the same status, the message on stderr only.
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let (got, stdout, stderr) = xtask(&plain);
        assert_eq!(got, code, "{plain:?}");
        assert!(stdout.trim().is_empty(), "{plain:?}: {stdout}");
        assert!(stderr.contains("error"), "{plain:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cluster` refuses bad flag values with 64 before building or starting
/// anything: a size clap rejects, ports past 65535 or below 1024, HTTP and
/// peer ports that collide, a port already taken.
#[test]
fn cluster_usage_errors_exit_64_before_starting_anything() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let base = (taken.local_addr().unwrap().port() - 1).to_string();
    for args in [
        &["cluster", "--nodes", "0"][..],
        &["cluster", "--http-base", "65535"],
        &["cluster", "--nodes", "9", "--peer-base", "65530"],
        &["cluster", "--http-base", "0"],
        &["cluster", "--http-base", "9000", "--peer-base", "9001"],
        &[
            "cluster",
            "--nodes",
            "1",
            "--http-base",
            &base,
            "--peer-base",
            "1100",
        ],
        &["cluster", "--dir", "/proc/raftlab-no-such-dir"],
    ] {
        let (code, _, stderr) = xtask(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("building"), "{args:?} built: {stderr}");
    }
}

/// `bench` refuses bad flag values with 64 before measuring anything (they
/// were internal errors, 70), and `bench cluster --json` reports them as a
/// JSON object on stdout.
#[test]
fn bench_usage_errors_exit_64_and_bench_cluster_json_reports_them() {
    for args in [
        &["bench", "cluster", "--connections", "0"][..],
        &["bench", "cluster", "--keys", "0"],
        &["bench", "cluster", "--duration", "0s"],
        &["bench", "check", "--case", "no-such-case"],
    ] {
        let (code, _, stderr) = xtask(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
    let (code, stdout, _) = xtask(&["bench", "cluster", "--keys", "0", "--json"]);
    assert_eq!(code, 64);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["kind"], "usage");
    assert!(v["error"].as_str().unwrap().contains("--keys"), "{v}");
}
