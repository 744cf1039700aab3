//! Three real `raftlab-node` processes on loopback: forwarding, linearizable
//! reads, CAS, exactly-once retries, a kill -9 of the leader, and the killed
//! node's catch-up (by snapshot: the survivors compact while it is down).

mod common;

use client::Client;
use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TIMINGS: &[&str] = &["--snapshot-every", "50", "--snapshot-keep", "10"];

#[test]
fn three_nodes_serve_through_any_node_and_survive_a_leader_kill() {
    let mut cluster = Cluster::start(3, TIMINGS);
    cluster.wait_leader(Duration::from_secs(20));
    let ends = cluster.endpoints();

    // Writes through every node (followers forward), read back through every node.
    for (i, end) in ends.iter().enumerate() {
        let r = req(
            end,
            "PUT",
            &format!("/kv/k{i}"),
            &format!(r#"{{"value":"v{i}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("x-raft-index").is_some() && r.header("x-raft-term").is_some());
    }
    for end in &ends {
        for i in 0..ends.len() {
            let r = req(end, "GET", &format!("/kv/k{i}"), "");
            assert_eq!(json(&r)["value"], format!("v{i}"), "read at {end}");
        }
    }
    let r = req(&ends[0], "GET", "/kv/absent", "");
    assert_eq!(
        (r.status, json(&r)["definite"].as_bool()),
        (404, Some(true))
    );

    // Compare-and-swap, through a follower or not.
    let cas = |end: &str, body: &str| req(end, "POST", "/kv/c/cas", body).status;
    assert_eq!(cas(&ends[1], r#"{"expected":null,"value":"1"}"#), 200);
    assert_eq!(cas(&ends[2], r#"{"expected":null,"value":"x"}"#), 409);
    assert_eq!(cas(&ends[0], r#"{"expected":"1","value":"2"}"#), 200);
    assert_eq!(json(&req(&ends[2], "GET", "/kv/c", ""))["value"], "2");

    // Exactly-once: the same session and sequence number, sent twice to
    // two nodes, appends once.
    for end in [&ends[0], &ends[1]] {
        let r = client::http::request(
            end,
            "POST",
            "/kv/once/append",
            &[("X-Client-Id", "42"), ("X-Client-Seq", "1")],
            br#"{"value":"x"}"#,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(json(&req(&ends[2], "GET", "/kv/once", ""))["value"], "x");

    // A first throughput figure: one client, sequential writes.
    let mut acked = BTreeMap::new();
    let mut c = Client::new(ends.clone());
    let n = 300;
    let started = Instant::now();
    for i in 0..n {
        let (k, v) = (format!("t{i}"), format!("{i}"));
        c.put(&k, &v).unwrap();
        acked.insert(k, v);
    }
    let took = started.elapsed();
    println!(
        "throughput: {n} sequential writes in {took:?} ({:.0} writes/s, one client)",
        n as f64 / took.as_secs_f64()
    );

    // kill -9 the leader; a new leader serves within the bound.
    let leader = cluster.wait_leader(Duration::from_secs(10));
    cluster.kill(leader);
    let killed_at = Instant::now();
    let mut c = Client::new(cluster.endpoints());
    c.op_timeout = Duration::from_secs(20);
    c.put("after-failover", "yes").unwrap();
    let failover = killed_at.elapsed();
    println!("failover: a write succeeded {failover:?} after kill -9 of the leader");
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    acked.insert("after-failover".into(), "yes".into());

    // More writes while it is down: the survivors snapshot and compact past
    // what the killed node has.
    for i in 0..150 {
        let (k, v) = (format!("d{i}"), format!("{i}"));
        c.put(&k, &v).unwrap();
        acked.insert(k, v);
    }

    // The killed node restarts (no --bootstrap) and catches up.
    cluster.spawn(leader, false);
    let target = status(c.endpoint()).unwrap()["commit"].as_u64().unwrap();
    let restarted = cluster.nodes[leader].http.clone();
    eventually(
        Duration::from_secs(20),
        "the restarted node catches up",
        || status(&restarted).is_some_and(|s| s["applied"].as_u64().unwrap_or(0) >= target),
    );
    assert!(
        metric(&restarted, r#"raft_snapshots_total{kind="installed"}"#) >= 1.0,
        "it caught up by snapshot"
    );

    // Nothing acknowledged is lost, read through every node.
    let mut c = Client::new(cluster.endpoints());
    for (k, v) in &acked {
        assert_eq!(c.get(k).unwrap().as_deref(), Some(v.as_str()), "key {k}");
    }
    let r = req(&restarted, "GET", "/kv/after-failover", "");
    assert_eq!(json(&r)["value"], "yes");
}

#[test]
fn failover_time_over_ten_leader_kills() {
    let mut cluster = Cluster::start(3, &[]);
    let mut times = Vec::new();
    let mut c = Client::new(cluster.endpoints());
    c.op_timeout = Duration::from_secs(20);
    let mut acked = Vec::new();
    for round in 0..10 {
        let leader = cluster.wait_leader(Duration::from_secs(20));
        cluster.kill(leader);
        let killed_at = Instant::now();
        let key = format!("round{round}");
        c.put(&key, "done").unwrap();
        times.push(killed_at.elapsed());
        acked.push(key);
        cluster.spawn(leader, false);
        let target = status(c.endpoint()).map_or(0, |s| s["commit"].as_u64().unwrap());
        let restarted = cluster.nodes[leader].http.clone();
        eventually(
            Duration::from_secs(20),
            "the restarted node catches up",
            || status(&restarted).is_some_and(|s| s["applied"].as_u64().unwrap_or(0) >= target),
        );
    }
    times.sort();
    let median = times[times.len() / 2];
    let max = *times.last().unwrap();
    println!("failover over 10 leader kills: median {median:?}, max {max:?}, all {times:?}");
    assert!(max < Duration::from_secs(5), "max failover {max:?}");
    for key in acked {
        assert_eq!(c.get(&key).unwrap().as_deref(), Some("done"));
    }
}
