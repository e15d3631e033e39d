//! `epr`: the crew tablet app. With no subcommand it opens the window; the subcommands serve
//! scripting, ops and tests. Wiring only: the work is done in the library's rooms.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use ambulance_epr::model::{Encounter, Revision};
use ambulance_epr::store::{ListFilter, Store, StoreError};
use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "epr",
    version,
    about = "Offline-first ambulance patient record (crew app)"
)]
struct Cli {
    /// Where the encrypted store lives (default: the platform data directory).
    #[arg(long, global = true, env = "EPR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Which user unlocks the store (default: the only user).
    #[arg(long, global = true)]
    user: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Fhir,
    Pdf,
    /// With `--all`: every record's latest signed version, FHIR Bulk Data style.
    FhirNdjson,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new encrypted store; passphrase from EPR_PASSPHRASE or a prompt.
    Init,
    /// Change the user's passphrase: the current one from EPR_PASSPHRASE or a prompt, the new
    /// one from EPR_NEW_PASSPHRASE or a prompt (typed twice). The data is not re-encrypted.
    Passwd,
    /// Add another user who unlocks this tablet (and signs on to a shift) with their own
    /// passphrase: unlock as an existing user (EPR_PASSPHRASE or a prompt); the new user's
    /// passphrase from EPR_NEW_PASSPHRASE or a prompt (typed twice). Their user name is the
    /// `user_id` the trust's staff list gives them.
    AddUser {
        #[arg(long)]
        name: String,
    },
    /// Add synthetic encounters (NHS numbers from the 999 test range).
    DemoData {
        #[arg(long)]
        count: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Counts of encounters, drafts, completed and sync state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The reference data in use (formulary, destinations, staff): version, source (server
    /// or the labelled sample) and counts.
    Reference {
        #[arg(long)]
        json: bool,
    },
    /// Encounters, newest first.
    List {
        #[arg(long)]
        json: bool,
        /// Patient name, NHS number or incident number.
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One encounter's full document with computed NEWS2 per observation set.
    Show {
        #[arg(long)]
        id: uuid::Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Check the store's integrity (SQLite, SQLCipher and the audit chain). With
    /// `--audit-head SEQ:HASH` (an audit head the server logged for this tablet, from its
    /// log's `device_audit_head` entries), also check the audit chain still holds it: a chain
    /// cut short since then does not.
    Check {
        #[arg(long, value_name = "SEQ:HASH")]
        audit_head: Vec<String>,
    },
    /// Write a hospital handover document for one record (`--id`: FHIR R4 bundle or PDF
    /// summary), or with `--all --format fhir-ndjson` every record's latest signed version
    /// into a new or empty directory (Bundle.ndjson and manifest.json), with no server.
    Export {
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        id: Option<uuid::Uuid>,
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[arg(long)]
        out: PathBuf,
        /// A particular version (default: the latest).
        #[arg(long)]
        revision: Option<Revision>,
    },
    /// Enrol this tablet with a trust's server using a one-time code.
    Enroll {
        /// The server's base URL, e.g. https://epr.example.nhs.uk
        #[arg(long)]
        server: String,
        /// The one-time code from `epr-server enroll-device` (which also names the tablet).
        #[arg(long)]
        code: String,
    },
    /// Push everything pending and pull supervisor feedback. Exit 0 when nothing is left,
    /// 75 when the server could not be reached and records remain queued, 76 when the server
    /// could not prove it kept every record (sync stopped, records kept here), 1 otherwise.
    Sync {
        /// Run one full cycle and exit (the only mode; the app syncs continuously).
        #[arg(long)]
        once: bool,
        #[arg(long)]
        json: bool,
    },
    /// Saves synthetic drafts in a loop, printing each id after its commit returns.
    /// Used by the crash test; not for people.
    #[command(hide = true)]
    SaveLoop {
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("uk.nhs", "Ambulance ePR", "epr")
        .map(|d| d.data_dir().to_owned())
        .ok_or_else(|| anyhow!("no home directory found: pass --data-dir"))
}

fn passphrase(prompt: &str) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("EPR_PASSPHRASE") {
        return Ok(p);
    }
    rpassword::prompt_password(prompt).context("cannot read the passphrase (set EPR_PASSPHRASE)")
}

fn unlock(cli: &Cli, data_dir: &std::path::Path) -> anyhow::Result<Store> {
    if !ambulance_epr::store::exists(data_dir) {
        return Err(StoreError::NotInitialised(data_dir.to_owned()).into());
    }
    let pass = zeroize::Zeroizing::new(passphrase("Passphrase: ")?);
    let store = Store::unlock(data_dir, cli.user.as_deref(), &pass)?;
    // A store made before passphrases had to be strong may still open with a short PIN.
    if ambulance_epr::crypto::check_secret(&pass, &[store.user()]).is_err() {
        eprintln!(
            "warning: this passphrase is too easy to guess if the tablet is lost; change it with `epr passwd`"
        );
    }
    Ok(store)
}

/// The new passphrase for `epr passwd`: EPR_NEW_PASSPHRASE, or typed twice.
fn new_passphrase() -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("EPR_NEW_PASSPHRASE") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("New passphrase: ")
            .context("cannot read the passphrase (set EPR_NEW_PASSPHRASE)")?,
    );
    let again = zeroize::Zeroizing::new(
        rpassword::prompt_password("Repeat the new passphrase: ")
            .context("cannot read the passphrase")?,
    );
    if *first != *again {
        return Err(anyhow!(
            "the two new passphrases differ; nothing was changed"
        ));
    }
    Ok(first)
}

/// The document as JSON with each observation set's NEWS2 (total, parameters, risk).
fn document_with_news2(e: &Encounter) -> anyhow::Result<serde_json::Value> {
    let mut doc = serde_json::to_value(e)?;
    if let Some(sets) = doc.get_mut("observations").and_then(|o| o.as_array_mut()) {
        for (set_json, set) in sets.iter_mut().zip(&e.observations) {
            let news = e.news2_for(set);
            if let Some(obj) = set_json.as_object_mut() {
                let mut n = serde_json::to_value(news)?;
                if let Some(m) = n.as_object_mut() {
                    m.insert("display".into(), news.display().into());
                }
                obj.insert("news2".into(), n);
            }
        }
    }
    // Every drug says where it came from: its formulary id, or null for "other".
    if let Some(drugs) = doc.get_mut("drugs").and_then(|d| d.as_array_mut()) {
        for (drug_json, drug) in drugs.iter_mut().zip(&e.drugs) {
            if let Some(obj) = drug_json.as_object_mut() {
                obj.insert("formulary_id".into(), serde_json::json!(drug.formulary_id));
                obj.insert("not_in_formulary".into(), drug.is_other().into());
            }
        }
    }
    // The score every screen shows: the latest complete set's, never a partial recheck's.
    let latest = e.latest_complete_news2().map(|l| {
        serde_json::json!({
            "total": l.score.total,
            "risk": l.score.risk,
            "scale": l.score.scale,
            "taken_at_utc": l.taken_at_utc,
            "newer_partial_sets": l.newer_partial_sets,
            "caveat": e.news2_caveat(),
        })
    });
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "latest_complete_news2".into(),
            latest.unwrap_or(serde_json::Value::Null),
        );
    }
    Ok(doc)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None => default_data_dir()?,
    };
    let Some(command) = &cli.command else {
        ambulance_epr::ui::run_app(data_dir)
            .map_err(|e| anyhow!("the window could not open: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    };
    match command {
        Command::Init => {
            let user = cli
                .user
                .clone()
                .ok_or_else(|| anyhow!("name the first user with --user NAME"))?;
            let pass = zeroize::Zeroizing::new(passphrase("New passphrase: ")?);
            // The passphrase is all that stands between a lost tablet's copied disk and every
            // record on it: it must resist offline guessing.
            if let Err(weak) = ambulance_epr::crypto::check_secret(&pass, &[user.as_str()]) {
                return Err(anyhow!(
                    "that passphrase is not strong enough: {weak}. Four or more unrelated words make a good one"
                ));
            }
            let store = Store::create(&data_dir, &user, &pass)?;
            println!(
                "created an encrypted store in {}",
                store.data_dir().display()
            );
        }
        Command::Passwd => {
            let mut store = unlock(&cli, &data_dir)?;
            let new = new_passphrase()?;
            store.change_passphrase(&new, ambulance_epr::crypto::KdfParams::INTERACTIVE)?;
            println!("passphrase changed for {}", store.user());
        }
        Command::AddUser { name } => {
            let mut store = unlock(&cli, &data_dir)?;
            let new = new_passphrase()?;
            store.add_user(
                name.trim(),
                &new,
                ambulance_epr::crypto::KdfParams::INTERACTIVE,
            )?;
            println!("added user {} to this tablet", name.trim());
        }
        Command::DemoData { count, seed } => {
            let mut store = unlock(&cli, &data_dir)?;
            ambulance_epr::sync::engine::mark_for_demo_records(&store)?;
            let s = ambulance_epr::demo::add_demo_data(&mut store, *count, *seed)?;
            println!(
                "added {} synthetic encounters ({} completed, {} drafts)",
                s.added, s.completed, s.drafts
            );
        }
        Command::Reference { json } => {
            let store = unlock(&cli, &data_dir)?;
            let active = ambulance_epr::sync::integrity::reference_in_use(&store)?;
            let refused = store.reference_refused()?;
            let summary = active.summary();
            if *json {
                let mut v = serde_json::to_value(&summary)?;
                v["last_refused"] = serde_json::json!(refused);
                println!("{v}");
            } else {
                println!(
                    "reference data version {} for {} from {}: {} drugs, {} destinations, {} staff",
                    summary.version,
                    summary.trust,
                    match summary.source {
                        ambulance_epr::store::reference::ReferenceSource::Server => "the server",
                        ambulance_epr::store::reference::ReferenceSource::Sample =>
                            "the SAMPLE set shipped with the app (not clinical guidance)",
                        ambulance_epr::store::reference::ReferenceSource::None =>
                            "nowhere yet: the trust's set has not reached this enrolled tablet",
                    },
                    summary.counts.drugs,
                    summary.counts.destinations,
                    summary.counts.staff
                );
                if let Some(reason) = refused {
                    println!("the last set the server offered was refused: {reason}");
                }
            }
        }
        Command::Status { json } => {
            let store = unlock(&cli, &data_dir)?;
            let c = store.status_counts()?;
            let last = store.last_sync()?;
            let held = store.holdings()?;
            if *json {
                let v = serde_json::json!({
                    "held_versions": held.held_versions,
                    "oldest_unacknowledged_utc": held.oldest_unacknowledged_utc,
                    "retention_days": store.retention_days()?,
                    "tablet_state": store.tablet_state()?,
                    "encounters": c.encounters,
                    "drafts": c.drafts,
                    "completed": c.completed,
                    "pending_sync": c.pending_sync,
                    "quarantined": c.quarantined,
                    "returned": c.returned,
                    "last_sync_utc": last,
                    "enrolled": store.setting(ambulance_epr::sync::engine::SERVER_URL)?.is_some(),
                    "server_checkpoint": ambulance_epr::sync::integrity::checkpoint_summary(&store)?,
                    "server_integrity": ambulance_epr::sync::integrity::integrity(&store)?,
                });
                println!("{v}");
            } else {
                println!(
                    "{} encounters ({} drafts, {} completed); {} waiting to sync, {} need attention, {} returned",
                    c.encounters, c.drafts, c.completed, c.pending_sync, c.quarantined, c.returned
                );
                match last {
                    Some(t) => println!("last sync {t}"),
                    None => println!("never synced"),
                }
                match held.oldest_unacknowledged_utc {
                    Some(t) => println!(
                        "{} signed versions held; oldest unacknowledged saved {t}",
                        held.held_versions
                    ),
                    None => println!(
                        "{} signed versions held; all acknowledged by the server",
                        held.held_versions
                    ),
                }
                match store.tablet_state()? {
                    ambulance_epr::store::TabletState::Active => {}
                    ambulance_epr::store::TabletState::Retiring => println!(
                        "this tablet is being retired: it sends what it holds and takes no new records"
                    ),
                    ambulance_epr::store::TabletState::Retired => {
                        println!("this tablet has been retired: hand it in")
                    }
                }
                if let ambulance_epr::sync::integrity::ServerIntegrity::Failed { reason } =
                    ambulance_epr::sync::integrity::integrity(&store)?
                {
                    println!(
                        "SERVER INTEGRITY FAILED: {reason}; records stay on this tablet: tell control"
                    );
                }
            }
        }
        Command::List {
            json,
            search,
            limit,
        } => {
            let store = unlock(&cli, &data_dir)?;
            let rows = store.list(&ListFilter {
                text: search.clone(),
                limit: *limit,
                ..ListFilter::default()
            })?;
            if *json {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                for r in rows {
                    println!(
                        "{}  {:<12} {:<9} {}  {}",
                        r.id,
                        r.incident_number,
                        r.status.as_str(),
                        r.updated_at_utc.format("%Y-%m-%d %H:%M"),
                        r.latest_news2_text
                    );
                }
            }
        }
        Command::Show { id, json } => {
            let mut store = unlock(&cli, &data_dir)?;
            let e = store.get(*id)?;
            store.record_access(ambulance_epr::store::audit::Action::Viewed, *id)?;
            if *json {
                println!("{}", document_with_news2(&e)?);
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&document_with_news2(&e)?)?
                );
            }
        }
        Command::Check { audit_head } => {
            let store = unlock(&cli, &data_dir)?;
            let mut problems = store.integrity_problems()?;
            let chain = store.audit_chain_break()?;
            for head in audit_head {
                let parsed = head
                    .split_once(':')
                    .and_then(|(seq, hash)| Some((seq.trim().parse::<i64>().ok()?, hash.trim())));
                let Some((seq, hash)) = parsed else {
                    return Err(anyhow!(
                        "--audit-head must be SEQ:HASH, for example 42:9f2c…"
                    ));
                };
                if !store.audit_holds(seq, hash)? {
                    problems.push(format!(
                        "the audit log no longer holds entry {seq} as reported to the server: entries were removed or rewritten"
                    ));
                }
            }
            if problems.is_empty() && chain.is_none() {
                println!("store is sound (SQLCipher {})", store.cipher_version()?);
            } else {
                for p in &problems {
                    println!("integrity: {p}");
                }
                if let Some(seq) = chain {
                    println!("audit chain broken at entry {seq}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Export {
            id: None,
            all: true,
            format,
            out,
            revision: _,
        } => {
            if !matches!(format, ExportFormat::FhirNdjson) {
                return Err(anyhow!("--all writes --format fhir-ndjson"));
            }
            let mut store = unlock(&cli, &data_dir)?;
            let mut export = ambulance_epr::bulk_export::BulkExport::create(out)?;
            let now = chrono::Utc::now();
            let latest = store.latest_signed_revisions()?;
            for (record_id, revision) in &latest {
                let (doc, meta) = store.version_for_export(*record_id, Some(*revision))?;
                export.add(&doc, &meta, now)?;
            }
            let count = export.finish(now, None)?;
            for (record_id, _) in &latest {
                store.record_access(ambulance_epr::store::audit::Action::Exported, *record_id)?;
            }
            println!("exported {count} records to {}", out.display());
        }
        Command::Export { id: None, .. } => {
            return Err(anyhow!("give --id for one record, or --all"));
        }
        Command::Export {
            id: Some(id),
            format,
            out,
            revision,
            ..
        } => {
            let mut store = unlock(&cli, &data_dir)?;
            let (doc, meta) = store.version_for_export(*id, *revision)?;
            let format = match format {
                ExportFormat::Fhir => ambulance_epr::export::Format::Fhir,
                ExportFormat::Pdf => ambulance_epr::export::Format::Pdf,
                ExportFormat::FhirNdjson => {
                    return Err(anyhow!("fhir-ndjson exports every record: use --all"));
                }
            };
            let bytes = ambulance_epr::export::document(format, &doc, &meta, chrono::Utc::now())?;
            // Never over another file (another patient's handover, or an earlier export).
            match ambulance_epr::fs_atomic::write_new_or_same(out, &bytes) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(anyhow!(
                        "{} already exists and holds a different document; it was not replaced",
                        out.display()
                    ));
                }
                Err(e) => return Err(e).with_context(|| format!("cannot write {}", out.display())),
            }
            store.record_access(ambulance_epr::store::audit::Action::Exported, *id)?;
            if meta.is_draft() {
                eprintln!(
                    "note: this record is a draft; the export is marked \"{}\"",
                    ambulance_epr::export::DRAFT_MARK
                );
            }
            println!("wrote {}", out.display());
        }
        Command::Enroll { server, code } => {
            let store = unlock(&cli, &data_dir)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let device_id = runtime.block_on(ambulance_epr::sync::enroll(&store, server, code))?;
            println!("enrolled as device {device_id}");
        }
        Command::Sync { once, json } => {
            if !once {
                return Err(anyhow!(
                    "use `epr sync --once` (the app syncs continuously by itself)"
                ));
            }
            let store = unlock(&cli, &data_dir)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let mut engine =
                ambulance_epr::sync::Engine::new(store, ambulance_epr::sync::SyncConfig::default());
            let outcome = runtime.block_on(engine.run_cycle());
            let counts = engine.store().status_counts()?;
            let (report, error) = match outcome {
                Ok(r) => (r, None),
                Err(e) => (
                    ambulance_epr::sync::CycleReport {
                        pending: counts.pending_sync,
                        quarantined: counts.quarantined,
                        reachable: !matches!(
                            &e,
                            ambulance_epr::sync::SyncError::Request(
                                ambulance_epr::sync::RequestError::Transient(_)
                            )
                        ),
                        ..Default::default()
                    },
                    Some(e),
                ),
            };
            if *json {
                let v = serde_json::json!({
                    "pushed": report.pushed,
                    "pending": report.pending,
                    "quarantined": report.quarantined,
                    "feedback": report.feedback,
                    "reachable": report.reachable,
                    "purged": report.purged,
                    "error": error.as_ref().map(|e| e.to_string()),
                });
                println!("{v}");
            } else {
                println!(
                    "pushed {}, pending {}, quarantined {}, feedback {}, server {}",
                    report.pushed,
                    report.pending,
                    report.quarantined,
                    report.feedback,
                    if report.reachable {
                        "reachable"
                    } else {
                        "unreachable"
                    }
                );
            }
            return Ok(match error {
                Some(e @ ambulance_epr::sync::SyncError::Integrity(_)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(76)
                }
                Some(e) if !report.reachable && report.pending > 0 => {
                    eprintln!("error: {e}");
                    ExitCode::from(75)
                }
                Some(e) if !report.reachable && report.quarantined == 0 => {
                    eprintln!(
                        "warning: nothing to push, but supervisor feedback was not pulled: {e}"
                    );
                    ExitCode::SUCCESS
                }
                Some(e) => {
                    eprintln!("error: {e}");
                    if e.kind() == ambulance_epr::sync::ProblemKind::Credentials
                        && report.pending > 0
                    {
                        eprintln!(
                            "{} unsent record version(s) stay on this tablet: tell control",
                            report.pending
                        );
                    }
                    ExitCode::FAILURE
                }
                None if report.quarantined > 0 => {
                    eprintln!(
                        "error: {} record version(s) were refused by the server; see `epr status`",
                        report.quarantined
                    );
                    ExitCode::FAILURE
                }
                None if report.pending > 0 => ExitCode::FAILURE,
                None => ExitCode::SUCCESS,
            });
        }
        Command::SaveLoop { seed } => {
            use rand::SeedableRng;
            let mut store = unlock(&cli, &data_dir)?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(*seed);
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            for i in 0u32.. {
                let e = ambulance_epr::demo::synthetic_encounter(&mut rng, chrono::Utc::now(), i);
                let receipt = if i % 3 == 0 {
                    store.complete_and_sign(&e, "Test Clinician", "PA000000")?
                } else {
                    store.save_draft(&e)?
                };
                writeln!(lock, "{}", receipt.record_id)?;
                lock.flush()?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = ambulance_epr::no_core_dumps::disable() {
        tracing::warn!("core dumps could not be turned off ({e})");
    }
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
