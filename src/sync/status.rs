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
    /// The server could not prove it kept every record (its log was shortened or rewritten,
    /// or a proof failed): sync stops and every record stays on the tablet.
    Integrity,
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
    /// The server's clock minus this tablet's at the last answer, in seconds.
    pub clock_skew_secs: Option<i64>,
    /// The server failed its integrity check (kept until the tablet is enrolled again).
    pub server_integrity_failed: bool,
    /// Retiring (sending what it holds, no new records) or retired, as the server said.
    pub tablet_state: crate::store::TabletState,
}

/// What the crew read when the server fails its integrity check.
pub const INTEGRITY_ALERT: &str = "The server could not prove it kept every record. Records stay \
     on this tablet and will not be sent. Tell control.";

/// How far the tablet's clock may differ from the server's before the crew are warned:
/// beyond this, times stamped "now" and typed clock times may be placed wrongly.
pub const CLOCK_SKEW_WARNING_SECS: i64 = 120;

impl SyncStatus {
    /// A warning when this tablet's clock differs from the server's by more than
    /// [`CLOCK_SKEW_WARNING_SECS`]: "This tablet's clock is 5 min behind the server's …".
    pub fn clock_warning(&self) -> Option<String> {
        let skew = self.clock_skew_secs?;
        if skew.abs() <= CLOCK_SKEW_WARNING_SECS {
            return None;
        }
        let minutes = (skew.abs() + 30) / 60;
        let way = if skew > 0 { "behind" } else { "ahead of" };
        Some(format!(
            "This tablet's clock is {minutes} min {way} the server's: times stamped now may be \
             wrong. Ask for the clock to be set"
        ))
    }

    /// The status as the crew must see it: the queued count from the store's own outbox
    /// (`outbox_pending`, counted after every save) rather than from the engine's last
    /// cycle, and never "all synced" while a save is newer than the last successful sync.
    /// A save always queues its record, so until then at least one is queued.
    pub fn with_local_outbox(
        mut self,
        outbox_pending: Option<u64>,
        last_save_utc: Option<DateTime<Utc>>,
    ) -> SyncStatus {
        if let Some(n) = outbox_pending {
            self.queued = n;
        }
        let saved_since_contact = match (last_save_utc, self.last_success_utc) {
            (Some(saved), Some(synced)) => saved > synced,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if saved_since_contact {
            self.queued = self.queued.max(1);
        }
        self
    }

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
        match self.tablet_state {
            crate::store::TabletState::Active => {}
            crate::store::TabletState::Retiring => {
                parts.push("tablet being retired: no new records".to_owned());
            }
            crate::store::TabletState::Retired => {
                parts.push("tablet retired: hand it in".to_owned());
            }
        }
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
    fn a_clock_more_than_two_minutes_out_is_named() {
        let at = |skew: Option<i64>| SyncStatus {
            clock_skew_secs: skew,
            ..SyncStatus::default()
        };
        assert_eq!(at(None).clock_warning(), None);
        assert_eq!(at(Some(119)).clock_warning(), None);
        assert_eq!(at(Some(-120)).clock_warning(), None);
        let w = at(Some(300)).clock_warning().unwrap();
        assert!(
            w.starts_with("This tablet's clock is 5 min behind the server's"),
            "{w}"
        );
        let w = at(Some(-7200)).clock_warning().unwrap();
        assert!(
            w.starts_with("This tablet's clock is 120 min ahead of the server's"),
            "{w}"
        );
    }

    #[test]
    fn a_save_is_queued_at_once_not_at_the_next_timed_attempt() {
        use chrono::TimeZone;
        let t = |m: u32| {
            Utc.with_ymd_and_hms(2026, 12, 2, 10, m, 0)
                .single()
                .unwrap()
        };
        // The engine last synced at 10:00 and saw an empty queue.
        let engine = SyncStatus {
            enrolled: true,
            reachable: Some(true),
            last_success_utc: Some(t(0)),
            ..SyncStatus::default()
        };
        assert_eq!(engine.banner(), "Online · all synced");
        // (outbox count from the store, last save) → banner
        for (pending, saved, banner) in [
            // Saved at 10:01, before the store was counted again: at least that one.
            (None, Some(t(1)), "Online · 1 queued"),
            (Some(0), Some(t(1)), "Online · 1 queued"),
            (Some(3), Some(t(1)), "Online · 3 queued"),
            // Counted after a later sync: the outbox says.
            (Some(2), None, "Online · 2 queued"),
            (Some(0), None, "Online · all synced"),
            // The save was before the last successful sync and the outbox is empty.
            (
                Some(0),
                Some(t(0) - chrono::Duration::seconds(1)),
                "Online · all synced",
            ),
        ] {
            let shown = engine.clone().with_local_outbox(pending, saved);
            assert_eq!(shown.banner(), banner, "{pending:?} {saved:?}");
        }
        // Offline (the simulated outage) says queued, never synced.
        let offline = SyncStatus {
            reachable: Some(false),
            ..engine
        };
        assert_eq!(
            offline.with_local_outbox(Some(1), Some(t(1))).banner(),
            "Offline · 1 queued"
        );
    }

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
