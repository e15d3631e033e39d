//! A fault-injecting TCP proxy for sync tests, on loopback only.
//!
//! Sits between the device and the server and, on command: refuses connections, adds latency,
//! cuts a connection partway through a request, or cuts it after the server has started to
//! answer (the response is lost after the commit: the duplicate-maker). Faults are decided per
//! chunk with the configured probabilities, from a seeded generator so failures reproduce.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to traffic right now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Accept and immediately close every connection.
    pub refuse: bool,
    /// Delay before forwarding each chunk.
    pub latency: Duration,
    /// Probability of forwarding half of a request chunk and then cutting the connection.
    pub cut_request: f64,
    /// Probability of dropping the server's answer and cutting the connection.
    pub cut_response: f64,
}

/// Counts of what the proxy did, for assertions that faults really happened.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub connections: AtomicU64,
    pub refused: AtomicU64,
    pub requests_cut: AtomicU64,
    pub responses_cut: AtomicU64,
}

/// A running proxy.
pub struct FaultProxy {
    pub addr: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    upstream: Arc<Mutex<SocketAddr>>,
    pub stats: Arc<ProxyStats>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let faults = Arc::new(Mutex::new(Faults::default()));
        let upstream = Arc::new(Mutex::new(upstream));
        let stats = Arc::new(ProxyStats::default());
        let (f, u, s) = (faults.clone(), upstream.clone(), stats.clone());
        let task = tokio::spawn(async move {
            let mut conn_seed = seed;
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                conn_seed = conn_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let faults = *f.lock().expect("faults");
                let upstream = *u.lock().expect("upstream");
                s.connections.fetch_add(1, Ordering::Relaxed);
                if faults.refuse {
                    s.refused.fetch_add(1, Ordering::Relaxed);
                    drop(client);
                    continue;
                }
                let (f2, s2) = (f.clone(), s.clone());
                tokio::spawn(async move {
                    let _ = relay(client, upstream, f2, s2, conn_seed).await;
                });
            }
        });
        FaultProxy {
            addr,
            faults,
            upstream,
            stats,
            task,
        }
    }

    /// Changes the faults for new chunks and connections.
    pub fn set(&self, faults: Faults) {
        *self.faults.lock().expect("faults") = faults;
    }

    /// Points the proxy at a new server address (after a restart on another port).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().expect("upstream") = upstream;
    }

    /// The base URL devices should use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: Arc<Mutex<Faults>>,
    stats: Arc<ProxyStats>,
    seed: u64,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut from_client = vec![0u8; 64 * 1024];
    let mut from_server = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = client.read(&mut from_client) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                let f = *faults.lock().expect("faults");
                if !f.latency.is_zero() { tokio::time::sleep(f.latency).await; }
                if rng.random_bool(f.cut_request.clamp(0.0, 1.0)) {
                    server.write_all(&from_client[..n / 2]).await?;
                    stats.requests_cut.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                server.write_all(&from_client[..n]).await?;
            }
            n = server.read(&mut from_server) => {
                let n = n?;
                if n == 0 { return Ok(()); }
                let f = *faults.lock().expect("faults");
                if !f.latency.is_zero() { tokio::time::sleep(f.latency).await; }
                if rng.random_bool(f.cut_response.clamp(0.0, 1.0)) {
                    stats.responses_cut.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                client.write_all(&from_server[..n]).await?;
            }
        }
    }
}
