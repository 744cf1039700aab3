//! `--join`: a new member asks a running cluster to add it.
//!
//! The new node sends `POST /admin/nodes` with its id and addresses to the
//! member it was given (which forwards to the leader); the leader records
//! the addresses, proposes the node as a learner (dissertation §4.2.1: new
//! servers join without a vote until they have caught up) and answers with
//! every member's addresses, so the new node knows whom to dial. The
//! leader promotes the learner once it holds the commit index (see
//! `server`'s promotion step).
//!
//! A join that finds the node already a member (a retry after a crash
//! between the leader's answer and this node's first write) is a success.

use crate::config::Config;
use crate::directory::MemberAddrs;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a join keeps asking while the cluster has no leader or is
/// unreachable.
const JOIN_PATIENCE: Duration = Duration::from_secs(30);
/// The wait between two attempts.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// Asks the cluster, through `via` (a member's HTTP address), to add this
/// node; returns the members' addresses. Retries what may pass (no leader
/// yet, a member unreachable) for `JOIN_PATIENCE` (30 s); a refusal (another
/// node has this id, a wrong token) ends it with the member's reason.
pub async fn join(config: &Config, via: &str) -> Result<BTreeMap<u64, MemberAddrs>, String> {
    let body = serde_json::json!({
        "id": config.node_id,
        "address": config.peer_addr.to_string(),
        "http": config.http_addr.to_string(),
    })
    .to_string();
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(token) = &config.admin_token {
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    let deadline = Instant::now() + JOIN_PATIENCE;
    loop {
        let (to, body, headers) = (via.to_owned(), body.clone(), headers.clone());
        let answer = tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            client::http::request(
                &to,
                "POST",
                "/admin/nodes",
                &headers,
                body.as_bytes(),
                Duration::from_secs(10),
            )
        })
        .await
        .map_err(|e| format!("the join request failed: {e}"))?;
        let why = match answer {
            Ok(r) if (200..300).contains(&r.status) => return members_of(&r.body),
            Ok(r) if r.status == 503 || r.status == 429 => {
                format!("{} answered {}: {}", via_name(via), r.status, r.text())
            }
            Ok(r) => {
                return Err(format!(
                    "{} refused the join ({}): {}",
                    via_name(via),
                    r.status,
                    r.text()
                ));
            }
            Err(e) => format!("cannot reach {}: {e}", via_name(via)),
        };
        if Instant::now() >= deadline {
            return Err(format!("could not join within {JOIN_PATIENCE:?}: {why}"));
        }
        tracing::info!("joining: {why}; trying again");
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

fn via_name(via: &str) -> String {
    format!("member {via}")
}

/// The `members` object of the leader's answer.
fn members_of(body: &[u8]) -> Result<BTreeMap<u64, MemberAddrs>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the join answer is not JSON: {e}"))?;
    let members = value
        .get("members")
        .cloned()
        .ok_or("the join answer lists no members")?;
    let members: BTreeMap<String, MemberAddrs> = serde_json::from_value(members)
        .map_err(|e| format!("the join answer's members are malformed: {e}"))?;
    members
        .into_iter()
        .map(|(id, m)| {
            id.parse()
                .map(|id| (id, m))
                .map_err(|_| format!("member id {id:?} is not a number"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_names_every_member_or_is_refused() {
        let body = br#"{"proposed_index": 9, "members": {
            "1": {"peer": "127.0.0.1:9001", "http": "127.0.0.1:8001"},
            "2": {"peer": "127.0.0.1:9002", "http": null}}}"#;
        let members = members_of(body).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[&1].http.as_deref(), Some("127.0.0.1:8001"));
        assert!(members_of(b"{}").unwrap_err().contains("no members"));
        assert!(members_of(b"nope").unwrap_err().contains("not JSON"));
    }
}
