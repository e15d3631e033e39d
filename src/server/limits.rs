//! What keeps one client, or a flood of anonymous ones, from taking the server down.
//!
//! Owns the client address every request is judged by ([`ClientAddr`]), the per-address rate
//! limit on unauthenticated work (logins, enrolments, refused tokens), the global bound on
//! concurrent password checks (each Argon2id check holds 128 MiB), and the connection cap
//! ([`CappedAcceptor`]). The connection-level timeouts are set where the listener is built
//! ([`super::serve`]).
//!
//! Order of checks on an unauthenticated request: the per-address limit first (no database
//! work), then a password-check permit (no database write), then the database. A refusal from
//! either limit writes nothing.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;

/// The address a request came from: the TCP peer, or behind a TLS proxy the address the
/// proxy appended to `X-Forwarded-For`. `None` only when the router runs without a listener
/// (in-process tests); such requests share one rate-limit bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// As written to the audit and logs.
    pub fn text(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }

    /// The rate-limit bucket: the address itself for IPv4, its /64 for IPv6 (one subscriber
    /// usually holds a whole /64, so per-address buckets there would be no limit at all).
    pub fn bucket(&self) -> IpAddr {
        match self.0 {
            Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let segments = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
            Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            Some(ip) => ip,
            None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        }
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// The last address in the last `X-Forwarded-For` header: the one our own proxy appended.
/// Earlier entries are whatever the client chose to send and are never trusted.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let text = last.to_str().ok()?;
    text.rsplit(',').next()?.trim().parse().ok()
}

/// Middleware: works out the [`ClientAddr`] and puts it in the request's extensions.
/// `behind_proxy` is `--behind-tls-proxy`.
pub async fn client_address(
    State(behind_proxy): State<bool>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = if behind_proxy {
        forwarded_for(req.headers()).or(peer)
    } else {
        peer
    };
    req.extensions_mut().insert(ClientAddr(ip));
    next.run(req).await
}

/// The limits shared by every request.
#[derive(Debug)]
pub struct Limits {
    auth: DefaultKeyedRateLimiter<IpAddr>,
    auth_checks: AtomicU64,
    password_checks: Arc<Semaphore>,
}

/// How many limiter checks between sweeps of idle buckets (bounds its memory).
const SWEEP_EVERY_CHECKS: u64 = 1024;

/// Seconds a client is told to wait when every password-check slot is busy.
pub const BUSY_RETRY_AFTER_SECS: u64 = 2;

impl Limits {
    /// `auth_per_minute` unauthenticated attempts per address per minute, at most
    /// `auth_burst` at once; `password_checks` concurrent Argon2id checks in the process.
    pub fn new(auth_per_minute: u32, auth_burst: u32, password_checks: usize) -> Self {
        let per_minute = NonZeroU32::new(auth_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(auth_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            auth: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            auth_checks: AtomicU64::new(0),
            password_checks: Arc::new(Semaphore::new(password_checks.max(1))),
        }
    }

    /// Counts one unauthenticated attempt from `client`; a 429 with `Retry-After` when over.
    pub fn check_auth_rate(&self, client: &ClientAddr) -> Result<(), ApiError> {
        if self
            .auth_checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY_CHECKS)
        {
            self.auth.retain_recent();
            self.auth.shrink_to_fit();
        }
        self.auth.check_key(&client.bucket()).map_err(|not_until| {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1);
            tracing::warn!(client = %client, "too many attempts from one address");
            ApiError::Client {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "rate_limited",
                message: format!(
                    "too many attempts from this address; try again in {wait} seconds"
                ),
                retry_after_secs: Some(wait),
            }
        })
    }

    /// A slot for one password check, or a 503 with `Retry-After` if all are busy: a flood
    /// waits nowhere and holds no memory.
    pub fn password_check_permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.password_checks)
            .try_acquire_owned()
            .map_err(|_| {
                tracing::warn!("every password-check slot is busy");
                ApiError::Client {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "server_busy",
                    message: format!(
                        "the server is busy checking other sign-ins; try again in {BUSY_RETRY_AFTER_SECS} seconds"
                    ),
                    retry_after_secs: Some(BUSY_RETRY_AFTER_SECS),
                }
            })
    }
}

/// An acceptor that refuses (closes at once) connections beyond a cap, wrapping another
/// acceptor (plain or TLS). Each accepted stream holds its slot until it is dropped.
#[derive(Debug, Clone)]
pub struct CappedAcceptor<A> {
    inner: A,
    slots: Arc<Semaphore>,
}

impl<A> CappedAcceptor<A> {
    pub fn new(inner: A, max_connections: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

type BoxedAccept<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl<I, S, A> axum_server::accept::Accept<I, S> for CappedAcceptor<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Counted<A::Stream>;
    type Service = A::Service;
    type Future = BoxedAccept<(Self::Stream, Self::Service)>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            tracing::warn!("connection refused: the connection limit is reached");
            drop(stream);
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        let accepting = self.inner.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = accepting.await?;
            Ok((
                Counted {
                    inner: stream,
                    _slot: slot,
                },
                service,
            ))
        })
    }
}

/// A connection that holds one of the capped slots while it is open.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    _slot: OwnedSemaphorePermit,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_v4_is_v4() {
        let a = ClientAddr(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        let b = ClientAddr(Some("2001:db8:1:2:bbbb::9".parse().unwrap()));
        let c = ClientAddr(Some("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(a.bucket(), b.bucket());
        assert_ne!(a.bucket(), c.bucket());
        let mapped = ClientAddr(Some("::ffff:192.0.2.7".parse().unwrap()));
        assert_eq!(mapped.bucket(), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(ClientAddr(None).text(), "unknown");
    }

    #[test]
    fn only_the_address_our_proxy_appended_is_trusted() {
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.4".parse().unwrap(),
        );
        assert_eq!(forwarded_for(&h), Some("198.51.100.4".parse().unwrap()));
        h.append("x-forwarded-for", "192.0.2.1".parse().unwrap());
        assert_eq!(forwarded_for(&h), Some("192.0.2.1".parse().unwrap()));
        let mut bad = HeaderMap::new();
        bad.append("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(forwarded_for(&bad), None);
    }

    #[test]
    fn the_address_limit_refuses_with_a_wait_and_other_addresses_are_untouched() {
        let limits = Limits::new(2, 2, 1);
        let one = ClientAddr(Some("192.0.2.1".parse().unwrap()));
        let two = ClientAddr(Some("192.0.2.2".parse().unwrap()));
        assert!(limits.check_auth_rate(&one).is_ok());
        assert!(limits.check_auth_rate(&one).is_ok());
        match limits.check_auth_rate(&one) {
            Err(ApiError::Client {
                status,
                retry_after_secs: Some(wait),
                ..
            }) => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert!((1..=60).contains(&wait), "{wait}");
            }
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(limits.check_auth_rate(&two).is_ok());
    }

    #[test]
    fn password_checks_beyond_the_bound_are_refused_until_one_ends() {
        let limits = Limits::new(10, 10, 2);
        let a = limits.password_check_permit().unwrap();
        let _b = limits.password_check_permit().unwrap();
        assert!(matches!(
            limits.password_check_permit(),
            Err(ApiError::Client { status, .. }) if status == StatusCode::SERVICE_UNAVAILABLE
        ));
        drop(a);
        assert!(limits.password_check_permit().is_ok());
    }
}
