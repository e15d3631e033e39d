//! The app's one tokio runtime and the guards that cancel its tasks.
//!
//! Owns: the runtime every piece of the app's background work runs on (the sync engine, the
//! review client, enrolment and demo set-up, the in-process demo server), created once when
//! the app starts, and [`TaskGuard`], which aborts a task when whoever started it is dropped.
//! Tasks report over channels and ask for a repaint; nothing here blocks the UI thread.
//! The store worker is not here: SQLCipher is synchronous, so it keeps its own thread.

use std::future::Future;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

/// Worker threads: the sync engine's HTTP requests overlap its store work, and the review
/// client and demo server need little.
const WORKER_THREADS: usize = 2;

/// How long closing the window waits for tasks to stop before leaving them behind.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The runtime, owned by the app. Dropping it stops every task still running.
#[derive(Debug)]
pub struct Background {
    runtime: Option<Runtime>,
}

impl Background {
    /// Starts the runtime's worker threads.
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("epr-background")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// The handle background work is spawned on (cheap to clone and pass down).
    pub fn handle(&self) -> Option<Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(SHUTDOWN_WAIT);
        }
    }
}

/// A spawned task that is aborted when the guard is dropped.
#[derive(Debug)]
pub struct TaskGuard(tokio::task::AbortHandle);

impl TaskGuard {
    /// Spawns `task` on `runtime`, guarded.
    pub fn spawn(runtime: &Handle, task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(runtime.spawn(task).abort_handle())
    }

    /// True once the task has ended (finished or aborted).
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
