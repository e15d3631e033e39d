//! The API's error type and the extractors that turn every client mistake into one.
//!
//! Every 4xx and 5xx body is [`ErrorBody`] (`{"error": code, "message": sentence}`). Client
//! mistakes map to 4xx with a message that names the problem but never echoes patient data;
//! server faults (storage) are logged with their cause and answered 503 with no detail.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::storage::StorageError;
use crate::protocol::ErrorBody;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client mistake: a 4xx with a stable code and a sentence.
    #[error("{code}: {message}")]
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
        /// Seconds for a `Retry-After` header (429).
        retry_after_secs: Option<u64>,
    },
    /// The database failed: logged, answered 503 so devices retry later.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A background task failed (for example a password check thread).
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 4xx answer.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 401: no, unknown or expired credential.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 408: the request did not finish in time (usually a stalled body).
    pub fn timeout(limit_secs: u64) -> Self {
        Self::client(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the request did not complete within {limit_secs} seconds"),
        )
    }
}

/// Serde's messages can quote the offending value, which may be clinical text: keep them
/// short and never log them.
fn short(text: String) -> String {
    const MAX_CHARS: usize = 300;
    if text.chars().count() <= MAX_CHARS {
        text
    } else {
        let mut t: String = text.chars().take(MAX_CHARS).collect();
        t.push('…');
        t
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message, retry) = match self {
            ApiError::Client {
                status,
                code,
                message,
                retry_after_secs,
            } => (status, code, message, retry_after_secs),
            ApiError::Storage(e) => {
                tracing::error!(error = %e, "storage failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server cannot reach its database; try again later".to_owned(),
                    Some(5),
                )
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the server could not complete the request; try again later".to_owned(),
                    Some(5),
                )
            }
        };
        let body = ErrorBody {
            error: code.to_owned(),
            message,
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Maps axum's JSON rejections to the API's codes. `limit_bytes` is the route's body limit,
/// stated in the 413 message.
pub fn json_rejection(rej: JsonRejection, limit_bytes: usize) -> ApiError {
    match rej {
        JsonRejection::MissingJsonContentType(_) => ApiError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::client(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            short(format!("the body is not valid JSON: {}", e.body_text())),
        ),
        JsonRejection::JsonDataError(e) => ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            short(format!(
                "the JSON does not have the expected shape: {}",
                e.body_text()
            )),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than the limit of {limit_bytes} bytes"),
            )
        }
        other => ApiError::client(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            short(format!("the body could not be read: {}", other.body_text())),
        ),
    }
}

/// `axum::Json` with [`ApiError`] rejections and the small default body limit.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Body limit of every route except push, in bytes.
pub const SMALL_BODY_LIMIT_BYTES: usize = 64 * 1024;

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej, SMALL_BODY_LIMIT_BYTES)),
        }
    }
}

/// `axum::extract::Path` with [`ApiError`] rejections.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(rej) => Err(path_rejection(rej)),
        }
    }
}

fn path_rejection(rej: PathRejection) -> ApiError {
    ApiError::client(
        StatusCode::BAD_REQUEST,
        "bad_path",
        short(format!("the URL path is not valid: {}", rej.body_text())),
    )
}

/// `axum::extract::Query` with [`ApiError`] rejections.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(query_rejection(rej)),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> ApiError {
    ApiError::client(
        StatusCode::BAD_REQUEST,
        "bad_query",
        short(format!(
            "the query string is not valid: {}",
            rej.body_text()
        )),
    )
}
