//! What a client or a peer can send wrong: each gets a clear error, is
//! counted in /metrics, and the node keeps serving. Also: a node started
//! the wrong way refuses, saying what to do.

mod common;

use common::*;
use node::wire::{Hello, HelloReply, encode, read_frame};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[test]
fn bad_input_is_refused_counted_and_the_node_keeps_serving() {
    let cluster = Cluster::start(1, &[]);
    cluster.wait_leader(Duration::from_secs(20));
    let http = cluster.nodes[0].http.clone();
    let peer = cluster.nodes[0].peer.clone();

    let r = req(&http, "PUT", "/kv/k", "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(json(&r)["definite"], true, "{}", r.text());
    assert_eq!(req(&http, "PUT", "/kv/k", r#"{"value":5}"#).status, 400);
    let big = format!(r#"{{"value":"{}"}}"#, "x".repeat(300 * 1024));
    assert_eq!(req(&http, "PUT", "/kv/k", &big).status, 413);
    let long_value = format!(r#"{{"value":"{}"}}"#, "x".repeat(70 * 1024));
    assert_eq!(req(&http, "PUT", "/kv/k", &long_value).status, 413);
    let long_key = "k".repeat(300);
    let r = req(&http, "PUT", &format!("/kv/{long_key}"), r#"{"value":"v"}"#);
    assert_eq!(r.status, 413);
    assert_eq!(req(&http, "GET", "/nope", "").status, 404);
    let r = client::http::request(
        &http,
        "PUT",
        "/kv/k",
        &[("X-Client-Id", "7")],
        br#"{"value":"v"}"#,
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 400, "a client id without a sequence number");

    // A peer that speaks garbage (HTTP to the peer port).
    let mut s = TcpStream::connect(&peer).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf); // closed on us
    // A truncated frame: a length, then the connection ends.
    let mut s = TcpStream::connect(&peer).unwrap();
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
    drop(s);
    // Another cluster's node.
    let mut s = TcpStream::connect(&peer).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = Hello {
        cluster_id: 99,
        from: 2,
        to: 1,
        http_addr: "127.0.0.1:1".into(),
        peer_addr: "127.0.0.1:2".into(),
    };
    s.write_all(&encode(&hello)).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let answer: HelloReply = rt.block_on(read_frame(&mut &reply[..])).unwrap();
    assert!(
        matches!(&answer, HelloReply::Refused(why) if why.contains("cluster 99")),
        "{answer:?}"
    );

    eventually(Duration::from_secs(10), "the refusals are counted", || {
        metric(
            &http,
            r#"peer_connections_refused_total{reason="bad_handshake"}"#,
        ) >= 2.0
            && metric(
                &http,
                r#"peer_connections_refused_total{reason="wrong_cluster"}"#,
            ) >= 1.0
    });
    assert!(
        metric(
            &http,
            r#"http_requests_total{route="/kv/{key}",code="400"}"#
        ) >= 3.0
    );
    assert!(
        metric(
            &http,
            r#"http_requests_total{route="/kv/{key}",code="413"}"#
        ) >= 3.0
    );
    assert!(
        metric(
            &http,
            r#"http_requests_total{route="unmatched",code="404"}"#
        ) >= 1.0
    );
    assert!(cluster.log(0).contains("peer connection refused"));

    // Still serving.
    assert_eq!(
        req(&http, "PUT", "/kv/k", r#"{"value":"fine"}"#).status,
        200
    );
    assert_eq!(json(&req(&http, "GET", "/kv/k", ""))["value"], "fine");
    assert_eq!(req(&http, "GET", "/health", "").status, 200);
}

#[test]
fn a_wrong_start_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_raftlab-node"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (code, err) = run(&["--node-id", "1", "--data-dir", data]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("holds no log") && err.contains("--bootstrap"),
        "{err}"
    );

    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/wal-0"), b"x").unwrap();
    let (code, err) = run(&["--node-id", "1", "--data-dir", data, "--bootstrap"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("without --bootstrap"), "{err}");

    let (code, err) = run(&[
        "--node-id",
        "1",
        "--data-dir",
        data,
        "--join",
        "127.0.0.1:1",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("without --join"), "{err}");

    let help = Command::new(env!("CARGO_BIN_EXE_raftlab-node"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--node-id",
        "--cluster-id",
        "--data-dir",
        "--http-addr",
        "--peer-addr",
        "--peers",
        "--bootstrap",
        "--tick-ms",
        "--election-ticks",
        "--snapshot-every",
    ] {
        assert!(help.contains(flag), "--help explains {flag}");
    }
}
