//! The server's security controls, one test per control: per-address limits, the atomic
//! lockout keyed by address, logout, disabling and password resets ending sessions, the idle
//! timeout, the audit of refused credentials with the client address, the server's own
//! request ids, and the connection-level limits (slowloris, idle keep-alive, connection cap).
//! Database-backed controls run on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod server_common;

use std::time::Duration;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::protocol::*;
use ambulance_epr::server::{ServerConfig, admin};
use server_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

both_backends!(
    async: one_address_is_limited_before_any_database_work,
    a_flood_of_bad_tokens_is_limited_and_cannot_fill_the_audit,
    the_lockout_cannot_be_raced_and_locks_only_the_address_that_failed,
    logout_disable_and_reset_end_sessions_at_once,
    an_idle_session_is_refused,
    refused_credentials_are_audited_with_the_client_address,
    list_users_and_devices_show_what_ops_need,
);

/// Another client, as a TLS proxy on this host would name it.
fn from(srv: &TestServer, path: &str, client: &str) -> reqwest::RequestBuilder {
    srv.http
        .post(srv.url(path))
        .header("x-forwarded-for", client)
}

/// One login attempt from this test's own address.
async fn attempt_login(srv: &TestServer, username: &str, password: &str) -> reqwest::Response {
    srv.http
        .post(srv.url("/auth/login"))
        .json(&login_body(username, password))
        .send()
        .await
        .unwrap()
}

fn login_body(username: &str, password: &str) -> LoginRequest {
    LoginRequest {
        username: username.into(),
        password: password.into(),
    }
}

async fn audit(srv: &TestServer) -> Vec<ambulance_epr::server::storage::AuditEntry> {
    srv.storage.audit_entries_after(0, 10_000).await.unwrap()
}

async fn one_address_is_limited_before_any_database_work(backend: Backend) {
    let srv = start_on_with(
        backend,
        ServerConfig {
            auth_attempts_per_minute: 3,
            auth_attempts_burst: 3,
            ..test_config()
        },
    )
    .await;
    let before = audit(&srv).await.len();
    for _ in 0..3 {
        let r = attempt_login(&srv, "nobody", "wrong").await;
        expect_error(r, 401, "invalid_credentials").await;
    }
    let r = attempt_login(&srv, "nobody", "wrong").await;
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body = expect_error(r, 429, "rate_limited").await;
    assert!(body.message.contains("try again"), "{}", body.message);
    // Enrolment shares the limit: refused before the code is even looked at.
    let code = admin::create_enrolment_code(srv.storage.as_ref(), "Limited")
        .await
        .unwrap();
    let key = ambulance_epr::crypto::DeviceSigningKey::generate().unwrap();
    let r = srv
        .http
        .post(srv.url("/devices/enroll"))
        .json(&EnrollRequest::signed(&code.code, &key))
        .send()
        .await
        .unwrap();
    expect_error(r, 429, "rate_limited").await;
    // Unknown usernames and limited attempts wrote nothing; the code creation is the only
    // new audit entry, and the code still works.
    let after = audit(&srv).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap().action, "enrolment_code_created");
    let stats = admin::stats(srv.storage.as_ref()).await.unwrap();
    assert_eq!(stats.devices, 0);
}

async fn the_lockout_cannot_be_raced_and_locks_only_the_address_that_failed(backend: Backend) {
    let srv = start_on_with(
        backend,
        ServerConfig {
            behind_tls_proxy: true,
            ..test_config()
        },
    )
    .await;
    supervisor(&srv, "target").await;
    let limit = ServerConfig::default().login_failures_before_lockout as usize;
    // Twenty wrong passwords at once from one address: exactly `limit` are checked, the rest
    // are refused as locked, however they interleave.
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            from(&srv, "/auth/login", "198.51.100.7")
                .json(&login_body("target", "not the password"))
                .send()
        })
        .collect();
    let mut checked = 0;
    let mut locked = 0;
    for a in attempts {
        match a.await.unwrap().status().as_u16() {
            401 => checked += 1,
            429 => locked += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((checked, locked), (limit, 20 - limit));
    // The right password from that address is locked out too ...
    let r = from(&srv, "/auth/login", "198.51.100.7")
        .json(&login_body("target", SUPERVISOR_PASSWORD))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "too_many_attempts").await;
    // ... but the supervisor at another address signs in as usual.
    let r = from(&srv, "/auth/login", "203.0.113.20")
        .json(&login_body("target", SUPERVISOR_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn logout_disable_and_reset_end_sessions_at_once(backend: Backend) {
    let srv = start_on(backend).await;
    let token = supervisor(&srv, "leaver").await;
    let queue = |token: &str| {
        srv.http
            .get(srv.url("/review/encounters"))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(queue(&token).await.unwrap().status(), 200);
    let r = srv
        .http
        .post(srv.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    expect_error(queue(&token).await.unwrap(), 401, "unauthorized").await;

    // Disabling ends every session and refuses logins (saying why, to the right password).
    let first = login(&srv, "leaver", SUPERVISOR_PASSWORD).await;
    let second = login(&srv, "leaver", SUPERVISOR_PASSWORD).await;
    admin::disable_user(srv.storage.as_ref(), "leaver")
        .await
        .unwrap();
    for t in [&first, &second] {
        expect_error(queue(t).await.unwrap(), 401, "unauthorized").await;
    }
    let r = attempt_login(&srv, "leaver", SUPERVISOR_PASSWORD).await;
    expect_error(r, 403, "account_disabled").await;
    let r = attempt_login(&srv, "leaver", "a wrong password").await;
    expect_error(r, 401, "invalid_credentials").await;
    admin::enable_user(srv.storage.as_ref(), "leaver")
        .await
        .unwrap();

    // A reset ends sessions; the old password stops working; a weak one is refused.
    let before_reset = login(&srv, "leaver", SUPERVISOR_PASSWORD).await;
    let weak = admin::reset_password(
        srv.storage.as_ref(),
        "leaver",
        "Password1234",
        KdfParams::FAST_FOR_TESTS,
    )
    .await
    .unwrap_err();
    assert!(weak.to_string().contains("not strong enough"), "{weak}");
    let new_password = "walnut harbour violet engine";
    admin::reset_password(
        srv.storage.as_ref(),
        "leaver",
        new_password,
        KdfParams::FAST_FOR_TESTS,
    )
    .await
    .unwrap();
    expect_error(queue(&before_reset).await.unwrap(), 401, "unauthorized").await;
    let r = attempt_login(&srv, "leaver", SUPERVISOR_PASSWORD).await;
    expect_error(r, 401, "invalid_credentials").await;
    let fresh = login(&srv, "leaver", new_password).await;

    // revoke-sessions (a lost laptop) ends them without touching the account.
    assert_eq!(
        admin::revoke_sessions(srv.storage.as_ref(), "leaver")
            .await
            .unwrap(),
        1
    );
    expect_error(queue(&fresh).await.unwrap(), 401, "unauthorized").await;
    assert!(matches!(
        admin::disable_user(srv.storage.as_ref(), "nobody").await,
        Err(admin::AdminError::NoSuchUser(_))
    ));
    let actions: Vec<String> = audit(&srv).await.into_iter().map(|e| e.action).collect();
    for expected in [
        "logged_out",
        "user_disabled",
        "user_enabled",
        "password_reset",
        "sessions_revoked",
    ] {
        assert!(actions.iter().any(|a| a == expected), "{expected}");
    }
}

async fn an_idle_session_is_refused(backend: Backend) {
    let srv = start_on_with(
        backend,
        ServerConfig {
            session_idle_secs: 1,
            ..test_config()
        },
    )
    .await;
    let token = supervisor(&srv, "idle").await;
    let queue = || {
        srv.http
            .get(srv.url("/review/encounters"))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(queue().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let body = expect_error(queue().await.unwrap(), 401, "unauthorized").await;
    assert!(body.message.contains("idle"), "{}", body.message);
}

async fn refused_credentials_are_audited_with_the_client_address(backend: Backend) {
    let srv = start_on(backend).await;
    supervisor(&srv, "known").await;
    let r = attempt_login(&srv, "known", "not it at all").await;
    expect_error(r, 401, "invalid_credentials").await;
    let r = srv
        .http
        .get(srv.url("/sync/feedback"))
        .bearer_auth("made-up-device-token")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    let r = srv
        .http
        .get(srv.url("/review/encounters"))
        .bearer_auth("made-up-session-token")
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    let entries = audit(&srv).await;
    let failed = entries
        .iter()
        .find(|e| e.action == "login_failed")
        .expect("a failed login is audited");
    assert_eq!(failed.actor, "client:127.0.0.1");
    assert_eq!(failed.detail, "user=known");
    let refused: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "token_refused")
        .map(|e| (e.actor.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            ("client:127.0.0.1", "kind=device"),
            ("client:127.0.0.1", "kind=session")
        ]
    );
    let logged_in = entries.iter().find(|e| e.action == "logged_in").unwrap();
    assert_eq!(logged_in.detail, "client=127.0.0.1");
    // The audit never holds a password or a token.
    for e in &entries {
        assert!(!e.detail.contains("not it") && !e.detail.contains("made-up"));
    }
}

async fn list_users_and_devices_show_what_ops_need(backend: Backend) {
    let srv = start_on(backend).await;
    supervisor(&srv, "active.one").await;
    supervisor(&srv, "gone").await;
    admin::disable_user(srv.storage.as_ref(), "gone")
        .await
        .unwrap();
    let users = admin::list_users(srv.storage.as_ref()).await.unwrap();
    let shown: Vec<_> = users
        .iter()
        .map(|u| (u.username.as_str(), u.disabled, u.live_sessions))
        .collect();
    assert_eq!(shown, [("active.one", false, 1), ("gone", true, 0)]);
    let json = serde_json::to_string(&users).unwrap();
    assert!(!json.contains("argon2") && !json.contains("password"));

    let dev = enroll(&srv, "Ambulance 14 tablet").await;
    let other = enroll(&srv, "Spare").await;
    admin::revoke_device(srv.storage.as_ref(), other.id)
        .await
        .unwrap();
    // A call with the token marks the device seen.
    let r = srv
        .http
        .get(srv.url("/sync/feedback"))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let devices = admin::list_devices(srv.storage.as_ref()).await.unwrap();
    let row = devices.iter().find(|d| d.device_id == dev.id).unwrap();
    assert_eq!(row.name, "Ambulance 14 tablet");
    assert!(row.last_seen_utc.is_some() && !row.revoked);
    let spare = devices.iter().find(|d| d.device_id == other.id).unwrap();
    assert!(spare.revoked && spare.last_seen_utc.is_none());
}

#[tokio::test]
async fn the_server_makes_its_own_request_ids() {
    let srv = start_on(Backend::Sqlite).await;
    let r = srv
        .http
        .get(srv.url("/health"))
        .header("x-request-id", "forged-by-the-client")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "forged-by-the-client");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("strict-transport-security").is_none());
}

/// Reads until the server closes the connection; the bytes read, or a timeout error.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> Result<Vec<u8>, tokio::time::error::Elapsed> {
    tokio::time::timeout(within, async {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return all,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

fn connection_config() -> ServerConfig {
    ServerConfig {
        header_read_timeout_secs: 1,
        max_connections: 3,
        ..test_config()
    }
}

#[tokio::test]
async fn a_slow_client_is_closed_within_the_header_timeout() {
    let srv = start_on_with(Backend::Sqlite, connection_config()).await;
    // Slowloris: a request line and one header, then nothing.
    let mut slow = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    slow.write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    read_until_closed(&mut slow, Duration::from_secs(5))
        .await
        .expect("the server must close a connection that stalls in its headers");
    // A connection that never sends anything is closed too.
    let mut silent = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    read_until_closed(&mut silent, Duration::from_secs(5))
        .await
        .expect("the server must close a connection that sends no request");
    // An idle keep-alive connection is closed after its request was answered.
    let mut idle = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    idle.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = read_until_closed(&mut idle, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection must be closed");
    assert!(String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_rest_are_served() {
    let srv = start_on_with(
        Backend::Sqlite,
        ServerConfig {
            header_read_timeout_secs: 10,
            ..connection_config()
        },
    )
    .await;
    // Three connections, each proven accepted (a slot held) by an answered request, then
    // kept open by keep-alive.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        c.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(c);
    }
    let mut extra = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = read_until_closed(&mut extra, Duration::from_secs(3))
        .await
        .expect("a connection over the cap must be closed at once");
    assert!(got.is_empty(), "served over the cap");
    // One held connection is let go: once the server sees it close, the slot is free again.
    drop(held.remove(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match srv.http.get(srv.url("/health")).send().await {
            Ok(r) if r.status() == 200 => break,
            _ => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the freed slot was never reused"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn a_flood_of_bad_tokens_is_limited_and_cannot_fill_the_audit(backend: Backend) {
    let srv = start_on_with(
        backend,
        ServerConfig {
            auth_attempts_per_minute: 3,
            auth_attempts_burst: 3,
            ..test_config()
        },
    )
    .await;
    let before = audit(&srv).await.len();
    let mut statuses = Vec::new();
    for i in 0..20 {
        let r = srv
            .http
            .get(srv.url("/sync/feedback"))
            .bearer_auth(format!("guessed-token-{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    // The first few are refused and audited; the rest are told to wait, and write nothing.
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        17,
        "{statuses:?}"
    );
    assert_eq!(audit(&srv).await.len(), before + 3);
}
