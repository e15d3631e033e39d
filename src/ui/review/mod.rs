//! Supervisor review inside the crew app: sign in to the trust's server, the review queue
//! with filters and counts, a read-only record view (every section, observations and the
//! NEWS2 trend, versions with what changed, ATMIST, device and signature status, decisions)
//! and the decision itself.
//!
//! Owns the review screen's state ([`ReviewScreen`]) and its commands ([`ReviewCommand`]),
//! applied in one place ([`ReviewScreen::apply`]). Drawing lives in [`signin`], [`queue`] and
//! [`record`]; the network runs as [`service`]'s task on the app's runtime and answers over a channel with a
//! repaint. Reuses the editor's read-only section drawing rather than copying it.
//!
//! Review data is held in memory only and never written to disk: dropping the screen (sign
//! out, leave) drops it and the session token. The one file written is the server address
//! ([`settings`]). Must never touch the device store: a supervisor is not a crew user.

pub mod diff;
pub mod queue;
pub mod record;
pub mod service;
pub mod settings;
pub mod signin;
pub mod tablets;

use std::path::Path;

use uuid::Uuid;

use crate::protocol::{Decision, DecisionRequest};
use crate::review_client::ReviewError;
use crate::ui::widgets::sentence;
use crate::ui::worker::RepaintSignal;
pub use queue::{QueueFilters, QueueState};
pub use record::RecordView;
use service::{ReviewReply, ReviewRequest, ReviewService};
pub use signin::SignInForm;

/// Which review page is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewPage {
    SignIn,
    Queue,
    Record,
    /// Every tablet and what it has not sent yet.
    Tablets,
}

/// What the review pages ask for. Its `Debug` never shows a password or a comment.
#[derive(Clone, PartialEq, Eq)]
pub enum ReviewCommand {
    /// Sign in with the form's address, username and password.
    SignIn,
    /// Back to the crew unlock screen (drops every review datum and the session).
    Leave,
    /// Send the last request that could not reach the server again.
    Retry,
    /// The filters changed: load page 1.
    ApplyFilters,
    /// Load another page of the queue.
    GoToPage(u32),
    /// Open one record.
    OpenRecord(Uuid),
    /// Back to the queue (reloads it: counts may have changed).
    BackToQueue,
    /// Show another version of the open record (index into its versions, oldest first).
    ShowVersion(usize),
    /// Decide on the version shown, with the comment typed in the record view.
    Decide(Decision),
    /// Open (or reload) the Tablets page.
    ShowTablets,
}

impl std::fmt::Debug for ReviewCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReviewCommand::SignIn => f.write_str("SignIn"),
            ReviewCommand::Leave => f.write_str("Leave"),
            ReviewCommand::Retry => f.write_str("Retry"),
            ReviewCommand::ApplyFilters => f.write_str("ApplyFilters"),
            ReviewCommand::GoToPage(p) => write!(f, "GoToPage({p})"),
            ReviewCommand::OpenRecord(_) => f.write_str("OpenRecord"),
            ReviewCommand::BackToQueue => f.write_str("BackToQueue"),
            ReviewCommand::ShowVersion(i) => write!(f, "ShowVersion({i})"),
            ReviewCommand::Decide(d) => write!(f, "Decide({})", d.as_str()),
            ReviewCommand::ShowTablets => f.write_str("ShowTablets"),
        }
    }
}

/// A half-written decision kept across an expired session: the record and the comment.
#[derive(Clone, PartialEq, Eq)]
struct Resume {
    record_id: Uuid,
    comment: String,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume").finish_non_exhaustive()
    }
}

/// Numbers of the requests whose answers are still wanted (older answers are ignored).
#[derive(Debug, Default)]
struct Pending {
    sign_in: Option<u64>,
    list: Option<u64>,
    detail: Option<u64>,
    decide: Option<u64>,
    tablets: Option<u64>,
}

/// Everything the review pages show. Memory only.
#[derive(Debug)]
pub struct ReviewScreen {
    service: ReviewService,
    pub page: ReviewPage,
    pub sign_in: SignInForm,
    /// The signed-in supervisor; `None` while signed out.
    pub username: Option<String>,
    pub queue: QueueState,
    pub record: Option<Box<RecordView>>,
    pub tablets: tablets::TabletsView,
    /// A problem on the queue or record page, in words.
    pub error: Option<String>,
    /// The request to send again with "Retry" (only for "cannot reach the server").
    retry: Option<ReviewRequest>,
    resume: Option<Resume>,
    pending: Pending,
}

impl ReviewScreen {
    /// The sign-in page, its address prefilled from `EPR_REVIEW_SERVER` or the remembered
    /// file in `data_dir`. Its network calls run on `runtime` (the app's one runtime).
    pub fn new(data_dir: &Path, repaint: RepaintSignal, runtime: &tokio::runtime::Handle) -> Self {
        Self {
            service: ReviewService::start(runtime, data_dir.to_owned(), repaint),
            page: ReviewPage::SignIn,
            sign_in: SignInForm {
                server_url: settings::initial_server_url(data_dir),
                ..SignInForm::default()
            },
            username: None,
            queue: QueueState::default(),
            record: None,
            tablets: tablets::TabletsView::default(),
            error: None,
            retry: None,
            resume: None,
            pending: Pending::default(),
        }
    }

    /// True while a request is out.
    pub fn busy(&self) -> bool {
        self.service.in_flight() > 0
    }

    /// True when a failed request can be sent again.
    pub fn can_retry(&self) -> bool {
        self.retry.is_some()
    }

    /// A short page name for tests and logs.
    pub fn page_name(&self) -> &'static str {
        match self.page {
            ReviewPage::SignIn => "review sign-in",
            ReviewPage::Queue => "review queue",
            ReviewPage::Record => "review record",
            ReviewPage::Tablets => "review tablets",
        }
    }

    /// The comment being written in the record view (or kept for after sign-in).
    pub fn draft_comment(&self) -> Option<&str> {
        match (&self.record, &self.resume) {
            (Some(r), _) => Some(r.comment.as_str()),
            (None, Some(resume)) => Some(resume.comment.as_str()),
            (None, None) => None,
        }
    }

    fn send(&mut self, request: ReviewRequest) -> u64 {
        self.service.send(request)
    }

    fn load_queue(&mut self) {
        match self.queue.filters.to_query(self.queue.page) {
            Ok(query) => {
                self.queue.filter_error = None;
                self.queue.loading = true;
                self.pending.list = Some(self.send(ReviewRequest::List(query)));
            }
            Err(e) => self.queue.filter_error = Some(e),
        }
    }

    fn load_record(&mut self, id: Uuid) {
        self.pending.detail = Some(self.send(ReviewRequest::Detail(id)));
    }

    /// Carries out one command from the review pages. [`ReviewCommand::Leave`] is the app's
    /// to carry out (it drops this screen).
    pub fn apply(&mut self, command: ReviewCommand) {
        match command {
            ReviewCommand::SignIn => {
                let form = &mut self.sign_in;
                if form.server_url.trim().is_empty()
                    || form.username.trim().is_empty()
                    || form.password.is_empty()
                {
                    form.error =
                        Some("Enter the server address, your username and password".into());
                    return;
                }
                let request = ReviewRequest::SignIn {
                    server_url: form.server_url.trim().to_owned(),
                    username: form.username.trim().to_owned(),
                    password: form.password.clone(),
                };
                form.error = None;
                form.busy = true;
                self.retry = None;
                self.pending.sign_in = Some(self.send(request));
            }
            ReviewCommand::Leave => {}
            ReviewCommand::Retry => {
                if let Some(request) = self.retry.take() {
                    self.error = None;
                    self.sign_in.error = None;
                    let seq = self.send(request.clone());
                    match request {
                        ReviewRequest::SignIn { .. } => {
                            self.sign_in.busy = true;
                            self.pending.sign_in = Some(seq);
                        }
                        ReviewRequest::List(_) => {
                            self.queue.loading = true;
                            self.pending.list = Some(seq);
                        }
                        ReviewRequest::Detail(_) => self.pending.detail = Some(seq),
                        ReviewRequest::Tablets => {
                            self.tablets.loading = true;
                            self.pending.tablets = Some(seq);
                        }
                        ReviewRequest::Decide { .. } => {
                            if let Some(r) = &mut self.record {
                                r.deciding = true;
                            }
                            self.pending.decide = Some(seq);
                        }
                        ReviewRequest::SignOut => {}
                    }
                }
            }
            ReviewCommand::ApplyFilters => {
                self.queue.page = 1;
                self.load_queue();
            }
            ReviewCommand::GoToPage(page) => {
                self.queue.page = page.max(1);
                self.load_queue();
            }
            ReviewCommand::OpenRecord(id) => {
                self.error = None;
                self.queue.opening = Some(id);
                self.load_record(id);
            }
            ReviewCommand::BackToQueue => {
                self.record = None;
                self.error = None;
                self.page = ReviewPage::Queue;
                self.load_queue();
            }
            ReviewCommand::ShowTablets => {
                self.error = None;
                self.page = ReviewPage::Tablets;
                self.tablets.loading = true;
                self.pending.tablets = Some(self.send(ReviewRequest::Tablets));
            }
            ReviewCommand::ShowVersion(i) => {
                if let Some(r) = &mut self.record
                    && i < r.versions.len()
                {
                    r.showing = i;
                }
            }
            ReviewCommand::Decide(decision) => {
                let Some(r) = &mut self.record else { return };
                let Some(revision) = r.shown_revision() else {
                    return;
                };
                let comment = r.comment.trim().to_owned();
                if decision != Decision::Approved && comment.is_empty() {
                    r.message = Some(record::COMMENT_NEEDED.to_owned());
                    return;
                }
                r.deciding = true;
                r.message = None;
                r.notice = None;
                let body = DecisionRequest {
                    decision,
                    comment,
                    revision,
                };
                r.last_request = Some(body.clone());
                let request = ReviewRequest::Decide {
                    record_id: r.record_id,
                    request: body,
                };
                self.error = None;
                self.pending.decide = Some(self.send(request));
            }
        }
    }

    /// Takes every answer that has arrived. Called once per frame.
    pub fn poll(&mut self) {
        while let Some(reply) = self.service.try_recv() {
            self.handle(reply);
        }
    }

    fn handle(&mut self, reply: ReviewReply) {
        match reply {
            ReviewReply::SignedIn { seq, result } => {
                if self.pending.sign_in != Some(seq) {
                    return;
                }
                self.pending.sign_in = None;
                self.sign_in.busy = false;
                match result {
                    Ok(s) => {
                        self.sign_in.password = Default::default();
                        self.sign_in.error = None;
                        self.sign_in.notice = None;
                        self.sign_in.server_url = s.server_url;
                        self.username = Some(s.username);
                        self.page = ReviewPage::Queue;
                        self.load_queue();
                        if let Some(resume) = &self.resume {
                            let id = resume.record_id;
                            self.queue.opening = Some(id);
                            self.load_record(id);
                        }
                    }
                    Err(e) => {
                        if e.is_retryable() {
                            self.retry = Some(ReviewRequest::SignIn {
                                server_url: self.sign_in.server_url.trim().to_owned(),
                                username: self.sign_in.username.trim().to_owned(),
                                password: self.sign_in.password.clone(),
                            });
                        }
                        self.sign_in.error = Some(sentence(&e.to_string()));
                    }
                }
            }
            ReviewReply::Listed { seq, result } => {
                if self.pending.list != Some(seq) {
                    return;
                }
                self.pending.list = None;
                self.queue.loading = false;
                match result {
                    Ok(list) => self.queue.list = Some(list),
                    Err(e) => {
                        let request = self
                            .queue
                            .filters
                            .to_query(self.queue.page)
                            .unwrap_or_default();
                        self.failed(e, ReviewRequest::List(request));
                    }
                }
            }
            ReviewReply::Detail { seq, result } => {
                if self.pending.detail != Some(seq) {
                    return;
                }
                self.pending.detail = None;
                let opening = self.queue.opening.take();
                match result {
                    Ok(detail) => {
                        let mut view = RecordView::from_detail(*detail);
                        if let Some(old) = self.record.take()
                            && old.record_id == view.record_id
                        {
                            view.keep_from(*old);
                        }
                        if let Some(resume) = self.resume.take() {
                            if resume.record_id == view.record_id {
                                view.comment = resume.comment;
                                view.notice = Some(
                                    "Signed in again. Your comment was kept; check the version \
                                     shown and decide."
                                        .to_owned(),
                                );
                            } else {
                                self.resume = Some(resume);
                            }
                        }
                        self.record = Some(Box::new(view));
                        self.page = ReviewPage::Record;
                    }
                    Err(e) => {
                        let id = opening.or(self.record.as_ref().map(|r| r.record_id));
                        if let Some(id) = id {
                            self.failed(e, ReviewRequest::Detail(id));
                        }
                    }
                }
            }
            ReviewReply::Tablets { seq, result } => {
                if self.pending.tablets != Some(seq) {
                    return;
                }
                self.pending.tablets = None;
                self.tablets.loading = false;
                match result {
                    Ok(answer) => self.tablets.answer = Some(answer),
                    Err(e) => self.failed(e, ReviewRequest::Tablets),
                }
            }
            ReviewReply::Decided {
                seq,
                record_id,
                result,
            } => {
                if self.pending.decide != Some(seq) {
                    return;
                }
                self.pending.decide = None;
                if let Some(r) = &mut self.record {
                    r.deciding = false;
                }
                match result {
                    Ok(d) => {
                        if let Some(r) = &mut self.record {
                            r.comment.clear();
                            r.message = None;
                            r.notice = Some(record::decided_notice(&d));
                        }
                        self.load_record(record_id);
                    }
                    Err(ReviewError::Superseded(_)) => {
                        if let Some(r) = &mut self.record {
                            r.message = Some(record::superseded_message(r.shown_revision()));
                        }
                        self.load_record(record_id);
                    }
                    Err(e) => {
                        let request = self.record.as_ref().and_then(|r| {
                            Some(ReviewRequest::Decide {
                                record_id,
                                request: r.last_request.clone()?,
                            })
                        });
                        match request {
                            Some(request) => self.failed(e, request),
                            None => self.error = Some(sentence(&e.to_string())),
                        }
                    }
                }
            }
        }
    }

    /// Shows a failure: an ended session goes back to sign-in keeping the comment; an
    /// unreachable server offers "Retry".
    fn failed(&mut self, e: ReviewError, request: ReviewRequest) {
        match e {
            ReviewError::SessionEnded => self.session_ended(),
            e if e.is_retryable() => {
                self.error = Some(sentence(&e.to_string()));
                self.retry = Some(request);
            }
            e => self.error = Some(sentence(&e.to_string())),
        }
    }

    /// True while a supervisor is signed in (records may be on screen).
    pub fn signed_in(&self) -> bool {
        self.username.is_some()
    }

    /// Signs out after the app's idle time: the session token is dropped in the background
    /// service, every record leaves the screen, and a half-written comment is kept for the
    /// next sign-in, as when the server ends a session.
    pub fn idle_sign_out(&mut self, minutes: u64) {
        self.send(ReviewRequest::SignOut);
        self.session_ended();
        let kept = self
            .resume
            .as_ref()
            .is_some_and(|r| !r.comment.trim().is_empty());
        self.sign_in.notice = Some(format!(
            "Signed out after {minutes} minute{} without use.{}",
            if minutes == 1 { "" } else { "s" },
            if kept {
                " Sign in again: your unsent comment has been kept."
            } else {
                " Sign in again to carry on."
            }
        ));
    }

    /// The session expired or was refused: forget every record on screen, keep the comment
    /// being written, and ask for the password again.
    fn session_ended(&mut self) {
        if let Some(r) = self.record.take() {
            self.resume = Some(Resume {
                record_id: r.record_id,
                comment: r.comment.clone(),
            });
        }
        self.queue.list = None;
        self.queue.loading = false;
        self.tablets = tablets::TabletsView::default();
        self.queue.opening = None;
        self.pending = Pending::default();
        self.error = None;
        self.retry = None;
        self.username = None;
        self.page = ReviewPage::SignIn;
        self.sign_in.focused_once = false;
        let kept = self
            .resume
            .as_ref()
            .is_some_and(|r| !r.comment.trim().is_empty());
        self.sign_in.notice = Some(if kept {
            "Your session has ended. Sign in again: your unsent comment has been kept.".to_owned()
        } else {
            "Your session has ended. Sign in again to carry on.".to_owned()
        });
    }
}

/// A page's problem in words, with "Retry" when the request can be sent again.
fn error_with_retry(
    ui: &mut egui::Ui,
    error: Option<&str>,
    can_retry: bool,
    out: &mut Vec<ReviewCommand>,
) {
    if let Some(e) = error {
        ui.horizontal_wrapped(|ui| {
            crate::ui::widgets::error_text(ui, e);
            if can_retry && ui.button("Retry").clicked() {
                out.push(ReviewCommand::Retry);
            }
        });
    }
}

/// What a page shows before its first answer: "Loading…" while asked, else "has not loaded".
fn not_loaded(ui: &mut egui::Ui, loading: bool, loading_text: &str, not_loaded_text: &str) {
    ui.add_space(24.0);
    ui.label(
        egui::RichText::new(if loading {
            loading_text
        } else {
            not_loaded_text
        })
        .size(22.0),
    );
}

/// The review pages: sign-in, queue or record.
pub fn review_ui(ui: &mut egui::Ui, screen: &mut ReviewScreen, out: &mut Vec<ReviewCommand>) {
    let busy = screen.busy();
    let can_retry = screen.can_retry();
    match screen.page {
        ReviewPage::SignIn => signin::sign_in_ui(ui, &mut screen.sign_in, can_retry, out),
        ReviewPage::Queue => queue::queue_ui(
            ui,
            &mut screen.queue,
            screen.username.as_deref().unwrap_or_default(),
            screen.error.as_deref(),
            can_retry,
            busy,
            out,
        ),
        ReviewPage::Tablets => {
            tablets::tablets_ui(ui, &screen.tablets, screen.error.as_deref(), can_retry, out)
        }
        ReviewPage::Record => match &mut screen.record {
            Some(r) => record::record_ui(ui, r, screen.error.as_deref(), can_retry, out),
            None => {
                ui.spinner();
            }
        },
    }
}
