//! What the UI may know about sync, and how it asks for a sync.
//!
//! The engine publishes a [`SyncStatus`] on a `tokio::sync::watch` channel; the UI reads the
//! latest value each frame (cheap, never blocks) and sends [`SyncCommand`]s back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{mpsc, watch};

/// Which kind of failure the last attempt met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Network down, timeout, 5xx or 429: retried automatically with backoff.
    Transient,
    /// The server refused the device's credentials (401): sync stops until re-enrolled.
    Credentials,
    /// The server refused one or more records: those are held back, the rest keep going.
    Record,
    /// Anything else (a local store error): shown, retried on the next trigger.
    Local,
}

/// The last problem, in plain words for the status bar. Never contains patient data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncProblem {
    pub kind: ProblemKind,
    pub message: String,
    pub at_utc: DateTime<Utc>,
}

/// A snapshot of the sync engine's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// A server is configured (the device is enrolled).
    pub enrolled: bool,
    /// Whether the last attempt reached the server; `None` before the first attempt.
    pub reachable: Option<bool>,
    /// Versions waiting to be pushed.
    pub queued: u64,
    /// Versions the server refused, held back for the crew.
    pub quarantined: u64,
    /// Records whose latest supervisor decision is [`crate::model::Decision::Returned`].
    pub returned: u64,
    /// A push or pull is in flight.
    pub sending: bool,
    pub last_success_utc: Option<DateTime<Utc>>,
    pub last_problem: Option<SyncProblem>,
    /// Seconds until the next automatic attempt after a failure.
    pub retry_in_secs: Option<u64>,
    /// The engine stopped (credentials refused); it needs the user to act.
    pub stopped: bool,
    /// Rises whenever a cycle changed local records (versions acknowledged, decisions
    /// received, records quarantined): the UI reloads its list only when this moves.
    pub changes: u64,
}

impl SyncStatus {
    /// The banner text: "Online · all synced", "Offline · 12 queued", ...
    pub fn banner(&self) -> String {
        if !self.enrolled {
            return "Not connected to a server · records are kept on this tablet".to_owned();
        }
        let state = if self.stopped {
            "Sync stopped"
        } else {
            match self.reachable {
                Some(true) => "Online",
                Some(false) => "Offline",
                None => "Connecting",
            }
        };
        let mut parts = vec![state.to_owned()];
        if self.sending {
            parts.push("sending".to_owned());
        }
        if self.queued == 0 && self.quarantined == 0 {
            parts.push("all synced".to_owned());
        } else if self.queued > 0 {
            parts.push(format!("{} queued", self.queued));
        }
        if self.quarantined > 0 {
            parts.push(format!("{} need attention", self.quarantined));
        }
        if self.returned > 0 {
            parts.push(format!("{} returned", self.returned));
        }
        parts.join(" · ")
    }
}

/// Requests to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCommand {
    /// "Sync now" pressed: try immediately, ignoring backoff.
    SyncNow,
    /// A record was completed and signed: push soon.
    RecordCompleted,
    /// Put quarantined records back in the queue and try again.
    RetryQuarantined,
    /// Stop the engine (app closing or signing out).
    Shutdown,
}

/// The UI's end of the engine: read status, send commands. Dropping it stops the engine (and
/// aborts its task, when the engine runs on a shared runtime).
#[derive(Debug)]
pub struct SyncHandle {
    commands: mpsc::UnboundedSender<SyncCommand>,
    status: watch::Receiver<SyncStatus>,
    task: Option<tokio::task::AbortHandle>,
}

impl SyncHandle {
    /// Wires a handle to an engine's channels.
    pub fn new(
        commands: mpsc::UnboundedSender<SyncCommand>,
        status: watch::Receiver<SyncStatus>,
    ) -> Self {
        Self {
            commands,
            status,
            task: None,
        }
    }

    /// The handle also guards the engine's task: dropping it aborts the task, so an engine
    /// on the app's shared runtime never outlives its owner.
    pub fn aborting_on_drop(mut self, task: tokio::task::AbortHandle) -> Self {
        self.task = Some(task);
        self
    }

    /// The latest status (never blocks).
    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// Sends a command; ignored if the engine has stopped.
    pub fn send(&self, command: SyncCommand) {
        let _ = self.commands.send(command);
    }

    /// A clone of the status receiver, for waiting on changes (tests, CLI).
    pub fn status_receiver(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(SyncCommand::Shutdown);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_reads_like_a_crew_would_say_it() {
        let mut s = SyncStatus::default();
        assert!(s.banner().starts_with("Not connected"));
        s.enrolled = true;
        s.reachable = Some(false);
        s.queued = 12;
        assert_eq!(s.banner(), "Offline · 12 queued");
        s.reachable = Some(true);
        s.queued = 0;
        assert_eq!(s.banner(), "Online · all synced");
        s.quarantined = 1;
        s.returned = 2;
        assert_eq!(s.banner(), "Online · 1 need attention · 2 returned");
    }
}
