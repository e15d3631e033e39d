//! The HTTP side of sync: one `reqwest` client with bounded timeouts, and the mapping of
//! every failure onto the three kinds the engine acts on (DESIGN.md, Sync).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::protocol::{
    API_PREFIX, CheckpointResponse, ConsistencyResponse, DeviceReport, DeviceReportResponse,
    EnrollRequest, EnrollResponse, ErrorBody, FeedbackResponse, InclusionRequest,
    InclusionResponse, KeyRotationsResponse, PushResponse, RecoverRequest, RecoveryInfo,
    RestoreDecisionsRequest, RestoreDecisionsResponse,
};

/// Why a request failed, sorted by what the engine should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Network down, timeout, 408, 429 or 5xx: retry later with backoff.
    #[error("{0}")]
    Transient(String),
    /// 401 or 403: the device token was refused; stop and tell the user.
    #[error(
        "the server refused this tablet's credentials ({0}); it may have been revoked: enrol it again"
    )]
    Credentials(u16),
    /// Any other 4xx for the request as a whole: the content is at fault, not the network.
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The server address is refused before any connection is made (see
    /// [`check_server_address`]).
    #[error("{0}")]
    BadAddress(String),
}

/// Checks a server address before anything is sent to it, and returns it without a trailing
/// `/`. Patient records travel only over `https://`; plain `http://` is accepted only for a
/// loopback literal (`127.0.0.1`, `[::1]`): a test server on this same computer. Refused
/// addresses never cause a connection attempt.
pub fn check_server_address(address: &str) -> Result<String, String> {
    let trimmed = address.trim().trim_end_matches('/');
    let must =
        "This server address must start with https:// (for example https://epr.example.nhs.uk)";
    let url = reqwest::Url::parse(trimmed).map_err(|_| must.to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("This server address must not contain a username or password".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("This server address must not contain '?' or '#'".to_owned());
    }
    // A literal only: a name such as `localhost` is whatever the resolver says it is.
    let loopback_literal = |host: &str| {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    };
    match (url.scheme(), url.host_str().filter(|h| !h.is_empty())) {
        ("https", Some(_)) => Ok(trimmed.to_owned()),
        ("http", Some(host)) if loopback_literal(host) => Ok(trimmed.to_owned()),
        ("http", Some(_)) => Err(format!(
            "{must}; plain http:// is allowed only for 127.0.0.1 or [::1] on this computer"
        )),
        _ => Err(must.to_owned()),
    }
}

/// Installs ring as rustls's crypto provider (reqwest is built with `rustls-no-provider`).
/// Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A thin client for the device endpoints of `/api/v1`.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    /// Server clock minus this tablet's, in seconds, from the `Date` of the last answer.
    clock_skew_secs: Arc<Mutex<Option<i64>>>,
}

/// How far the server's clock (an HTTP `Date` header) is ahead of `local_now`, in whole
/// seconds; negative when the tablet is ahead. `None` for a header that is not a date.
pub fn clock_skew_secs(server_date: &str, local_now: DateTime<Utc>) -> Option<i64> {
    let server = DateTime::parse_from_rfc2822(server_date.trim()).ok()?;
    Some((server.with_timezone(&Utc) - local_now).num_seconds())
}

impl ApiClient {
    /// A client for `base_url` (e.g. `https://epr.example.nhs.uk`), every call bounded by
    /// `request_timeout`.
    pub fn new(base_url: &str, request_timeout: Duration) -> Result<Self, RequestError> {
        let base_url = check_server_address(base_url).map_err(RequestError::BadAddress)?;
        install_crypto_provider();
        let http = reqwest::Client::builder()
            // A redirect would re-send a body (307/308) or a token somewhere unchecked.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("ambulance-epr/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RequestError::Transient(format!("cannot start the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url,
            clock_skew_secs: Arc::new(Mutex::new(None)),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base_url)
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, RequestError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let code = status.as_u16();
        if code == 401 || code == 403 {
            return Err(RequestError::Credentials(code));
        }
        if status.is_redirection() {
            return Err(RequestError::Refused {
                status: code,
                message: "the server answered with a redirect, which this tablet does not follow; check the server address".to_owned(),
            });
        }
        let body: Option<ErrorBody> = response.json().await.ok();
        let message = body
            .map(|b| b.message)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        if code == 408 || code == 429 || status.is_server_error() {
            return Err(RequestError::Transient(format!(
                "the server is busy or failing ({code}): {message}"
            )));
        }
        Err(RequestError::Refused {
            status: code,
            message,
        })
    }

    fn network_error(e: reqwest::Error) -> RequestError {
        if e.is_timeout() {
            RequestError::Transient("the server did not answer in time".to_owned())
        } else if e.is_connect() {
            RequestError::Transient("cannot reach the server".to_owned())
        } else {
            RequestError::Transient("the connection to the server failed".to_owned())
        }
    }

    /// Sends a request and reads its JSON answer, sorting every failure into a
    /// [`RequestError`]. The one path all device endpoints share.
    async fn send<R: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<R, RequestError> {
        let response = request.send().await.map_err(Self::network_error)?;
        self.note_server_clock(&response);
        Self::check(response)
            .await?
            .json()
            .await
            .map_err(|_| RequestError::Transient("the server's answer was cut short".to_owned()))
    }

    /// Keeps how far the server's clock is from ours, from any answer that carries a date.
    fn note_server_clock(&self, response: &reqwest::Response) {
        let skew = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| clock_skew_secs(d, Utc::now()));
        if let Some(skew) = skew
            && let Ok(mut cell) = self.clock_skew_secs.lock()
        {
            *cell = Some(skew);
        }
    }

    /// The server's clock minus this tablet's at the last answer, in seconds.
    pub fn clock_skew_secs(&self) -> Option<i64> {
        self.clock_skew_secs.lock().ok().and_then(|c| *c)
    }

    /// Enrols this device with a one-time code.
    pub async fn enroll(&self, request: &EnrollRequest) -> Result<EnrollResponse, RequestError> {
        self.send(self.http.post(self.url("/devices/enroll")).json(request))
            .await
    }

    /// Pushes one batch of versions; the body must serialise as a
    /// [`crate::protocol::PushRequest`].
    pub async fn push<T: serde::Serialize + ?Sized>(
        &self,
        token: &str,
        request: &T,
    ) -> Result<PushResponse, RequestError> {
        let body = serde_json::to_vec(request).map_err(|e| RequestError::Refused {
            status: 0,
            message: e.to_string(),
        })?;
        self.push_json(token, body).await
    }

    /// Pushes a batch already serialised as a JSON [`crate::protocol::PushRequest`] (owned, so
    /// the request can run on its own task while the next batch is prepared).
    pub async fn push_json(
        &self,
        token: &str,
        body: Vec<u8>,
    ) -> Result<PushResponse, RequestError> {
        self.send(
            self.http
                .post(self.url("/sync/push"))
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
    }

    /// Pulls supervisor decisions after `since`.
    pub async fn feedback(
        &self,
        token: &str,
        since: i64,
    ) -> Result<FeedbackResponse, RequestError> {
        self.send(
            self.http
                .get(self.url("/sync/feedback"))
                .bearer_auth(token)
                .query(&[("since", since)]),
        )
        .await
    }

    /// Reports what the tablet still holds; `None` from a server that does not take reports
    /// (404).
    pub async fn device_report(
        &self,
        token: &str,
        report: &DeviceReport,
    ) -> Result<Option<DeviceReportResponse>, RequestError> {
        let request = self
            .http
            .post(self.url("/sync/report"))
            .bearer_auth(token)
            .json(report);
        match self.send(request).await {
            Ok(r) => Ok(Some(r)),
            Err(RequestError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The trust's reference data when the server holds a version newer than `have`; `None`
    /// from a server that does not serve it (404).
    pub async fn reference(
        &self,
        token: &str,
        have: Option<u64>,
    ) -> Result<Option<crate::protocol::ReferenceResponse>, RequestError> {
        let mut request = self.http.get(self.url("/reference")).bearer_auth(token);
        if let Some(have) = have {
            request = request.query(&[("have", have)]);
        }
        match self.send(request).await {
            Ok(r) => Ok(Some(r)),
            Err(RequestError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The server log's current signed checkpoint; `None` from a server without a log (404).
    pub async fn log_checkpoint(
        &self,
        token: &str,
    ) -> Result<Option<CheckpointResponse>, RequestError> {
        let request = self
            .http
            .get(self.url("/log/checkpoint"))
            .bearer_auth(token);
        match self.send(request).await {
            Ok(r) => Ok(Some(r)),
            Err(RequestError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The server's key rotation statements.
    pub async fn log_key_rotations(
        &self,
        token: &str,
    ) -> Result<KeyRotationsResponse, RequestError> {
        self.send(
            self.http
                .get(self.url("/log/key-rotations"))
                .bearer_auth(token),
        )
        .await
    }

    /// What a server rebuilt from its tablets shows a returning tablet (no credentials);
    /// `None` from a server that was not rebuilt (404).
    pub async fn recovery_info(
        &self,
        verified_size: u64,
    ) -> Result<Option<RecoveryInfo>, RequestError> {
        let request = self
            .http
            .get(self.url("/recovery"))
            .query(&[("verified_size", verified_size)]);
        match self.send(request).await {
            Ok(r) => Ok(Some(r)),
            Err(RequestError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes this tablet's place again in a server rebuilt from its tablets.
    pub async fn recover(&self, request: &RecoverRequest) -> Result<EnrollResponse, RequestError> {
        self.send(self.http.post(self.url("/devices/recover")).json(request))
            .await
    }

    /// Sends back decisions received from a server since rebuilt.
    pub async fn restore_decisions(
        &self,
        token: &str,
        request: &RestoreDecisionsRequest,
    ) -> Result<RestoreDecisionsResponse, RequestError> {
        self.send(
            self.http
                .post(self.url("/recovery/decisions"))
                .bearer_auth(token)
                .json(request),
        )
        .await
    }

    /// The consistency proof from the log's first `old_size` leaves to its first `size`.
    pub async fn log_consistency(
        &self,
        token: &str,
        old_size: u64,
        size: u64,
    ) -> Result<ConsistencyResponse, RequestError> {
        self.send(
            self.http
                .get(self.url("/log/consistency"))
                .bearer_auth(token)
                .query(&[("old_size", old_size), ("size", size)]),
        )
        .await
    }

    /// Inclusion proofs for leaves in the tree of `size` leaves.
    pub async fn log_inclusion(
        &self,
        token: &str,
        request: &InclusionRequest,
    ) -> Result<InclusionResponse, RequestError> {
        self.send(
            self.http
                .post(self.url("/log/inclusion"))
                .bearer_auth(token)
                .json(request),
        )
        .await
    }

    /// A cheap reachability probe (no authentication, no patient data).
    pub async fn health(&self) -> bool {
        match self
            .http
            .get(self.url("/health"))
            .timeout(Duration::from_secs(3))
            .send()
            .await
        {
            Ok(r) => {
                self.note_server_clock(&r);
                r.status().is_success()
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_server_date_header_gives_the_clock_difference() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 2, 7, 35, 0)
            .single()
            .unwrap();
        assert_eq!(
            clock_skew_secs("Wed, 02 Dec 2026 07:35:00 GMT", now),
            Some(0)
        );
        assert_eq!(
            clock_skew_secs("Wed, 02 Dec 2026 07:38:30 GMT", now),
            Some(210)
        );
        assert_eq!(
            clock_skew_secs("Wed, 02 Dec 2026 07:30:00 GMT", now),
            Some(-300)
        );
        assert_eq!(clock_skew_secs("yesterday", now), None);
    }

    #[test]
    fn plain_http_is_refused_unless_the_host_is_a_loopback_literal() {
        for ok in [
            "https://epr.example.nhs.uk/",
            "https://10.1.2.3:8443",
            "http://127.0.0.1:8080",
            "http://[::1]:8080/",
        ] {
            assert!(check_server_address(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_server_address(" https://epr.example/ ").unwrap(),
            "https://epr.example"
        );
        for bad in [
            "http://epr.example.nhs.uk",
            "http://localhost:8080",
            "http://10.1.2.3",
            "epr.example",
            "ftp://epr.example",
            "https://",
        ] {
            let refusal = check_server_address(bad).unwrap_err();
            assert!(
                refusal.contains("must start with https://"),
                "{bad}: {refusal}"
            );
        }
        assert!(check_server_address("https://user:pw@epr.example").is_err());
        assert!(matches!(
            ApiClient::new("http://epr.example", Duration::from_secs(1)),
            Err(RequestError::BadAddress(_))
        ));
    }

    /// `localhost` is a name, not a literal: refused before any connection is tried, which a
    /// listener on the loopback address it would resolve to can see.
    #[tokio::test]
    async fn a_refused_address_is_never_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = crate::sync::engine::request_enrolment(
            &format!("http://localhost:{port}"),
            &crate::protocol::EnrollRequest {
                code: "X".into(),
                public_key: "K".into(),
                proof: "P".into(),
            },
        )
        .await;
        assert!(refused.is_err());
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was attempted");
    }
}
