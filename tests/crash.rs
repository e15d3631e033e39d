//! Crash safety: a child process saves records and prints each id only after its commit
//! returned; the parent kills it with SIGKILL at random moments, reopens the store, and checks
//! that the file is sound and that every acknowledged record is there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::store::{Store, migrate};
use rand::{Rng, SeedableRng};

const PASS: &str = "velvet comet anchor orchard";
const ROUNDS: u32 = 50;

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_save() {
    let dir = tempfile::tempdir().unwrap();
    drop(
        Store::create_with(
            dir.path(),
            "crew",
            PASS,
            KdfParams::FAST_FOR_TESTS,
            migrate::latest_version(),
        )
        .unwrap(),
    );
    let seed: u64 = rand::rng().random();
    eprintln!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acknowledged: Vec<uuid::Uuid> = Vec::new();

    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_epr"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("save-loop")
            .arg("--seed")
            .arg(round.to_string())
            .env("EPR_PASSPHRASE", PASS)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the first acknowledged save (bounded), then a random extra time.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("round {round}: the child saved nothing within 20 s");
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
        }
        assert!(Instant::now() < deadline + Duration::from_secs(5));
        for l in lines {
            // Only whole lines are acknowledgements; a torn last line is not.
            if let Ok(id) = uuid::Uuid::parse_str(l.trim()) {
                acknowledged.push(id);
            }
        }
    }

    let store = Store::unlock(dir.path(), None, PASS).unwrap();
    assert_eq!(store.integrity_problems().unwrap(), Vec::<String>::new());
    assert_eq!(store.audit_chain_break().unwrap(), None);
    let mut missing = 0;
    for id in &acknowledged {
        if store.get(*id).is_err() {
            missing += 1;
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged saves lost",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() as u32 >= ROUNDS,
        "every round saved at least once"
    );
}
