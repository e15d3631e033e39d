//! The supervisor's HTTP client for the review API: sign in, the review queue, one record's
//! versions and decisions, and making a decision.
//!
//! Owns only the requests and the sorting of failures into what a supervisor can act on
//! ([`ReviewError`]). Holds no state between calls: the caller keeps the session token (in
//! memory only) and passes it in. It is not part of sync: the tablet's outbox never goes
//! through it, and it runs only while a supervisor uses the review screen.
//!
//! May import `protocol` (the messages), reqwest, and the TLS provider set-up it shares with
//! the device client ([`crate::sync::client::install_crypto_provider`]). Never egui, never the
//! device store, never logs documents, names or comments.

pub mod proof;

use std::time::Duration;

use uuid::Uuid;

use crate::protocol::{
    API_PREFIX, DecisionRecord, DecisionRequest, ErrorBody, LoginRequest, LoginResponse,
    ReviewDetail, ReviewList, ReviewQuery,
};

/// Why a review request failed, sorted by what the supervisor can do about it. Messages are
/// sentences without patient data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// The address is refused before any connection (not https://, or http:// to another
    /// computer): see [`crate::sync::client::check_server_address`].
    #[error("{0}")]
    BadAddress(String),
    /// Network down, timeout, 429 or 5xx: try again later.
    #[error("cannot reach the review server ({0}); check the address and the network, then retry")]
    Unreachable(String),
    /// Sign-in refused: wrong username or password.
    #[error("the username or password is wrong")]
    WrongCredentials,
    /// Sign-in refused for a while after repeated failures.
    #[error("{0}")]
    TooManyAttempts(String),
    /// 401 on a review call: the session expired, was revoked, or the token is not a
    /// supervisor session at all (a tablet's device token, for example).
    #[error(
        "the server no longer accepts this session (it has expired, or it is not a supervisor sign-in); sign in again"
    )]
    SessionEnded,
    /// 403: the account is not allowed to review.
    #[error("this account may not review records")]
    Forbidden,
    /// 409: the crew amended the record after the version the decision names.
    #[error("{0}")]
    Superseded(String),
    /// 404: no completed record with that id.
    #[error("no completed record with that id is on the server")]
    NotFound,
    /// Any other refusal, with the server's machine code and sentence.
    #[error("the server refused the request ({status}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl ReviewError {
    /// True when trying the same request again later may work.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ReviewError::Unreachable(_))
    }
}

/// A client for the supervisor endpoints of `/api/v1`.
#[derive(Debug, Clone)]
pub struct ReviewClient {
    http: reqwest::Client,
    base_url: String,
}

/// Longest any single review request may take.
pub const REVIEW_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

impl ReviewClient {
    /// A client for `base_url` (e.g. `https://epr.example.nhs.uk`; a trailing `/api/v1` is
    /// accepted too).
    pub fn new(base_url: &str) -> Result<Self, ReviewError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix(API_PREFIX).unwrap_or(trimmed);
        let trimmed =
            crate::sync::client::check_server_address(trimmed).map_err(ReviewError::BadAddress)?;
        crate::sync::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REVIEW_REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("ambulance-epr-review/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ReviewError::Unreachable("the HTTP client could not start".to_owned()))?;
        Ok(Self {
            http,
            base_url: trimmed,
        })
    }

    /// The server's base URL as used (without `/api/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.base_url)
    }

    fn network_error(e: &reqwest::Error) -> ReviewError {
        ReviewError::Unreachable(
            if e.is_timeout() {
                "no answer in time"
            } else if e.is_connect() {
                "no connection"
            } else {
                "the connection failed"
            }
            .to_owned(),
        )
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ReviewError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let code = status.as_u16();
        let body: Option<ErrorBody> = response.json().await.ok();
        let (error, message) = body.map_or_else(
            || {
                (
                    String::new(),
                    status.canonical_reason().unwrap_or("error").to_owned(),
                )
            },
            |b| (b.error, b.message),
        );
        Err(match code {
            401 if error == "invalid_credentials" => ReviewError::WrongCredentials,
            401 => ReviewError::SessionEnded,
            403 => ReviewError::Forbidden,
            404 => ReviewError::NotFound,
            409 => ReviewError::Superseded(message),
            429 if error == "too_many_attempts" => ReviewError::TooManyAttempts(message),
            408 | 429 => ReviewError::Unreachable(format!("the server is busy ({code})")),
            _ if status.is_server_error() => {
                ReviewError::Unreachable(format!("the server is failing ({code})"))
            }
            _ => ReviewError::Refused {
                status: code,
                code: error,
                message,
            },
        })
    }

    async fn read<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, ReviewError> {
        Self::check(response).await?.json().await.map_err(|_| {
            ReviewError::Unreachable("the server's answer could not be read".to_owned())
        })
    }

    /// Signs a supervisor in; the answer's token is a session token for the other calls.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse, ReviewError> {
        let response = self
            .http
            .post(self.url("/auth/login"))
            .json(&LoginRequest {
                username: username.trim().to_owned(),
                password: password.to_owned(),
            })
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::read(response).await
    }

    /// Ends the session on the server: its token is refused from then on. Best effort: a
    /// session the server cannot be told about still ends by its idle timeout.
    pub async fn logout(&self, token: &str) -> Result<(), ReviewError> {
        let response = self
            .http
            .post(self.url("/auth/logout"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::check(response).await.map(|_| ())
    }

    /// One page of the review queue.
    pub async fn list(&self, token: &str, query: &ReviewQuery) -> Result<ReviewList, ReviewError> {
        let response = self
            .http
            .get(self.url("/review/encounters"))
            .bearer_auth(token)
            .query(query)
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::read(response).await
    }

    /// Every tablet with what it last reported still holding.
    pub async fn tablets(
        &self,
        token: &str,
    ) -> Result<crate::protocol::TabletsResponse, ReviewError> {
        let response = self
            .http
            .get(self.url("/review/tablets"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::read(response).await
    }

    /// Every signed version of one record and every decision on it.
    pub async fn detail(&self, token: &str, record_id: Uuid) -> Result<ReviewDetail, ReviewError> {
        let response = self
            .http
            .get(self.url(&format!("/review/encounters/{record_id}")))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::read(response).await
    }

    /// The server log's key rotation statements (each signed by the key it replaces).
    pub async fn key_rotations(
        &self,
        token: &str,
    ) -> Result<crate::protocol::KeyRotationsResponse, ReviewError> {
        let response = self
            .http
            .get(self.url("/log/key-rotations"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::read(response).await
    }

    /// Records a decision on the revision named in `request`.
    pub async fn decide(
        &self,
        token: &str,
        record_id: Uuid,
        request: &DecisionRequest,
    ) -> Result<DecisionRecord, ReviewError> {
        let response = self
            .http
            .post(self.url(&format!("/review/encounters/{record_id}/decision")))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .map_err(|e| Self::network_error(&e))?;
        Self::read(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_normalised() {
        for bad in [
            "epr.example",
            "https://",
            "http://epr.example",
            "ftp://epr.example",
        ] {
            assert!(
                matches!(ReviewClient::new(bad), Err(ReviewError::BadAddress(m)) if m.contains("https://")),
                "{bad}"
            );
        }
        assert!(ReviewClient::new("http://127.0.0.1:8080").is_ok());
        let c = ReviewClient::new(" https://epr.example/api/v1/ ").unwrap();
        assert_eq!(c.base_url(), "https://epr.example");
    }
}
