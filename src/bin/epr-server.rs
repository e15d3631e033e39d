//! `epr-server`: the hosted server and its administration commands. Wiring only: the work is
//! in `ambulance_epr::server`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::server::log_key::{self, LogSigner};
use ambulance_epr::server::{self, ServerConfig, TlsFiles, admin};
use ambulance_epr::transparency::LogPublicKey;

#[derive(Parser)]
#[command(
    name = "epr-server",
    version,
    about = "Hosted server for the ambulance ePR"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Bulk export formats.
#[derive(Clone, Copy, ValueEnum)]
enum BulkFormat {
    /// FHIR Bulk Data style: Bundle.ndjson and manifest.json.
    FhirNdjson,
}

#[derive(clap::Args, Clone)]
struct DbArg {
    /// `sqlite://PATH` or `postgres://...`.
    #[arg(
        long,
        env = "EPR_DATABASE_URL",
        default_value = "sqlite://epr-server.db"
    )]
    database: String,
}

#[derive(clap::Args, Clone)]
struct KeyArg {
    /// The log signing key file (created 0600 on first use if missing). Default: beside a
    /// SQLite database (`PATH.signing-key`); for PostgreSQL, `epr-server-signing-key.json`
    /// in the working directory. Keep it off the database host's backups of the database.
    #[arg(long, env = "EPR_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
}

impl KeyArg {
    fn path(&self, db: &DbArg) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| log_key::default_key_path(&db.database))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Supervisor,
}

/// What `reference` does.
#[derive(Subcommand)]
enum ReferenceCommand {
    /// Check a reference data file whole (docs/reference-data.schema.json) and store it as
    /// the new version, signed with the log key, logged and audited; tablets receive it at
    /// their next sync. A bad file, or one whose "version" is not above the one held,
    /// changes nothing and the message names the first problem with its path.
    Import {
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        db: DbArg,
    },
    /// The version held: version, trust, counts and when it was signed.
    Show {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Subcommand)]
enum Command {
    /// The trust's reference data (formulary, destinations, staff, pick lists).
    Reference {
        #[command(subcommand)]
        action: ReferenceCommand,
    },
    /// Run the HTTP API until SIGTERM or Ctrl-C.
    Serve {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// PEM certificate chain; with --tls-key, serve HTTPS.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// PEM private key.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Serve plain HTTP on a non-loopback address because a TLS-terminating proxy on this
        /// host forwards to it; client addresses are then read from X-Forwarded-For.
        #[arg(long, conflicts_with = "tls_cert")]
        behind_tls_proxy: bool,
        #[command(flatten)]
        key: KeyArg,
        /// The log's name in every checkpoint, used only when a new key is created.
        #[arg(long)]
        log_origin: Option<String>,
        /// Days a record stays on a tablet after the server acknowledged it and proved it is
        /// in the log (1 to 3650); sent to every tablet at each sync.
        #[arg(long, env = "EPR_DEVICE_RETENTION_DAYS", default_value_t = ambulance_epr::store::DEFAULT_RETENTION_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=3650))]
        device_retention_days: u32,
        /// Rebuild a lost server from its tablets: on an empty database, with the lost
        /// server's key file, start a log whose first entry names --expect-checkpoint. The
        /// tablets take their places again and send back every signed version they hold at
        /// their next sync. See `recovery-report`.
        #[arg(long, requires_all = ["expect_checkpoint", "log_entries"])]
        recover: bool,
        /// With --recover: the lost log's last checkpoint the trust kept (`checkpoint --out`).
        #[arg(long, requires = "recover")]
        expect_checkpoint: Option<PathBuf>,
        /// With --recover: the lost log's entries saved with it (`checkpoint --leaves-out`, or
        /// an evidence pack's leaves.jsonl).
        #[arg(long, requires = "recover")]
        log_entries: Option<PathBuf>,
    },
    /// The log signing key: `--public` prints the verifier key (NAME+KEYID+KEY) for the trust
    /// to keep and publish; creates the key if there is none yet.
    Key {
        #[arg(long)]
        public: bool,
        /// Replace the key: a new key for the same log, announced by a rotation statement the
        /// old key signs (kept in the database and logged), so tablets move to it. The old key
        /// file is kept beside the new one. Restart `serve` afterwards.
        #[arg(long, conflicts_with = "public")]
        rotate: bool,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        db: DbArg,
        /// The log's name, used only when a new key is created.
        #[arg(long)]
        log_origin: Option<String>,
    },
    /// Write the log's current signed checkpoint to FILE, for the trust to keep elsewhere
    /// (WORM storage, another organisation) and give to `verify --expect-checkpoint` later.
    Checkpoint {
        #[arg(long)]
        out: PathBuf,
        /// Also write the log's entries up to that checkpoint (one per line; no patient data:
        /// ids, hashes, signatures, usernames), which `serve --recover` needs to rebuild the
        /// server from its tablets.
        #[arg(long)]
        leaves_out: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        db: DbArg,
    },
    /// How much of the lost log a server rebuilt with `serve --recover` holds again, which
    /// tablets have come back and which enrolled tablets have not.
    RecoveryReport {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Write a consistent copy of a SQLite database, taken while it serves, to a new file
    /// (never replacing one). The log signing key is not in it: back that up apart. For
    /// PostgreSQL use pg_dump (README, "Backups"). Restore by serving the copy, then run verify
    Backup {
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
    /// Write every record's latest signed version as FHIR document Bundles, one per line of
    /// DIR/Bundle.ndjson, with DIR/manifest.json (time, count, the log's signed checkpoint).
    /// DIR must be new or empty
    Export {
        #[arg(long, value_enum)]
        format: BulkFormat,
        #[arg(long)]
        out: PathBuf,
        /// Only records whose latest signed version was saved at or after this time (RFC 3339)
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        key: KeyArg,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print a one-time enrolment code (valid 24 hours) on the last line.
    EnrollDevice {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Add a supervisor account; the password comes from EPR_PASSWORD or a prompt.
    AddUser {
        #[arg(long)]
        username: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        db: DbArg,
    },
    /// Set a new password (EPR_PASSWORD or a prompt); the account's sessions end.
    ResetPassword {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Disable an account (a leaver): its sessions end at once and logins are refused.
    DisableUser {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Let a disabled account log in again.
    EnableUser {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// End every session of an account (for example a lost laptop).
    RevokeSessions {
        #[arg(long)]
        username: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List accounts (never their passwords).
    ListUsers {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// List enrolled devices: id, name, enrolment, last seen, revoked.
    ListDevices {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Retire a tablet: it sends everything it holds at its next syncs, takes no new
    /// records and tells the crew; once it reports nothing left to send it is refused.
    RetireDevice {
        device_id: Uuid,
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a device (lost or stolen): its token stops working at once. Records it has not
    /// sent stay on it.
    RevokeDevice {
        device_id: Uuid,
        #[command(flatten)]
        db: DbArg,
    },
    /// Counts of records, versions and devices.
    Stats {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArg,
    },
    /// Prove the server's integrity: recompute the log from its entries and check it against
    /// the checkpoints it signed (and those given with --expect-checkpoint), every version's
    /// hash and signature against the keys as logged, and the audit chain. Exit 1 naming
    /// every finding.
    Verify {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        key: KeyArg,
        /// The log's verifier key (NAME+KEYID+KEY) instead of the key file: what an
        /// independent verifier holds.
        #[arg(long)]
        log_key: Option<String>,
        /// A checkpoint published earlier (from `epr-server checkpoint --out`); repeatable.
        #[arg(long)]
        expect_checkpoint: Vec<PathBuf>,
        /// Also write the evidence pack for an independent verifier into this new or empty
        /// directory (see docs/integrity.md).
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("epr-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("epr-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A new password from `EPR_PASSWORD`, or typed twice at a prompt.
fn new_password(username: &str) -> anyhow::Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("EPR_PASSWORD") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    let p = zeroize::Zeroizing::new(
        rpassword::prompt_password(format!("Password for {username}: "))
            .context("cannot read the password")?,
    );
    let again = zeroize::Zeroizing::new(
        rpassword::prompt_password("Repeat the password: ").context("cannot read the password")?,
    );
    if *p != *again {
        bail!("the passwords differ");
    }
    Ok(p)
}

async fn open(db: &DbArg) -> anyhow::Result<std::sync::Arc<dyn server::Storage>> {
    server::open_storage(&db.database)
        .await
        .context("cannot open the database")
}

/// Reads the log signing key, creating it (and saying so) if there is none.
fn load_or_create_key(path: &std::path::Path, origin: Option<&str>) -> anyhow::Result<LogSigner> {
    let (signer, created) = LogSigner::load_or_create(path, origin)?;
    if created {
        eprintln!(
            "created the log signing key {} (log {}): keep a copy somewhere safe, apart from the database's backups",
            path.display(),
            signer.origin()
        );
    }
    Ok(signer)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            db,
            listen,
            tls_cert,
            tls_key,
            behind_tls_proxy,
            key,
            log_origin,
            device_retention_days,
            recover,
            expect_checkpoint,
            log_entries,
        } => {
            let tls = match (tls_cert, tls_key) {
                (Some(cert_pem), Some(key_pem)) => Some(TlsFiles { cert_pem, key_pem }),
                _ => None,
            };
            let signer = if recover {
                // The lost server's key, never a new one: tablets pinned it.
                LogSigner::load(&key.path(&db))
                    .context("--recover needs the lost server's log signing key file")?
            } else {
                load_or_create_key(&key.path(&db), log_origin.as_deref())?
            };
            tracing::info!(log_key = %signer.public().to_vkey(), "log signing key");
            if let (true, Some(checkpoint), Some(entries)) =
                (recover, &expect_checkpoint, &log_entries)
            {
                let note = std::fs::read_to_string(checkpoint)
                    .with_context(|| format!("cannot read {}", checkpoint.display()))?;
                let leaves = std::fs::read_to_string(entries)
                    .with_context(|| format!("cannot read {}", entries.display()))?;
                let storage = open(&db).await?;
                let n = admin::begin_recovery(storage.as_ref(), &signer, &note, &leaves).await?;
                eprintln!(
                    "rebuilding from a log of {n} entries: tablets send back what they hold at their next sync; see `epr-server recovery-report`"
                );
            }
            let config = ServerConfig {
                tls,
                behind_tls_proxy,
                log_signer: Some(std::sync::Arc::new(signer)),
                device_retention_days,
                ..ServerConfig::default()
            };
            server::check_listen_address(listen, &config)?;
            let storage = open(&db).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            // Tests and scripts read the bound address (useful with port 0).
            println!("listening on {}", listener.local_addr()?);
            server::serve(storage, config, listener, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::EnrollDevice { name, db } => {
            let storage = open(&db).await?;
            let code = admin::create_enrolment_code(storage.as_ref(), &name).await?;
            println!(
                "Enrolment code for \"{}\" (single use, expires {}):",
                name.trim(),
                code.expires_at_utc.format("%Y-%m-%d %H:%M UTC")
            );
            println!("{}", code.code);
            Ok(ExitCode::SUCCESS)
        }
        Command::AddUser { username, role, db } => {
            let role = match role {
                RoleArg::Supervisor => admin::Role::Supervisor,
            };
            let password = new_password(&username)?;
            let storage = open(&db).await?;
            admin::add_user(
                storage.as_ref(),
                &username,
                role,
                &password,
                KdfParams::INTERACTIVE,
            )
            .await?;
            println!("added {} {username}", role.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::ResetPassword { username, db } => {
            let password = new_password(&username)?;
            let storage = open(&db).await?;
            admin::reset_password(
                storage.as_ref(),
                &username,
                &password,
                KdfParams::INTERACTIVE,
            )
            .await?;
            println!("new password set for {username}; their sessions have ended");
            Ok(ExitCode::SUCCESS)
        }
        Command::DisableUser { username, db } => {
            let storage = open(&db).await?;
            admin::disable_user(storage.as_ref(), &username).await?;
            println!("disabled {username}; their sessions have ended");
            Ok(ExitCode::SUCCESS)
        }
        Command::EnableUser { username, db } => {
            let storage = open(&db).await?;
            admin::enable_user(storage.as_ref(), &username).await?;
            println!("enabled {username}");
            Ok(ExitCode::SUCCESS)
        }
        Command::RevokeSessions { username, db } => {
            let storage = open(&db).await?;
            let n = admin::revoke_sessions(storage.as_ref(), &username).await?;
            println!("ended {n} session(s) of {username}");
            Ok(ExitCode::SUCCESS)
        }
        Command::ListUsers { json, db } => {
            let storage = open(&db).await?;
            let users = admin::list_users(storage.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string(&users)?);
            } else {
                for u in &users {
                    println!(
                        "{}\t{}\t{}\t{} live session(s)",
                        u.username,
                        u.role,
                        if u.disabled { "disabled" } else { "active" },
                        u.live_sessions
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ListDevices { json, db } => {
            let storage = open(&db).await?;
            let devices = admin::device_listing(storage.as_ref(), chrono::Utc::now()).await?;
            if json {
                println!("{}", serde_json::to_string(&devices)?);
            } else {
                let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map_or_else(
                        || "never".to_owned(),
                        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                    )
                };
                for listed in &devices {
                    let d = &listed.device;
                    let unsent = match (d.pending, d.oldest_pending_utc) {
                        (None, _) => "not reported".to_owned(),
                        (Some(0), _) => "nothing unsent".to_owned(),
                        (Some(n), oldest) => format!(
                            "{n} unsent since {}{}",
                            when(oldest),
                            if listed.unsent_over_24h {
                                " (OVER 24 HOURS)"
                            } else {
                                ""
                            }
                        ),
                    };
                    println!(
                        "{}\t{}\tenrolled {}\tlast seen {}\t{}\t{}\tapp {}",
                        d.device_id,
                        d.name,
                        d.enrolled_at_utc.format("%Y-%m-%d %H:%M UTC"),
                        when(d.last_seen_utc),
                        listed.state,
                        unsent,
                        d.app_version.as_deref().unwrap_or("unknown"),
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RetireDevice { device_id, db } => {
            let storage = open(&db).await?;
            match admin::retire_device(storage.as_ref(), device_id).await {
                Ok(true) => {
                    println!(
                        "retiring device {device_id}: it sends what it holds at its next syncs and takes no new records; list-devices shows it retired once nothing is left on it"
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Ok(false) => {
                    eprintln!("epr-server: no device {device_id}");
                    Ok(ExitCode::FAILURE)
                }
                Err(admin::AdminError::Storage(
                    ambulance_epr::server::storage::StorageError::DeviceNotActive,
                )) => {
                    eprintln!("epr-server: device {device_id} is already revoked or retired");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::RevokeDevice { device_id, db } => {
            let storage = open(&db).await?;
            if admin::revoke_device(storage.as_ref(), device_id).await? {
                println!("revoked device {device_id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("epr-server: no device {device_id}");
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Stats { json, db } => {
            let storage = open(&db).await?;
            let stats = admin::stats(storage.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string(&stats)?);
            } else {
                println!(
                    "encounters {}\nversions {}\ncompleted {}\ndevices {} ({} revoked)\nusers {}\ndecisions {}\naudit entries {}",
                    stats.encounters,
                    stats.versions,
                    stats.completed,
                    stats.devices,
                    stats.revoked_devices,
                    stats.users,
                    stats.decisions,
                    stats.audit_entries
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Key {
            public,
            rotate,
            key,
            db,
            log_origin,
        } => {
            let path = key.path(&db);
            if rotate {
                let old = LogSigner::load(&path).context("rotate needs the current key")?;
                let (next, statement) = old.successor()?;
                let storage = open(&db).await?;
                storage
                    .add_key_rotation(&statement, &next.public().to_vkey(), chrono::Utc::now())
                    .await
                    .context("cannot record the rotation")?;
                if let Some(version) = ambulance_epr::server::reference::sign_again_after_rotation(
                    storage.as_ref(),
                    &old,
                    &next,
                )
                .await
                .context("cannot sign the reference data again with the new key")?
                {
                    println!("reference data version {version} signed again with the new key");
                }
                log_key::install_successor(&path, &old, &next)?;
                println!(
                    "rotated the log key: new fingerprint {}, old key kept at {}; restart serve",
                    next.public().fingerprint(),
                    log_key::retired_key_path(&path, &old.public()).display()
                );
                println!("{}", next.public().to_vkey());
                return Ok(ExitCode::SUCCESS);
            }
            let signer = load_or_create_key(&path, log_origin.as_deref())?;
            if public {
                println!("{}", signer.public().to_vkey());
            } else {
                println!(
                    "log {} key fingerprint {} (use --public for the verifier key)",
                    signer.origin(),
                    signer.public().fingerprint()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference {
            action: ReferenceCommand::Import { file, key, db },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let signer = load_or_create_key(&key.path(&db), None)?;
            let storage = open(&db).await?;
            let summary = ambulance_epr::server::reference::import(
                storage.as_ref(),
                &signer,
                &text,
                chrono::Utc::now(),
            )
            .await?;
            println!(
                "imported reference data version {} for {}: {} drugs, {} destinations, {} staff; tablets receive it at their next sync",
                summary.version,
                summary.trust,
                summary.counts.drugs,
                summary.counts.destinations,
                summary.counts.staff
            );
            // `serve` hands tablets only what its own key signed: the fingerprints must match.
            println!(
                "signed with log key fingerprint {} (the key `serve` must use)",
                signer.public().fingerprint()
            );
            if summary.sample {
                println!("note: this is the labelled SAMPLE set, not clinical guidance");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Reference {
            action: ReferenceCommand::Show { json, db },
        } => {
            let storage = open(&db).await?;
            let summary = ambulance_epr::server::reference::show(storage.as_ref()).await?;
            match (json, summary) {
                (true, s) => println!("{}", serde_json::to_string_pretty(&s)?),
                (false, None) => println!("no reference data imported yet"),
                (false, Some(s)) => println!(
                    "reference data version {} for {}{}: {} drugs, {} destinations, {} staff; signed {}",
                    s.version,
                    s.trust,
                    if s.sample { " (SAMPLE)" } else { "" },
                    s.counts.drugs,
                    s.counts.destinations,
                    s.counts.staff,
                    s.signed_at_utc
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint {
            out,
            leaves_out,
            key,
            db,
        } => {
            let path = key.path(&db);
            let signer = LogSigner::load(&path).context("checkpoint needs the log signing key")?;
            let storage = open(&db).await?;
            let note = admin::current_checkpoint(storage.as_ref(), &signer).await?;
            if let Some(leaves_path) = &leaves_out {
                let size = ambulance_epr::transparency::open_checkpoint(&note, &signer.public())
                    .context("the checkpoint just signed does not open")?
                    .size;
                let leaves = admin::log_leaves_text(storage.as_ref(), size).await?;
                ambulance_epr::fs_atomic::write_bytes(leaves_path, leaves.as_bytes())
                    .with_context(|| format!("cannot write {}", leaves_path.display()))?;
                println!("log entries written to {}", leaves_path.display());
            }
            ambulance_epr::fs_atomic::write_bytes(&out, note.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("checkpoint written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::RecoveryReport { json, db } => {
            let storage = open(&db).await?;
            let Some(report) =
                ambulance_epr::server::recovery::report_for(storage.as_ref()).await?
            else {
                anyhow::bail!("this server was not rebuilt with `serve --recover`");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "rebuilt {} from a log of {} entries; {} back",
                report.recovered_at_utc.format("%Y-%m-%d %H:%M UTC"),
                report.expected_entries,
                report.entries_back
            );
            println!(
                "versions: {} of {} back; decisions: {} of {} back",
                report.versions.back,
                report.versions.expected,
                report.decisions.back,
                report.decisions.expected
            );
            for d in &report.devices_reported {
                println!(
                    "back      {}  {}  {} of {} versions",
                    d.device_id,
                    d.name.as_deref().unwrap_or(""),
                    d.versions.back,
                    d.versions.expected
                );
            }
            for d in &report.devices_missing {
                println!(
                    "NOT BACK  {}  {} of its {} versions are not back",
                    d.device_id,
                    d.versions.expected - d.versions.back,
                    d.versions.expected
                );
            }
            println!(
                "{}",
                if report.complete {
                    "complete: every version is back and every enrolled tablet has come back"
                } else {
                    "not complete"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            format: BulkFormat::FhirNdjson,
            out,
            since,
            key,
            db,
        } => {
            let signer = LogSigner::load(&key.path(&db))
                .context("export needs the log signing key, to name the checkpoint it matches")?;
            let storage = open(&db).await?;
            let checkpoint = admin::current_checkpoint(storage.as_ref(), &signer).await?;
            let summary =
                admin::export_ndjson(storage.as_ref(), &out, since, Some(&checkpoint)).await?;
            println!(
                "exported {} records to {} (log size {} at the time)",
                summary.bundles,
                out.display(),
                summary.log_size
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { out, db } => {
            let storage = open(&db).await?;
            storage.backup_to(&out).await.with_context(|| {
                format!("backup to {} failed; nothing was written", out.display())
            })?;
            println!(
                "backup written to {} (the log signing key is not in it: keep that apart)",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            db,
            key,
            log_key,
            expect_checkpoint,
            report: report_dir,
        } => {
            let public = match log_key {
                Some(text) => LogPublicKey::from_vkey(&text).context("--log-key")?,
                None => LogSigner::load(&key.path(&db))
                    .context("verify needs the log's key: give --signing-key or --log-key")?
                    .public(),
            };
            let mut expected = Vec::new();
            for path in &expect_checkpoint {
                let note = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                expected.push(admin::ExpectedCheckpoint {
                    label: path.display().to_string(),
                    note,
                });
            }
            let storage = open(&db).await?;
            let report =
                admin::verify(storage.as_ref(), &public, &expected, report_dir.as_deref()).await?;
            if let Some(dir) = &report_dir {
                println!("evidence pack written to {}", dir.display());
            }
            for finding in &report.log_findings {
                println!("BAD {finding}");
            }
            for bad in &report.bad_versions {
                println!(
                    "BAD record {} revision {}: {}",
                    bad.record_id, bad.revision, bad.problem
                );
            }
            if let Some(b) = &report.audit_chain_break {
                println!("BAD audit chain: {b}");
            }
            if report.is_clean() {
                println!(
                    "ok: {} versions verified, log of {} entries matches {} signed checkpoint(s) (root {}), audit chain of {} entries intact",
                    report.versions_checked,
                    report.log_size,
                    report.checkpoints_checked,
                    report.log_root,
                    report.audit_entries_checked
                );
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "FAILED: {} of {} versions do not verify; {} log finding(s){}",
                    report.bad_versions.len(),
                    report.versions_checked,
                    report.log_findings.len(),
                    if report.audit_chain_break.is_some() {
                        "; the audit chain is broken"
                    } else {
                        ""
                    }
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
