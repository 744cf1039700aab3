//! The HTTP API (axum, JSON).
//!
//! Keys: `PUT /kv/{key}` `{"value"}`, `GET /kv/{key}` (linearizable: the
//! replica reads by ReadIndex), `DELETE /kv/{key}`, `POST /kv/{key}/cas`
//! `{"expected", "value"}`, `POST /kv/{key}/append` `{"value"}`, and
//! `POST /batch` `{"ops": [{"op": "put"|"delete"|"cas"|"append", "key",
//! "value"?, "expected"?}, ...]}`: writes on distinct keys in one log entry,
//! all or nothing. Every
//! answer from the replica carries `X-Raft-Index` (its applied index) and
//! `X-Raft-Term`. A follower forwards to the leader (`?redirect`: 307 to
//! it instead); with no leader known, 503 with `Retry-After`. Sessions:
//! `X-Client-Id` and `X-Client-Seq` (a retry with the same pair takes effect
//! once); without them a write gets a session of its own.
//!
//! Errors are `{"error", "definite"}`: definite means the request did not
//! and will not take effect. 400 bad request, 404 missing key or route, 409
//! CAS mismatch or refused session, 413 past a limit, 503 no leader, busy
//! or timed out (then indefinite for a write).

use crate::Shared;
use crate::metrics::Labels;
use crate::server::{Answer, Command, StaleAnswer};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, Request, State,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header, request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kv::{KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES, Op, Output};
use raft::{ConfChange, MembershipError, NodeId, TransferError};
use replica::{AdminAccepted, AdminOp, AdminRefused, ReplyError};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Marks a request a node forwarded, so that it is not forwarded again.
const FORWARDED: &str = "x-raftlab-forwarded";

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("HTTP server stopped: {e}");
    }
}

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    Router::new()
        .route("/kv/{key}", get(kv_get).put(kv_put).delete(kv_delete))
        .route("/kv/{key}/cas", post(kv_cas))
        .route("/kv/{key}/append", post(kv_append))
        .route("/batch", post(batch))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/admin/status", get(status))
        .route("/admin/transfer-leader", post(transfer_leader))
        .route("/admin/nodes", post(add_node))
        .route("/admin/nodes/{id}", axum::routing::delete(remove_node))
        .route("/admin/snapshot", post(snapshot))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route", true) })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(shared.clone(), track))
        .with_state(shared)
}

/// Counts every request by route and code, and times it.
async fn track(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels: Labels = vec![
        ("route".into(), route.clone()),
        ("code".into(), response.status().as_u16().to_string()),
    ];
    shared.metrics.http_requests.get_or_create(&labels).inc();
    shared
        .metrics
        .http_seconds
        .get_or_create(&vec![("route".into(), route)])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// An error answer, before it becomes a response.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// A definite error: the request did not and will not take effect.
    fn definite(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, &self.message, true)
    }
}

fn error(status: StatusCode, message: &str, definite: bool) -> Response {
    let mut r = (
        status,
        Json(json!({ "error": message, "definite": definite })),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let status = shared.status.lock().expect("not poisoned").clone();
    let leader_http = status.leader.and_then(|l| shared.http_addr_of(l));
    let mut body = serde_json::to_value(&status).expect("serializes");
    body["leader_http"] = json!(leader_http);
    Json(body).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueBody {
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    expected: Option<String>,
    value: String,
}

/// What every key and admin route receives.
struct Call {
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Bytes,
}

/// A [`Call`] before its body is read: one extractor for what every route
/// takes from the request's head (the node, the method, the address, the
/// headers, the query), so each handler names only what differs.
struct Head {
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    query: HashMap<String, String>,
}

impl Head {
    /// The call, with its body.
    fn with_body(self, body: Bytes) -> Call {
        Call {
            shared: self.shared,
            method: self.method,
            uri: self.uri,
            headers: self.headers,
            query: self.query,
            body,
        }
    }
}

impl FromRequestParts<Arc<Shared>> for Head {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<Head, Response> {
        let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, shared)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Head {
            shared: Arc::clone(shared),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            query,
        })
    }
}

async fn kv_get(Path(key): Path<String>, head: Head) -> Response {
    let shared = &head.shared;
    match head.query.get("consistency").map(String::as_str) {
        // UNSAFE (--unsafe-local-reads): what a "linearizable" read must
        // never be, so that a test can prove it notices.
        None | Some("linearizable") if shared.config.unsafe_local_reads => {
            return stale_read(shared, key).await;
        }
        None | Some("linearizable") => {}
        Some("lease") if shared.config.lease_read_ticks > 0 => {}
        Some("lease") => {
            return error(
                StatusCode::BAD_REQUEST,
                "lease reads are off on this node (--lease-read-ticks)",
                true,
            );
        }
        Some("stale") => return stale_read(shared, key).await,
        Some(level) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unknown consistency {level:?}: linearizable, lease or stale"),
                true,
            );
        }
    }
    let call = head.with_body(Bytes::new());
    run(call, Op::Get { key }).await
}

async fn kv_delete(Path(key): Path<String>, head: Head) -> Response {
    let call = head.with_body(Bytes::new());
    run(call, Op::Delete { key }).await
}

async fn kv_put(
    Path(key): Path<String>,
    head: Head,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_with_body(head, body, |b: ValueBody| Op::Put {
        key,
        value: b.value,
    })
    .await
}

async fn kv_append(
    Path(key): Path<String>,
    head: Head,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_with_body(head, body, |b: ValueBody| Op::Append {
        key,
        value: b.value,
    })
    .await
}

async fn kv_cas(
    Path(key): Path<String>,
    head: Head,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write_with_body(head, body, |b: CasBody| Op::Cas {
        key,
        expected: b.expected,
        new: b.value,
    })
    .await
}

/// One operation of a `POST /batch` body.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum BatchOp {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    Cas {
        key: String,
        expected: Option<String>,
        value: String,
    },
    Append {
        key: String,
        value: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    ops: Vec<BatchOp>,
}

/// `POST /batch`: the writes in one log entry, all or nothing (a refused
/// compare-and-swap aborts them all: 409 naming it). Refused before it
/// reaches the log if empty, past `kv::MAX_BATCH_OPS`, touching a key
/// twice (400) or past the size limits (413).
async fn batch(head: Head, body: Result<Bytes, BytesRejection>) -> Response {
    let (raw, parsed) = match read_body::<BatchBody>(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let ops = parsed
        .ops
        .into_iter()
        .map(|op| match op {
            BatchOp::Put { key, value } => Op::Put { key, value },
            BatchOp::Delete { key } => Op::Delete { key },
            BatchOp::Cas {
                key,
                expected,
                value,
            } => Op::Cas {
                key,
                expected,
                new: value,
            },
            BatchOp::Append { key, value } => Op::Append { key, value },
        })
        .collect();
    let op = Op::Batch { ops };
    match op.validate() {
        Ok(()) => {}
        Err(e @ (KvError::KeyTooLarge { .. } | KvError::ValueTooLarge { .. })) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string(), true);
        }
        Err(KvError::Malformed(why)) => return error(StatusCode::BAD_REQUEST, &why, true),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string(), true),
    }
    let call = head.with_body(raw);
    run(call, op).await
}

/// A write whose body is JSON `B`: the body read and parsed (413, 400),
/// then the op `make` builds from it run like any other.
async fn write_with_body<B: for<'de> Deserialize<'de>>(
    head: Head,
    body: Result<Bytes, BytesRejection>,
    make: impl FnOnce(B) -> Op,
) -> Response {
    let (raw, parsed) = match read_body::<B>(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let call = head.with_body(raw);
    run(call, make(parsed)).await
}

/// The body, bounded (413 past the limit) and parsed (400 if it is not the
/// JSON expected).
fn read_body<T: for<'de> Deserialize<'de>>(
    body: Result<Bytes, BytesRejection>,
) -> Result<(Bytes, T), ApiError> {
    let raw = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::definite(status, "request body too large")
        } else {
            ApiError::definite(status, rejection.body_text())
        }
    })?;
    let parsed = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::definite(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))
    })?;
    Ok((raw, parsed))
}

/// Checks the limits, asks the replica, and answers (forwarding to the
/// leader if this node is not it).
async fn run(call: Call, op: Op) -> Response {
    if op.key().len() > MAX_KEY_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("key longer than {MAX_KEY_BYTES} bytes"),
            true,
        );
    }
    let value_len = match &op {
        Op::Put { value, .. } | Op::Append { value, .. } => value.len(),
        Op::Cas { expected, new, .. } => new.len().max(expected.as_ref().map_or(0, |e| e.len())),
        _ => 0,
    };
    if value_len > MAX_VALUE_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("value longer than {MAX_VALUE_BYTES} bytes"),
            true,
        );
    }
    let session = match session(&call.headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let write = !matches!(op, Op::Get { .. });
    let (tx, rx) = oneshot::channel();
    let command = Command::Client {
        op,
        session,
        reply: tx,
    };
    if call.shared.commands.try_send(command).is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node busy", true);
    }
    let timeout = Duration::from_millis(call.shared.config.request_timeout_ms);
    let answer = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => answer,
        _ => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "timed out waiting for the answer",
                !write,
            );
        }
    };
    match answer.result {
        Err(ReplyError::NotLeader { leader: Some(l) }) => not_leader(call, l.0).await,
        Err(ReplyError::NotLeader { leader: None }) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "no leader known", true)
        }
        _ => respond(answer),
    }
}

/// The client's session from its headers: both or neither.
fn session(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let num = |name: &str| -> Result<Option<u64>, ApiError> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::definite(
                        StatusCode::BAD_REQUEST,
                        format!("{name} must be a positive integer"),
                    )
                }),
        }
    };
    match (num("x-client-id")?, num("x-client-seq")?) {
        (Some(id), Some(seq)) => Ok(Some((id, seq))),
        (None, None) => Ok(None),
        _ => Err(ApiError::definite(
            StatusCode::BAD_REQUEST,
            "X-Client-Id and X-Client-Seq go together",
        )),
    }
}

fn respond(answer: Answer) -> Response {
    let mut response = match answer.result {
        Ok(Output::Value(Some(v))) => Json(json!({ "value": v })).into_response(),
        Ok(Output::Value(None)) => error(StatusCode::NOT_FOUND, "key not found", true),
        Ok(Output::Done) | Ok(Output::Cas(true)) => Json(json!({ "ok": true })).into_response(),
        Ok(Output::Cas(false)) => error(
            StatusCode::CONFLICT,
            "compare failed: the key does not hold the expected value",
            true,
        ),
        Ok(Output::Batch { aborted_at: None }) => Json(json!({ "ok": true })).into_response(),
        Ok(Output::Batch {
            aborted_at: Some(at),
        }) => (
            StatusCode::CONFLICT,
            Json(json!({
                "error": format!(
                    "compare failed at operation {at}: the batch wrote nothing"
                ),
                "definite": true,
                "failed_op": at,
            })),
        )
            .into_response(),
        Err(e) => {
            let definite = e.is_definite();
            let status = match &e {
                ReplyError::Busy
                | ReplyError::ReadAborted
                | ReplyError::LeadershipLost
                | ReplyError::NotLeader { .. } => StatusCode::SERVICE_UNAVAILABLE,
                ReplyError::Invalid(_) => StatusCode::BAD_REQUEST,
                ReplyError::Kv(KvError::KeyTooLarge { .. } | KvError::ValueTooLarge { .. }) => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                ReplyError::Kv(KvError::Malformed(_)) => StatusCode::BAD_REQUEST,
                ReplyError::Kv(KvError::StoreFull { .. }) => StatusCode::SERVICE_UNAVAILABLE,
                ReplyError::Kv(_) | ReplyError::Superseded => StatusCode::CONFLICT,
            };
            let definite = match &e {
                ReplyError::Kv(KvError::SessionExpired { .. }) => false,
                _ => definite,
            };
            error(status, &e.to_string(), definite)
        }
    };
    let h = response.headers_mut();
    h.insert("x-raft-index", HeaderValue::from(answer.index));
    h.insert("x-raft-term", HeaderValue::from(answer.term));
    response
}

/// This node is not the leader: 307 to it with `?redirect`, else forward.
async fn not_leader(call: Call, leader: u64) -> Response {
    let Some(addr) = call.shared.http_addr_of(leader) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the leader (node {leader}) is not reachable from this node yet"),
            true,
        );
    };
    let path = call
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| call.uri.path().to_owned());
    if call.query.contains_key("redirect") {
        let mut r = error(
            StatusCode::TEMPORARY_REDIRECT,
            &format!("not the leader: node {leader} at {addr}"),
            true,
        );
        if let Ok(location) = HeaderValue::from_str(&format!("http://{addr}{path}")) {
            r.headers_mut().insert(header::LOCATION, location);
        }
        return r;
    }
    if call.headers.contains_key(FORWARDED) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "leadership is moving (a forwarded request reached a follower)",
            true,
        );
    }
    let write = call.method != Method::GET;
    let mut headers: Vec<(String, String)> = vec![
        ("Content-Type".into(), "application/json".into()),
        (FORWARDED.into(), call.shared.config.node_id.to_string()),
    ];
    for name in ["x-client-id", "x-client-seq", "authorization"] {
        if let Some(v) = call.headers.get(name).and_then(|v| v.to_str().ok()) {
            headers.push((name.into(), v.into()));
        }
    }
    let method = call.method.to_string();
    let body = call.body.to_vec();
    let timeout = Duration::from_millis(call.shared.config.request_timeout_ms);
    let forwarded = tokio::task::spawn_blocking(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        client::http::request(&addr, &method, &path, &headers, &body, timeout)
    })
    .await;
    match forwarded {
        Ok(Ok(r)) => {
            let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, r.body.clone()).into_response();
            for name in [
                "content-type",
                "x-raft-index",
                "x-raft-last-contact-ms",
                "x-raft-term",
                "retry-after",
                "location",
            ] {
                if let Some(v) = r.header(name).and_then(|v| HeaderValue::from_str(v).ok()) {
                    response.headers_mut().insert(name, v);
                }
            }
            response
        }
        Ok(Err(client::http::HttpError::Connect(e))) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot reach the leader (node {leader}): {e}"),
            true,
        ),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("no answer from the leader (node {leader})"),
            !write,
        ),
    }
}

/// `?consistency=stale`: this node's state machine as it is, with how long
/// since it last heard from its leader (`X-Raft-Last-Contact-Ms`).
async fn stale_read(shared: &Shared, key: String) -> Response {
    let (tx, rx) = oneshot::channel();
    if shared
        .commands
        .try_send(Command::StaleRead { key, reply: tx })
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node busy", true);
    }
    let Ok(StaleAnswer {
        value,
        index,
        term,
        since_leader,
    }) = rx.await
    else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node stopping", true);
    };
    let mut r = match value {
        Some(v) => Json(json!({ "value": v })).into_response(),
        None => error(StatusCode::NOT_FOUND, "key not found", true),
    };
    let h = r.headers_mut();
    h.insert("x-raft-index", HeaderValue::from(index));
    h.insert("x-raft-term", HeaderValue::from(term));
    if let Some(since) = since_leader {
        h.insert(
            "x-raft-last-contact-ms",
            HeaderValue::from(since.as_millis() as u64),
        );
    }
    r
}

/// `GET /ready`: 200 once a leader is known and this node has applied what
/// the leader had committed when this node first asked (its catch-up bar,
/// learnt from the leader's `/admin/status` and kept); 503 otherwise. A
/// load balancer sends reads to a node only once it is ready.
async fn ready(State(shared): State<Arc<Shared>>) -> Response {
    let s = shared.status.lock().expect("not poisoned").clone();
    let Some(leader) = s.leader else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no leader known", true);
    };
    let known = *shared.ready_bar.lock().expect("not poisoned");
    let bar = match known {
        Some(bar) => bar,
        None => {
            let bar = if leader == s.id {
                Some(s.commit)
            } else {
                leader_commit(&shared, leader).await
            };
            let Some(bar) = bar else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("cannot learn the leader's (node {leader}) commit index yet"),
                    true,
                );
            };
            *shared.ready_bar.lock().expect("not poisoned") = Some(bar);
            bar
        }
    };
    if s.applied < bar {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "catching up: applied {} of the {} the leader had committed",
                s.applied, bar
            ),
            true,
        );
    }
    Json(json!({ "ready": true, "leader": leader, "applied": s.applied })).into_response()
}

/// The leader's commit index, from its `/admin/status`.
async fn leader_commit(shared: &Shared, leader: u64) -> Option<u64> {
    let addr = shared.http_addr_of(leader)?;
    let answer = tokio::task::spawn_blocking(move || {
        client::http::request(
            &addr,
            "GET",
            "/admin/status",
            &[],
            b"",
            Duration::from_secs(2),
        )
    })
    .await
    .ok()?
    .ok()?;
    let status: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    status["commit"].as_u64()
}

/// Admin requests need the configured bearer token, or, with none
/// configured, a loopback client.
fn authorize(shared: &Shared, headers: &HeaderMap, remote: SocketAddr) -> Result<(), ApiError> {
    match &shared.config.admin_token {
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given == Some(token.as_str()) {
                Ok(())
            } else {
                Err(ApiError::definite(
                    StatusCode::UNAUTHORIZED,
                    "admin endpoints need Authorization: Bearer <admin token>",
                ))
            }
        }
        None if remote.ip().is_loopback() => Ok(()),
        None => Err(ApiError::definite(
            StatusCode::FORBIDDEN,
            "no admin token configured: admin endpoints answer loopback clients only",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: u64,
}

/// `POST /admin/transfer-leader` `{"to": ID}`.
async fn transfer_leader(
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    head: Head,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = authorize(&head.shared, &head.headers, remote) {
        return e.into_response();
    }
    let (raw, body) = match read_body::<TransferBody>(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let call = head.with_body(raw);
    admin(call, AdminOp::TransferLeadership(NodeId(body.to))).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNodeBody {
    id: u64,
    /// Its peer address.
    address: String,
    /// Its HTTP address (else learnt from its handshake).
    http: Option<String>,
}

/// `POST /admin/nodes` `{"id", "address", "http"?}`: adds a node as a
/// learner (dissertation §4.2.1); the leader promotes it to voter once it
/// has caught up. The answer (202) lists every member's addresses, which a
/// node started with `--join` dials. Asking again for a member at the
/// same address answers 200 (a retried join); an id already in use at
/// another address is refused (ids are never reused).
async fn add_node(
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    head: Head,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(e) = authorize(&head.shared, &head.headers, remote) {
        return e.into_response();
    }
    let (raw, body) = match read_body::<AddNodeBody>(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if body.id == 0 {
        return error(StatusCode::BAD_REQUEST, "node ids are positive", true);
    }
    let shared = Arc::clone(&head.shared);
    let Ok(peer) = body.address.parse::<SocketAddr>() else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("address {:?} is not IP:PORT", body.address),
            true,
        );
    };
    let is_member = {
        let s = shared.status.lock().expect("not poisoned");
        s.voters.contains(&body.id) || s.learners.contains(&body.id)
    };
    if is_member {
        let known = shared
            .directory
            .lock()
            .expect("not poisoned")
            .get(body.id)
            .map(|m| m.peer);
        return match known {
            Some(at) if at == peer => {
                Json(json!({ "already_member": true, "members": members_json(&shared) }))
                    .into_response()
            }
            _ => error(
                StatusCode::CONFLICT,
                &format!(
                    "node {} is already a member at another address: ids are never reused",
                    body.id
                ),
                true,
            ),
        };
    }
    // Recorded before the proposal: the leader must be able to reach the
    // learner as soon as its entry is in the log (§4.1).
    let learnt =
        shared
            .directory
            .lock()
            .expect("not poisoned")
            .learn(body.id, peer, body.http.clone());
    match learnt {
        Ok(true) => {
            let dial = Command::Dial {
                id: body.id,
                addr: peer,
            };
            if shared.commands.send(dial).await.is_err() {
                return error(StatusCode::SERVICE_UNAVAILABLE, "node stopping", true);
            }
        }
        Ok(false) => {}
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e, true),
    }
    let call = head.with_body(raw);
    admin(
        call,
        AdminOp::ChangeMembership(ConfChange::AddLearner(NodeId(body.id))),
    )
    .await
}

/// Every member's addresses, as JSON keyed by id.
fn members_json(shared: &Shared) -> serde_json::Value {
    json!(shared.directory.lock().expect("not poisoned").members())
}

/// `DELETE /admin/nodes/{id}`: removes a member (a voter through joint
/// consensus).
async fn remove_node(
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Path(id): Path<u64>,
    head: Head,
) -> Response {
    if let Err(e) = authorize(&head.shared, &head.headers, remote) {
        return e.into_response();
    }
    let call = head.with_body(Bytes::new());
    admin(
        call,
        AdminOp::ChangeMembership(ConfChange::Remove(NodeId(id))),
    )
    .await
}

/// `POST /admin/snapshot`: this node snapshots its state machine now and
/// compacts its log to it (each member compacts its own log, so this is not
/// forwarded). 200 with the snapshot's index; 409 when nothing was applied
/// since the last one.
async fn snapshot(ConnectInfo(remote): ConnectInfo<SocketAddr>, head: Head) -> Response {
    if let Err(e) = authorize(&head.shared, &head.headers, remote) {
        return e.into_response();
    }
    let call = head.with_body(Bytes::new());
    admin(call, AdminOp::Snapshot).await
}

/// Asks the replica; answers 202 when accepted, forwards when not the
/// leader, 409 when refused.
async fn admin(call: Call, op: AdminOp) -> Response {
    let (tx, rx) = oneshot::channel();
    if call
        .shared
        .commands
        .try_send(Command::Admin { op, reply: tx })
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node busy", true);
    }
    let Ok(reply) = rx.await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "node stopping", true);
    };
    let leader = match &reply.result {
        Err(AdminRefused::Membership(MembershipError::NotLeader { leader }))
        | Err(AdminRefused::Transfer(TransferError::NotLeader { leader })) => Some(*leader),
        _ => None,
    };
    match (leader, reply.result) {
        (Some(Some(l)), _) => not_leader(call, l.0).await,
        (Some(None), _) => error(StatusCode::SERVICE_UNAVAILABLE, "no leader known", true),
        (_, Ok(AdminAccepted::MembershipProposed(index))) => (
            StatusCode::ACCEPTED,
            Json(json!({
                "proposed_index": index.0,
                "members": members_json(&call.shared),
            })),
        )
            .into_response(),
        (_, Ok(AdminAccepted::TransferStarted)) => {
            (StatusCode::ACCEPTED, Json(json!({ "transfer": "started" }))).into_response()
        }
        (_, Ok(AdminAccepted::SnapshotTaken(index))) => {
            Json(json!({ "snapshot_index": index.0 })).into_response()
        }
        (_, Err(refused)) => error(StatusCode::CONFLICT, &refused.to_string(), true),
    }
}
