//! What stops a run early while keeping every finished dialogue: Ctrl-C (SIGINT) or SIGTERM
//! (what Slurm and Kubernetes send on pre-emption) by default, or a trigger the caller holds. A host with its own signal handling (Python, which turns
//! SIGINT into `KeyboardInterrupt`) must not have the runner install a second handler, so
//! it passes a triggered interrupt and pulls the trigger itself.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM.
    Terminate,
}

impl StopSignal {
    /// The exit code of a process ended by this signal, as shells report it: 130 or 143.
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }
}

/// The last signal that stopped a run in this process (0: none, 1: SIGINT, 2: SIGTERM).
static RECEIVED: AtomicU8 = AtomicU8::new(0);

/// The signal that stopped a run of this process, if one did.
pub fn received() -> Option<StopSignal> {
    match RECEIVED.load(Ordering::SeqCst) {
        1 => Some(StopSignal::Interrupt),
        2 => Some(StopSignal::Terminate),
        _ => None,
    }
}

/// Resolves when the process receives SIGINT or SIGTERM, with which (for work outside a run,
/// such as an evaluation, that must stop on them as a run does).
pub async fn wait_for_signal() -> StopSignal {
    signal().await;
    received().unwrap_or(StopSignal::Interrupt)
}

/// Resolves when the process receives SIGINT or SIGTERM, recording which.
async fn signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => RECEIVED.store(1, Ordering::SeqCst),
        () = terminate => RECEIVED.store(2, Ordering::SeqCst),
    }
}

/// When a run stops early; the default is the process's Ctrl-C (SIGINT) or SIGTERM.
#[derive(Clone, Default)]
pub struct Interrupt(Option<watch::Receiver<bool>>);

/// Stops the runs given the paired [`Interrupt`]; dropping it stops nothing.
#[derive(Debug)]
pub struct InterruptTrigger(watch::Sender<bool>);

impl Interrupt {
    /// Stop when the returned trigger is pulled; Ctrl-C is left to the caller.
    pub fn triggered() -> (Self, InterruptTrigger) {
        let (tx, rx) = watch::channel(false);
        (Self(Some(rx)), InterruptTrigger(tx))
    }

    /// Resolves when the run should stop.
    pub(crate) async fn wait(&self) {
        match &self.0 {
            None => signal().await,
            Some(rx) => {
                let mut rx = rx.clone();
                if rx.wait_for(|stop| *stop).await.is_err() {
                    // The trigger was dropped without being pulled: never stop.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

impl InterruptTrigger {
    /// Stops the runs of the paired interrupt: nothing new starts, finished dialogues stay.
    pub fn pull(&self) {
        self.0.send_replace(true);
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Interrupt(triggered)" } else { "Interrupt(signals)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pulled_trigger_stops_and_a_dropped_one_never_does() {
        let (interrupt, trigger) = Interrupt::triggered();
        trigger.pull();
        tokio::time::timeout(std::time::Duration::from_secs(1), interrupt.wait()).await.unwrap();

        let (interrupt, trigger) = Interrupt::triggered();
        drop(trigger);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), interrupt.wait()).await;
        assert!(waited.is_err());
    }
}
