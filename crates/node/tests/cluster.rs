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

    // A batch: all or nothing, through a follower.
    let batch = |end: &str, body: &str| req(end, "POST", "/batch", body);
    let r = batch(
        &ends[1],
        r#"{"ops":[{"op":"put","key":"b1","value":"x"},{"op":"cas","key":"c","expected":"2","value":"3"},{"op":"append","key":"b2","value":"y"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&req(&ends[2], "GET", "/kv/c", ""))["value"], "3");
    assert_eq!(json(&req(&ends[0], "GET", "/kv/b2", ""))["value"], "y");
    let r = batch(
        &ends[2],
        r#"{"ops":[{"op":"delete","key":"b1"},{"op":"cas","key":"c","expected":"2","value":"4"}]}"#,
    );
    assert_eq!((r.status, json(&r)["failed_op"].as_u64()), (409, Some(1)));
    assert_eq!(
        json(&req(&ends[0], "GET", "/kv/b1", ""))["value"],
        "x",
        "the aborted batch deleted nothing"
    );
    let r = batch(
        &ends[0],
        r#"{"ops":[{"op":"put","key":"d","value":"1"},{"op":"put","key":"d","value":"2"}]}"#,
    );
    assert_eq!(r.status, 400, "a key twice: {}", r.text());
    assert_eq!(batch(&ends[0], r#"{"ops":[]}"#).status, 400);
    // The same through crates/client.
    let mut c = Client::new(ends.clone());
    let cas = |expected: &str| client::BatchWrite::Cas {
        key: "c".into(),
        expected: Some(expected.into()),
        value: "5".into(),
    };
    let put = client::BatchWrite::Put {
        key: "b3".into(),
        value: "z".into(),
    };
    assert_eq!(c.batch(&[put.clone(), cas("wrong")]).unwrap(), Some(1));
    assert_eq!(c.get("b3").unwrap(), None);
    assert_eq!(c.batch(&[put, cas("3")]).unwrap(), None);
    assert_eq!(c.get("b3").unwrap().as_deref(), Some("z"));
    assert_eq!(req(&ends[0], "GET", "/kv/d", "").status, 404);

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

#[test]
fn admin_transfer_removal_and_read_levels() {
    let mut cluster = Cluster::start(3, &["--lease-read-ticks", "4"]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let ends = cluster.endpoints();
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    assert_eq!(
        req(&ends[leader], "PUT", "/kv/k", r#"{"value":"v"}"#).status,
        200
    );

    // Read levels: lease (enabled here) and stale, which says how long
    // since the node heard from its leader.
    let r = req(&ends[follower], "GET", "/kv/k?consistency=lease", "");
    assert_eq!(json(&r)["value"], "v");
    eventually(
        Duration::from_secs(10),
        "the follower applied the write",
        || {
            let r = req(&ends[follower], "GET", "/kv/k?consistency=stale", "");
            r.status == 200 && json(&r)["value"] == "v"
        },
    );
    let r = req(&ends[follower], "GET", "/kv/k?consistency=stale", "");
    let since: u64 = r.header("x-raft-last-contact-ms").unwrap().parse().unwrap();
    assert!(since < 5_000, "heard from the leader {since} ms ago");
    assert_eq!(
        req(&ends[0], "GET", "/kv/k?consistency=bogus", "").status,
        400
    );
    eventually(Duration::from_secs(10), "every node is ready", || {
        ends.iter()
            .all(|e| req(e, "GET", "/ready", "").status == 200)
    });

    // Leadership transfer, asked of a follower (forwarded to the leader).
    let to = cluster.nodes[other].id;
    let r = req(
        &ends[follower],
        "POST",
        "/admin/transfer-leader",
        &format!(r#"{{"to":{to}}}"#),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    eventually(Duration::from_secs(10), "the target leads", || {
        status(&ends[other]).is_some_and(|s| s["role"] == "leader")
    });

    // Remove the old leader; the two left keep serving.
    let old = cluster.nodes[leader].id;
    let r = req(&ends[other], "DELETE", &format!("/admin/nodes/{old}"), "");
    assert_eq!(r.status, 202, "{}", r.text());
    eventually(Duration::from_secs(10), "the removal is in force", || {
        status(&ends[other]).is_some_and(|s| s["voters"].as_array().is_some_and(|v| v.len() == 2))
    });
    cluster.kill(leader);
    let mut c = Client::new([ends[follower].clone(), ends[other].clone()]);
    c.put("after-removal", "ok").unwrap();
    assert_eq!(c.get("k").unwrap().as_deref(), Some("v"));
}

#[test]
fn admin_endpoints_need_the_token_when_one_is_set() {
    let cluster = Cluster::start(1, &["--admin-token", "s3cret"]);
    cluster.wait_leader(Duration::from_secs(20));
    let http = cluster.nodes[0].http.clone();
    assert_eq!(req(&http, "DELETE", "/admin/nodes/5", "").status, 401);
    let r = client::http::request(
        &http,
        "DELETE",
        "/admin/nodes/5",
        &[("Authorization", "Bearer s3cret")],
        b"",
        Duration::from_secs(10),
    )
    .unwrap();
    // Authorized; the replica refuses removing a node that is no member.
    assert_eq!(r.status, 409, "{}", r.text());
}

#[test]
fn a_fourth_node_joins_catches_up_by_snapshot_and_the_old_leader_is_removed() {
    let mut cluster = Cluster::start(3, TIMINGS);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let ends = cluster.endpoints();
    let mut c = Client::new(ends.clone());
    for i in 0..120 {
        c.put(&format!("k{i}"), &format!("v{i}")).unwrap();
    }
    // An operator's snapshot on every member: the log the fourth node
    // needs from the start is gone, so it can only catch up by snapshot.
    for end in &ends {
        let r = req(end, "POST", "/admin/snapshot", "");
        assert!(r.status == 200 || r.status == 409, "{}", r.text());
    }
    eventually(
        Duration::from_secs(10),
        "the leader's log is compacted",
        || status(&ends[leader]).is_some_and(|s| s["snapshot_index"].as_u64() > Some(100)),
    );

    // The new node joins through a follower (forwarded to the leader).
    let via = ends[(leader + 1) % 3].clone();
    let new = cluster.join(&via);
    let new_http = cluster.nodes[new].http.clone();
    let new_id = cluster.nodes[new].id;
    eventually(
        Duration::from_secs(30),
        "the new node is promoted to voter everywhere",
        || {
            ends.iter().chain([&new_http]).all(|e| {
                status(e).is_some_and(|s| {
                    s["voters"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|id| id == new_id))
                })
            })
        },
    );
    eventually(Duration::from_secs(20), "the new node is ready", || {
        client::http::request(&new_http, "GET", "/ready", &[], b"", Duration::from_secs(5))
            .is_ok_and(|r| r.status == 200)
    });
    assert!(
        metric(&new_http, r#"raft_snapshots_total{kind="installed"}"#) >= 1.0,
        "it caught up by snapshot"
    );
    let r = req(&new_http, "GET", "/kv/k7?consistency=stale", "");
    assert_eq!(
        json(&r)["value"],
        "v7",
        "its own state machine holds the data"
    );

    // Remove the old leader; the three left keep serving, the new node
    // among them.
    // The promotion went through joint consensus (§4.3): the node is a
    // voter as soon as the joint configuration is, but until the leader's
    // entry that leaves it commits, a new change is refused as in progress
    // (409, definite), and an operator asks again, as this does.
    let old = cluster.nodes[leader].id;
    let mut last = String::new();
    eventually(Duration::from_secs(10), "the removal is accepted", || {
        let r = req(&new_http, "DELETE", &format!("/admin/nodes/{old}"), "");
        last = r.text();
        match r.status {
            202 => true,
            409 if last.contains("ChangeInProgress") => false,
            other => panic!("removal answered {other}: {last}"),
        }
    });
    let rest: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.id != old)
        .map(|n| n.http.clone())
        .collect();
    eventually(Duration::from_secs(20), "the removal is in force", || {
        rest.iter().all(|e| {
            status(e).is_some_and(|s| {
                s["voters"]
                    .as_array()
                    .is_some_and(|v| v.len() == 3 && !v.iter().any(|id| id == old))
            })
        })
    });
    cluster.kill(leader);
    let mut c = Client::new(rest.clone());
    c.put("after", "removal").unwrap();
    for i in [0, 60, 119] {
        assert_eq!(c.get(&format!("k{i}")).unwrap(), Some(format!("v{i}")));
    }

    // The joined node restarts from its data dir alone (its member list
    // is there) and catches up.
    cluster.kill(new);
    c.put("while", "down").unwrap();
    cluster.restart_alone(new);
    eventually(
        Duration::from_secs(20),
        "the joined node catches up",
        || {
            let r = client::http::request(
                &new_http,
                "GET",
                "/kv/while?consistency=stale",
                &[],
                b"",
                Duration::from_secs(5),
            );
            r.is_ok_and(|r| r.status == 200 && json(&r)["value"] == "down")
        },
    );
}
