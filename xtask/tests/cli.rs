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
