//! What a run reports while it runs. The library never draws or prints: it calls the
//! caller's observer with [`RunEvent`]s, and the CLI turns them into a progress bar on a
//! terminal or plain log lines in batch jobs.

use std::sync::Arc;

use super::budget::Spend;

/// One thing that happened in a run.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A batch of dialogues (or respondents) starts: `total` this invocation is responsible
    /// for, `already` of them finished by an earlier invocation.
    Started {
        /// Units this invocation is responsible for.
        total: u64,
        /// Of those, units finished by an earlier invocation.
        already: u64,
        /// What a unit is, plural (`dialogues`, `branches`, ...).
        unit: &'static str,
    },
    /// One finished; `error` is its failure message when it failed. `done` and `failed`
    /// count this invocation's finished ones so far, `already` included in `done`.
    Finished {
        /// The unit's id.
        id: String,
        /// Its failure message, when it failed.
        error: Option<String>,
        /// Units finished so far, `already` included.
        done: u64,
        /// Units failed so far.
        failed: u64,
        /// What the models produced so far, and its cost.
        spend: Spend,
    },
    /// A budget was reached: nothing new starts; those in flight finish.
    BudgetStop {
        /// Which budget was reached, in words.
        reason: String,
        /// Units still running.
        in_flight: usize,
    },
    /// Too many failed in a row: nothing new starts; `--resume` continues.
    Halted {
        /// Why, in words.
        reason: String,
    },
    /// Ctrl-C: finished ones are saved; `--resume` continues.
    Interrupted,
    /// A heartbeat while work is in flight (about four a second), with the spend so far.
    Tick {
        /// Units finished so far, `already` included.
        done: u64,
        /// Units failed so far.
        failed: u64,
        /// What the models produced so far, and its cost.
        spend: Spend,
    },
    /// The batch is over (finished, stopped or interrupted).
    Ended,
    /// A phase of a job made of several sweeps begins (e.g. a tune's search stage).
    Phase {
        /// What the phase does, in words.
        name: String,
    },
    /// A stage of a longer job (e.g. a sweep cell) begins.
    Stage {
        /// The stage's position, from 0.
        index: usize,
        /// The stage's name.
        name: String,
    },
}

/// A function that hears run events.
type Observer = Arc<dyn Fn(&RunEvent) + Send + Sync>;

/// The caller's observer of a run; the default says nothing.
#[derive(Clone, Default)]
pub struct RunProgress(Option<Observer>);

impl RunProgress {
    /// An observer calling `f` with every event.
    pub fn new(f: impl Fn(&RunEvent) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    /// An observer that says nothing.
    pub fn silent() -> Self {
        Self(None)
    }

    /// Whether anyone listens (heartbeats are skipped otherwise).
    pub(crate) fn is_active(&self) -> bool {
        self.0.is_some()
    }

    /// Reports `event`.
    pub fn emit(&self, event: RunEvent) {
        if let Some(f) = &self.0 {
            f(&event);
        }
    }
}

impl std::fmt::Debug for RunProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_active() { "RunProgress(observer)" } else { "RunProgress(silent)" })
    }
}
