//! The review screens' background worker: one task on the app's runtime that makes the HTTP
//! calls and reports back over a channel with a repaint, so the UI thread never waits on the
//! network.
//!
//! The session token lives here, in memory only, and is forgotten on sign-out, on a 401 and
//! when the service is dropped (its guard aborts the task, and the token goes with it). The only thing
//! written to disk is the server address, after a successful sign-in ([`super::settings`]).

use std::path::PathBuf;
use std::sync::mpsc;

use uuid::Uuid;

use super::settings;
use crate::protocol::{DecisionRecord, DecisionRequest, ReviewDetail, ReviewList, ReviewQuery};
use crate::review_client::{ReviewClient, ReviewError};
use crate::ui::tasks::TaskGuard;
use crate::ui::worker::RepaintSignal;
use tokio::runtime::Handle;

/// What the review screens ask the network for.
#[derive(Clone, PartialEq)]
pub enum ReviewRequest {
    /// Sign in (and remember the address when it works).
    SignIn {
        server_url: String,
        username: String,
        password: crate::crypto::SecretText,
    },
    /// One page of the queue.
    List(ReviewQuery),
    /// One record's versions and decisions.
    Detail(Uuid),
    /// Every tablet and what it still holds.
    Tablets,
    /// A decision on a record.
    Decide {
        record_id: Uuid,
        request: DecisionRequest,
    },
    /// Forget the session token.
    SignOut,
}

impl std::fmt::Debug for ReviewRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, the search text or a comment.
        f.write_str(match self {
            ReviewRequest::SignIn { .. } => "SignIn(..)",
            ReviewRequest::List(_) => "List(..)",
            ReviewRequest::Detail(_) => "Detail(..)",
            ReviewRequest::Tablets => "Tablets",
            ReviewRequest::Decide { .. } => "Decide(..)",
            ReviewRequest::SignOut => "SignOut",
        })
    }
}

/// The network's answers, each tagged with the number of the request it answers.
#[derive(Debug)]
pub enum ReviewReply {
    SignedIn {
        seq: u64,
        result: Result<SignedIn, ReviewError>,
    },
    Listed {
        seq: u64,
        result: Result<ReviewList, ReviewError>,
    },
    Detail {
        seq: u64,
        result: Result<Box<CheckedDetail>, ReviewError>,
    },
    Tablets {
        seq: u64,
        result: Result<crate::protocol::TabletsResponse, ReviewError>,
    },
    Decided {
        seq: u64,
        record_id: Uuid,
        result: Result<DecisionRecord, ReviewError>,
    },
}

/// A successful sign-in (the token stays in the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub username: String,
    pub server_url: String,
    pub expires_at_utc: chrono::DateTime<chrono::Utc>,
}

/// The handle the review screen holds. Dropping it ends the task and forgets the token.
#[derive(Debug)]
pub struct ReviewService {
    /// Aborts the network task when the service is dropped.
    _task: TaskGuard,
    requests: tokio::sync::mpsc::UnboundedSender<(u64, ReviewRequest)>,
    replies: mpsc::Receiver<ReviewReply>,
    next_seq: u64,
    in_flight: usize,
}

struct Session {
    client: ReviewClient,
    token: zeroize::Zeroizing<String>,
}

impl ReviewService {
    /// Starts the network task on `runtime`. `data_dir` is where the server address is
    /// remembered.
    pub fn start(runtime: &Handle, data_dir: PathBuf, repaint: RepaintSignal) -> Self {
        let (req_tx, mut req_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, ReviewRequest)>();
        let (reply_tx, reply_rx) = mpsc::channel();
        let task = TaskGuard::spawn(runtime, async move {
            let mut session: Option<Session> = None;
            while let Some((seq, request)) = req_rx.recv().await {
                let reply = handle(&data_dir, &mut session, seq, &request).await;
                let Some(reply) = reply else { continue };
                if reply_tx.send(reply).is_err() {
                    break;
                }
                if let Some(ctx) = repaint.get() {
                    ctx.request_repaint();
                }
            }
        });
        Self {
            _task: task,
            requests: req_tx,
            replies: reply_rx,
            next_seq: 0,
            in_flight: 0,
        }
    }

    /// Sends a request; returns its number (answers carry it).
    pub fn send(&mut self, request: ReviewRequest) -> u64 {
        self.next_seq += 1;
        let answered = !matches!(request, ReviewRequest::SignOut);
        if self.requests.send((self.next_seq, request)).is_ok() && answered {
            self.in_flight += 1;
        }
        self.next_seq
    }

    /// The next answer, if one has arrived.
    pub fn try_recv(&mut self) -> Option<ReviewReply> {
        let reply = self.replies.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(reply)
    }

    /// Requests sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

async fn handle(
    data_dir: &std::path::Path,
    session: &mut Option<Session>,
    seq: u64,
    request: &ReviewRequest,
) -> Option<ReviewReply> {
    let not_signed_in = || ReviewError::SessionEnded;
    Some(match request {
        ReviewRequest::SignOut => {
            if let Some(ended) = session.take()
                && let Err(e) = ended.client.logout(&ended.token).await
            {
                tracing::info!(error = %e, "the server was not told of the sign-out");
            }
            return None;
        }
        ReviewRequest::SignIn {
            server_url,
            username,
            password,
        } => {
            let result = async {
                let client = ReviewClient::new(server_url)?;
                let login = client.login(username, password).await?;
                let signed_in = SignedIn {
                    username: username.trim().to_owned(),
                    server_url: client.base_url().to_owned(),
                    expires_at_utc: login.expires_at,
                };
                if let Err(e) = settings::save_server_url(data_dir, client.base_url()) {
                    tracing::warn!(error = %e, "could not remember the review server address");
                }
                *session = Some(Session {
                    client,
                    token: zeroize::Zeroizing::new(login.token),
                });
                Ok(signed_in)
            }
            .await;
            ReviewReply::SignedIn { seq, result }
        }
        ReviewRequest::List(query) => {
            let result = match session.as_ref() {
                Some(s) => s.client.list(&s.token, query).await,
                None => Err(not_signed_in()),
            };
            forget_on_401(session, &result);
            ReviewReply::Listed { seq, result }
        }
        ReviewRequest::Detail(id) => {
            let result = match session.as_ref() {
                Some(s) => match s.client.detail(&s.token, *id).await {
                    Ok(detail) => Ok(Box::new(checked(data_dir, s, detail).await)),
                    Err(e) => Err(e),
                },
                None => Err(not_signed_in()),
            };
            forget_on_401(session, &result);
            ReviewReply::Detail { seq, result }
        }
        ReviewRequest::Tablets => {
            let result = match session.as_ref() {
                Some(s) => s.client.tablets(&s.token).await,
                None => Err(not_signed_in()),
            };
            forget_on_401(session, &result);
            ReviewReply::Tablets { seq, result }
        }
        ReviewRequest::Decide { record_id, request } => {
            let result = match session.as_ref() {
                Some(s) => s.client.decide(&s.token, *record_id, request).await,
                None => Err(not_signed_in()),
            };
            forget_on_401(session, &result);
            ReviewReply::Decided {
                seq,
                record_id: *record_id,
                result,
            }
        }
    })
}

/// A record with this computer's own check of its signatures: the server's log key is pinned
/// the first time it is seen for this address; a different key later is accepted only through
/// rotation statements signed by the pinned one. The Ed25519 work runs off the UI thread.
async fn checked(
    data_dir: &std::path::Path,
    session: &Session,
    detail: ReviewDetail,
) -> CheckedDetail {
    use crate::review_client::proof::{SignatureCheck, check_detail};
    use crate::transparency::{LogPublicKey, follow_rotations};
    let server = session.client.base_url().to_owned();
    let offered = detail
        .proof
        .as_ref()
        .and_then(|p| LogPublicKey::from_vkey(&p.log_key).ok());
    let pinned =
        settings::pinned_log_key(data_dir, &server).and_then(|k| LogPublicKey::from_vkey(&k).ok());
    let key = match (pinned, offered) {
        (None, Some(offered)) => {
            if let Err(e) = settings::pin_log_key(data_dir, &server, &offered.to_vkey()) {
                tracing::warn!(error = %e, "could not remember the server's log key");
            }
            Some(offered)
        }
        (Some(pinned), Some(offered)) if pinned != offered => {
            match session.client.key_rotations(&session.token).await {
                Ok(r) => match follow_rotations(&pinned, &r.rotations, &offered) {
                    Ok(next) => {
                        if let Err(e) = settings::pin_log_key(data_dir, &server, &next.to_vkey()) {
                            tracing::warn!(error = %e, "could not remember the server's log key");
                        }
                        Some(next)
                    }
                    Err(_) => Some(pinned),
                },
                Err(_) => Some(pinned),
            }
        }
        (pinned, _) => pinned,
    };
    let checks = match key {
        Some(key) => {
            let detail = detail.clone();
            tokio::task::spawn_blocking(move || check_detail(&detail, &key))
                .await
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let checks = if checks.len() == detail.versions.len() {
        checks
    } else {
        detail
            .versions
            .iter()
            .map(|_| {
                SignatureCheck::NotProved(
                    "the server sent no proof that this record is in its log".into(),
                )
            })
            .collect()
    };
    CheckedDetail { detail, checks }
}

/// A record as the server sent it, with this computer's check of each version (one per
/// version, in order).
#[derive(Debug, Clone)]
pub struct CheckedDetail {
    pub detail: ReviewDetail,
    pub checks: Vec<crate::review_client::proof::SignatureCheck>,
}

fn forget_on_401<T>(session: &mut Option<Session>, result: &Result<T, ReviewError>) {
    if matches!(result, Err(ReviewError::SessionEnded)) {
        *session = None;
    }
}
