//! An anonymous login flood, with the production password hashing (Argon2id, 128 MiB): the
//! password-check bound keeps memory flat and a tablet's push is still answered. Alone in its
//! own test binary so the process's peak memory is this test's.
//!
//! Before the bound, 300 such logins drove the server to about 23 GiB until the kernel killed
//! it. The per-address limit is lifted here, as it would be for 300 different addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_common;

use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::model::RecordStatus;
use ambulance_epr::protocol::*;
use ambulance_epr::server::ServerConfig;
use server_common::*;

/// A `/proc/self/status` field in KiB (Linux).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

const FLOOD_LOGINS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_anonymous_logins_leave_memory_bounded_and_pushes_answered() {
    let production = ServerConfig::default();
    let config = ServerConfig {
        password_kdf: KdfParams::INTERACTIVE,
        max_concurrent_password_checks: production.max_concurrent_password_checks,
        request_timeout_secs: production.request_timeout_secs,
        auth_attempts_per_minute: 100_000,
        auth_attempts_burst: 10_000,
        ..test_config()
    };
    let bound = config.max_concurrent_password_checks as u64;
    let srv = start_on_with(Backend::Sqlite, config).await;
    let dev = enroll(&srv, "Flood tablet").await;
    let items: Vec<PushItem> = (0..40)
        .map(|_| item(&dev.key, &encounter(RecordStatus::Completed), 1))
        .collect();
    let t = Instant::now();
    push(&srv, &dev.token, &items[..20]).await;
    let quiet = t.elapsed();
    let resident_before_kib = status_kib("VmRSS:");

    let flood: Vec<_> = (0..FLOOD_LOGINS)
        .map(|i| {
            let request = srv.http.post(srv.url("/auth/login")).json(&LoginRequest {
                username: format!("nobody-{i}-{}", uuid::Uuid::new_v4()),
                password: "a guess".into(),
            });
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let t = Instant::now();
    let answer = push(&srv, &dev.token, &items[20..]).await;
    let under_flood = t.elapsed();
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.outcome == PushOutcome::Stored)
    );
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for f in flood {
        *statuses.entry(f.await.unwrap().unwrap()).or_default() += 1;
    }
    let peak_kib = status_kib("VmHWM:");
    eprintln!(
        "push of 20: {quiet:?} quiet, {under_flood:?} under the flood; statuses {statuses:?}; \
         resident {resident_before_kib} KiB before, peak {peak_kib} KiB"
    );
    // Every flood request got a quick, well-formed answer: wrong credentials, or busy.
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.get(&503).copied().unwrap_or(0) > 0,
        "the bound never engaged"
    );
    // Memory: at most `bound` checks of 128 MiB at once, plus slack for the runtime and the
    // 300 connections; without the bound this would be tens of GiB.
    let allowed_kib = resident_before_kib + bound * 128 * 1024 + 512 * 1024;
    assert!(
        peak_kib <= allowed_kib,
        "peak {peak_kib} KiB > {allowed_kib} KiB"
    );
    // The push was answered as a push should be, not starved behind the flood.
    assert!(
        under_flood < Duration::from_secs(10),
        "push took {under_flood:?} under the flood"
    );
}
