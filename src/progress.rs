//! Progress of long downloads, checks and installs, reported as events.
//!
//! The library never draws on the terminal: a front end passes a [`Progress`] that turns
//! [`DownloadEvent`]s into bars or log lines, and the default reports nothing, so tests,
//! services and embedding programs stay quiet.

use std::fmt;
use std::sync::Arc;

/// One step of a download or install, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadEvent {
    /// A step began.
    Started {
        /// What it does, e.g. "verifying wheel".
        what: String,
        /// Its size in bytes when known; `None` when it counts no bytes or an unknown number.
        len: Option<u64>,
    },
    /// More of the current step is done.
    Advanced {
        /// Bytes done since the last event.
        bytes: u64,
    },
    /// The current step ended (successfully or not).
    Finished,
    /// Something the user should be told, e.g. where a model was installed.
    Note(String),
}

/// Receives [`DownloadEvent`]s. Any `Fn(DownloadEvent)` closure is one.
pub trait DownloadProgress: Send + Sync {
    /// Called with each event, in order, from the thread doing the work.
    fn on_event(&self, event: DownloadEvent);
}

impl<F: Fn(DownloadEvent) + Send + Sync> DownloadProgress for F {
    fn on_event(&self, event: DownloadEvent) {
        self(event)
    }
}

/// A cheap, cloneable handle to an observer; [`Progress::silent`] (the default) drops every
/// event.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn DownloadProgress>>);

impl Progress {
    /// Reports nothing.
    pub fn silent() -> Self {
        Self(None)
    }

    /// Reports to `observer`.
    pub fn new(observer: impl DownloadProgress + 'static) -> Self {
        Self(Some(Arc::new(observer)))
    }

    /// Whether events go nowhere.
    pub(crate) fn is_silent(&self) -> bool {
        self.0.is_none()
    }

    /// Reports `event`.
    pub fn emit(&self, event: DownloadEvent) {
        if let Some(observer) = &self.0 {
            observer.on_event(event);
        }
    }

    /// Reports [`DownloadEvent::Started`].
    pub fn started(&self, what: impl Into<String>, len: Option<u64>) {
        if !self.is_silent() {
            self.emit(DownloadEvent::Started { what: what.into(), len });
        }
    }

    /// Reports [`DownloadEvent::Advanced`].
    pub(crate) fn advanced(&self, bytes: u64) {
        self.emit(DownloadEvent::Advanced { bytes });
    }

    /// Reports [`DownloadEvent::Finished`].
    pub fn finished(&self) {
        self.emit(DownloadEvent::Finished);
    }

    /// Reports [`DownloadEvent::Note`].
    pub fn note(&self, text: impl Into<String>) {
        if !self.is_silent() {
            self.emit(DownloadEvent::Note(text.into()));
        }
    }

    /// Runs `step` between `Started` and `Finished` events (`Finished` also on error).
    pub fn step<T>(&self, what: impl Into<String>, len: Option<u64>, step: impl FnOnce() -> T) -> T {
        self.started(what, len);
        let out = step();
        self.finished();
        out
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_silent() { "Progress(silent)" } else { "Progress(observer)" })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn events_reach_the_observer_in_order_and_silent_drops_them() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let progress = Progress::new(move |e| sink.lock().unwrap().push(e));
        let n = progress.step("hashing", Some(3), || {
            progress.advanced(3);
            7
        });
        progress.note("done");
        assert_eq!(n, 7);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                DownloadEvent::Started { what: "hashing".into(), len: Some(3) },
                DownloadEvent::Advanced { bytes: 3 },
                DownloadEvent::Finished,
                DownloadEvent::Note("done".into()),
            ]
        );
        let silent = Progress::default();
        assert!(silent.is_silent());
        silent.step("x", None, || silent.note("y"));
        assert_eq!(format!("{silent:?}"), "Progress(silent)");
    }
}
