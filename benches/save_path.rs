//! Save-path benchmark: one autosave commit (current state + version + outbox + audit) on
//! SQLCipher beside the same code on an unencrypted file, and the time to unlock.
//!
//! Run with `cargo bench --bench save_path`. Prints median and p99 per store and their ratio.
//! Timings on a shared machine are noisy: compare the ratio measured in one run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::store::{Store, migrate};

const WARMUP: usize = 50;
const SAMPLES: usize = 2000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn measure(store: &mut Store) -> Vec<Duration> {
    let mut e = complete_encounter();
    for i in 0..WARMUP {
        e.notes = format!("warm-up edit {i}");
        store.save_draft(&e).expect("save");
    }
    let mut out = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        e.notes = format!("edit {i}");
        // Alternate between a few records so both inserts and updates are measured.
        if i % 50 == 0 {
            e.id = uuid::Uuid::now_v7();
        }
        let start = Instant::now();
        store.save_draft(&e).expect("save");
        out.push(start.elapsed());
    }
    out.sort();
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        println!("save_path: run with `cargo bench --bench save_path`");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let enc_dir = dir.path().join("encrypted");
    let mut encrypted = Store::create_with(
        &enc_dir,
        "bench",
        "bench pass",
        KdfParams::INTERACTIVE,
        migrate::latest_version(),
    )
    .expect("create encrypted store");
    let mut plain = Store::create_plain_for_benchmark(&dir.path().join("plain.db"))
        .expect("create plain store");

    // Interleave runs so machine noise hits both alike.
    let mut enc_all = Vec::new();
    let mut plain_all = Vec::new();
    for _ in 0..3 {
        plain_all.extend(measure(&mut plain));
        enc_all.extend(measure(&mut encrypted));
    }
    enc_all.sort();
    plain_all.sort();
    let (em, ep) = (percentile(&enc_all, 0.5), percentile(&enc_all, 0.99));
    let (pm, pp) = (percentile(&plain_all, 0.5), percentile(&plain_all, 0.99));
    println!(
        "autosave commit ({} samples each, synchronous=FULL, WAL)",
        enc_all.len()
    );
    println!("{:<12} {:>12} {:>12}", "store", "median ms", "p99 ms");
    println!("{:<12} {:>12.3} {:>12.3}", "SQLCipher", ms(em), ms(ep));
    println!("{:<12} {:>12.3} {:>12.3}", "plain", ms(pm), ms(pp));
    println!(
        "ratio SQLCipher/plain: median {:.2}, p99 {:.2}",
        ms(em) / ms(pm),
        ms(ep) / ms(pp)
    );
    // The same saves while the sync engine drains a backlog on its own connection: it
    // acknowledges batches of 200 (the engine's default) as fast as it can, so a save
    // waits for the batch transaction in front of it.
    let mut drainer = encrypted.open_another().expect("second connection");
    let backlog = complete_encounter();
    for i in 0..10_000 {
        let mut e = backlog.clone();
        e.id = uuid::Uuid::now_v7();
        e.notes = format!("queued {i}");
        drainer.save_draft(&e).expect("queue");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut batches = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let batch = drainer.outbox_batch(200, 4 * 1024 * 1024).expect("batch");
                if batch.is_empty() {
                    break;
                }
                let ids: Vec<_> = batch.iter().map(|i| i.record_id).collect();
                drainer.mark_sending(&ids).expect("mark");
                let acks: Vec<_> = batch.iter().map(|i| (i.record_id, i.revision)).collect();
                drainer.acknowledge_many(&acks).expect("ack");
                batches += 1;
            }
            batches
        })
    };
    let contended = measure(&mut encrypted);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let batches = drain.join().expect("drain thread");
    let still_queued = encrypted.outbox_batch(1, 1024).expect("left").len();
    let (cm, cp) = (percentile(&contended, 0.5), percentile(&contended, 0.99));
    println!(
        "SQLCipher while a drain acknowledged {batches} batches of up to 200 (backlog left: {}): median {:.3} ms, p99 {:.3} ms, max {:.3} ms (ratio to uncontended median {:.2})",
        if still_queued > 0 {
            "yes, contended throughout"
        } else {
            "none, drained early"
        },
        ms(cm),
        ms(cp),
        ms(*contended.last().expect("samples")),
        ms(cm) / ms(em)
    );
    drop(encrypted);

    let mut unlocks = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let s = Store::unlock(&enc_dir, None, "bench pass").expect("unlock");
        unlocks.push(start.elapsed());
        drop(s);
    }
    unlocks.sort();
    println!(
        "unlock (Argon2id 128 MiB, t=3, p=1, then open): median {:.3} s, max {:.3} s",
        percentile(&unlocks, 0.5).as_secs_f64(),
        unlocks
            .last()
            .map(Duration::as_secs_f64)
            .unwrap_or_default()
    );
}
