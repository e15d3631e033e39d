//! `epr-server serve` with `--tls-cert` and `--tls-key`: HTTPS with rustls, no plaintext on
//! the same port, and a graceful stop on SIGTERM. Certificates are made for the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_with_tls_answers_https_only_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let port = support::net::free_port_below_ephemeral();
    let mut child = Command::new(env!("CARGO_BIN_EXE_epr-server"))
        .args([
            "serve",
            "--database",
            &format!("sqlite://{}", dir.path().join("server.db").display()),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    ambulance_epr::sync::client::install_crypto_provider();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/api/v1/health");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body: serde_json::Value = loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited at start-up: {status}");
        }
        match rt.block_on(https.get(&url).send()) {
            Ok(r) if r.status().is_success() => break rt.block_on(r.json()).unwrap(),
            _ => {
                assert!(Instant::now() < deadline, "no HTTPS answer within 20 s");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(body["status"], "ok");
    // Browsers are told to use nothing but HTTPS for this host.
    let answer = rt.block_on(https.get(&url).send()).unwrap();
    assert_eq!(
        answer.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // Plain HTTP on the TLS port gets no API answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let answer = rt.block_on(
        plain
            .get(format!("http://127.0.0.1:{port}/api/v1/health"))
            .send(),
    );
    assert!(
        answer.map(|r| !r.status().is_success()).unwrap_or(true),
        "plaintext must not be served"
    );

    // A client that does not trust the certificate is refused.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", addr)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert!(rt.block_on(untrusting.get(&url).send()).is_err());

    // SIGTERM: graceful shutdown, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
}
