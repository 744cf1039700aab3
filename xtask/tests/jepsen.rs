//! `cargo xtask jepsen` as CI runs it: a short run of kill -9 and pauses
//! (and partitions where the tests run as root and namespaces work; the
//! driver says when it skips them) must pass, and a run of nodes with the
//! unsafe `unsafe_no_fsync` setting, under the schedule that exposes it,
//! must fail. Each run starts real `raftlab-node` processes (the driver
//! builds the binary) and takes about 20 s.

use std::process::Command;
use std::sync::Mutex;

/// One cluster at a time: two would compete for the machine's cores and
/// slow each other's failovers.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `cargo xtask jepsen ARGS`; (exit status, stdout + stderr, pid).
fn jepsen(args: &[&str]) -> (i32, String, u32) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("jepsen")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the xtask binary runs");
    let pid = child.id();
    let out = child.wait_with_output().expect("the run ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text, pid)
}

/// Network namespaces whose name carries `pid` (the driver's naming).
fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("rlj-{pid}-")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_short_run_of_kills_pauses_and_partitions_passes_and_cleans_up() {
    let (code, out, pid) = jepsen(&[
        "--nodes",
        "3",
        "--clients",
        "5",
        "--duration",
        "20s",
        "--seed",
        "1",
        "--nemesis",
        "kill,pause,partition",
        "--script",
        "2s+2s:kill-leader,5s+2s:pause-leader,8s+3s:partition-isolate-leader,\
         12s+2s:kill-random,15s+3s:partition-majority-minority",
    ]);
    println!("{out}");
    assert_eq!(code, 0, "the run passes");
    assert!(out.contains("linearizable ("), "the checker decided");
    assert!(
        out.contains("after the heal: served and converged"),
        "the healed cluster served and the nodes agreed"
    );
    let partitions = out.contains("network: a network namespace per node");
    if partitions {
        assert!(
            out.contains("partition-isolate-leader 1"),
            "partitions struck"
        );
    } else {
        assert!(
            out.contains("PARTITIONS OFF:"),
            "a run without namespaces says so"
        );
        println!("partitions were skipped here (see PARTITIONS OFF above)");
    }
    assert!(
        out.contains("kill-leader 1") && out.contains("pause-leader 1"),
        "kills and pauses struck"
    );
    assert!(
        namespaces_of(pid).is_empty(),
        "every namespace of the run is removed"
    );
}

#[test]
fn nodes_that_acknowledge_before_fsync_fail_the_test() {
    // A majority (the leader among them) is killed while the rest is
    // paused, so the restarted majority elects a leader from logs that
    // lost the last second of acknowledged writes: a lost write, whatever
    // the timing, as long as writes were acknowledged in that second.
    let (code, out, _) = jepsen(&[
        "--nodes",
        "3",
        "--clients",
        "5",
        "--duration",
        "10s",
        "--seed",
        "2",
        "--script",
        "4s+3s:kill-majority-pause-rest",
        "--unsafe-setting",
        "no-fsync",
    ]);
    println!("{out}");
    assert_eq!(code, 1, "the unsafe setting is caught as a violation");
    assert!(
        out.contains("NOT LINEARIZABLE") || out.contains("acknowledged write(s) lost"),
        "the output names what broke"
    );
    assert!(out.contains("why: the nodes ran with the UNSAFE setting unsafe_no_fsync"));
}
