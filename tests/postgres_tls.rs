//! The server's PostgreSQL connection over TLS (rustls), against a PostgreSQL of the test's
//! own: a throwaway cluster on 127.0.0.1 with a certificate from a test authority, so the
//! machine's shared PostgreSQL is never reconfigured. Needs the PostgreSQL server binaries
//! (`initdb`, `pg_ctl`); under CI their absence fails the test, elsewhere it is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod server_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ambulance_epr::server::open_storage;
use ambulance_epr::server::storage::pg_tls::{self, PgSslMode};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// The directory holding `initdb` and `pg_ctl`, if PostgreSQL's server binaries are here.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let program = bin.join(tool);
    let out = if is_root {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program)
            .args(args)
            .output()
    } else {
        Command::new(&program).args(args).output()
    };
    out.unwrap_or_else(|e| panic!("{tool} could not run: {e}"))
}

/// A throwaway cluster with TLS on; stopped when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    fn start(bin: PathBuf, cert_pem: &str, key_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The cluster's files must belong to the user PostgreSQL runs as.
        let owner = |path: &Path| {
            if let (Ok(uid), Ok(gid)) = (id_of("-u"), id_of("-g")) {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            }
        };
        owner(dir.path());
        let data = dir.path().join("data");
        let out = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        owner(&cert);
        owner(&key);
        let port = server_free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c fsync=off",
            dir.path().display(),
            cert.display(),
            key.display()
        );
        let log = dir.path().join("log");
        let out = as_postgres(
            &bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self {
            bin,
            data,
            port,
            _dir: dir,
        }
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

fn id_of(flag: &str) -> Result<u32, ()> {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .map_err(|_| ())?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| ())
}

fn server_free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A test authority and a server certificate it signed for 127.0.0.1 only.
fn certificates() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca_pem, server.pem(), server_key.serialize_pem())
}

/// How many of this cluster's client connections are not encrypted.
async fn plain_connections(url_with_tls: &str) -> i64 {
    let request = pg_tls::split_url(url_with_tls).unwrap();
    let mut config: tokio_postgres::Config = request.url.parse().unwrap();
    let mode = request.mode.unwrap();
    config.ssl_mode(pg_tls::negotiation(mode));
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
        pg_tls::client_config(mode, request.root_cert.as_deref()).unwrap(),
    );
    let (client, connection) = config.connect(tls).await.unwrap();
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.backend_type = 'client backend' AND NOT s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reaches_postgresql_over_tls_and_checks_who_answers() {
    let Some(bin) = postgres_bin() else {
        assert!(
            !server_common::under_ci(),
            "PostgreSQL's server binaries (initdb, pg_ctl) are needed for the TLS test under CI"
        );
        eprintln!("SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let (ca_pem, cert_pem, key_pem) = certificates();
    let (other_ca_pem, _, _) = certificates();
    let pg = PrivatePostgres::start(bin, &cert_pem, &key_pem);
    let roots = tempfile::tempdir().unwrap();
    let ca = roots.path().join("ca.pem");
    let other_ca = roots.path().join("other-ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    std::fs::write(&other_ca, &other_ca_pem).unwrap();

    // verify-full with the right authority: the server's own pool (migrations included)
    // connects, and every client connection to the cluster is encrypted.
    let good = pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let storage = open_storage(&good).await.unwrap();
    assert_eq!(storage.backend(), "postgres");
    assert!(
        ambulance_epr::server::admin::stats(storage.as_ref())
            .await
            .is_ok()
    );
    assert_eq!(plain_connections(&good).await, 0);

    // A certificate from an authority we do not trust is refused.
    let wrong = pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
    );
    let err = open_storage(&wrong).await.unwrap_err().to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // The right authority but another name: verify-full refuses, verify-ca accepts.
    let by_name = |mode: &str| {
        pg.url(
            "localhost",
            &format!("sslmode={mode}&sslrootcert={}", ca.display()),
        )
    };
    let err = open_storage(&by_name("verify-full"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    open_storage(&by_name("verify-ca")).await.unwrap();

    // require encrypts without checking who answers (libpq's meaning).
    let required = pg.url("127.0.0.1", "sslmode=require");
    open_storage(&required).await.unwrap();
    assert_eq!(plain_connections(&required).await, 0);
    assert_eq!(
        pg_tls::split_url(&required).unwrap().mode,
        Some(PgSslMode::Require)
    );
}
