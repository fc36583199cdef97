//! Long-lived threads for the embedded model's blocking work.
//!
//! llama.cpp's CPU backend spreads each step over cores with OpenMP, and the OpenMP runtime
//! keeps a thread team per calling thread. Tokio's `spawn_blocking` hands successive
//! generations to whichever pooled thread is free, so teams multiply and idle ones compete
//! for the cores: generation speed varied from 60 to 110 tokens/s between identical runs.
//! Here a job always goes to the lowest-numbered idle thread, so sequential work stays on one
//! thread (one team), and concurrent work grows the pool only as far as it is concurrent.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// Runs on a pool thread and returns the step that hands its result over. The thread marks
/// itself idle between the two, so that the caller, woken by the hand-over, finds it free.
type Job = Box<dyn FnOnce() -> Box<dyn FnOnce() + Send> + Send>;

struct Worker {
    jobs: Sender<Job>,
    idle: Arc<AtomicBool>,
}

#[derive(Default)]
struct Pool {
    workers: Mutex<Vec<Worker>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

/// Why a job produced no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    #[error("the work panicked: {0}")]
    Panicked(String),
    #[error("no thread could be started for the work: {0}")]
    Spawn(String),
}

/// Runs `work` on a pool thread and waits for its result without blocking the runtime.
pub(crate) async fn run<T, F>(work: F) -> Result<T, JobError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let outcome = catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into())
        });
        Box::new(move || {
            // The caller may have gone (its future was dropped); nothing to hand over then.
            let _ = tx.send(outcome);
        })
    });
    pool().submit(job)?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(JobError::Panicked(message)),
        // The job always sends, panics included; a lost sender means the thread is gone.
        Err(_) => Err(JobError::Panicked("the worker thread ended".into())),
    }
}

impl Pool {
    fn submit(&self, mut job: Job) -> Result<(), JobError> {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for worker in workers.iter() {
            if worker.idle.compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                match worker.jobs.send(job) {
                    Ok(()) => return Ok(()),
                    // Unreachable while workers never exit; take the job back and go on.
                    Err(returned) => job = returned.0,
                }
            }
        }
        let (jobs, rx) = channel::<Job>();
        let idle = Arc::new(AtomicBool::new(false));
        let flag = idle.clone();
        std::thread::Builder::new()
            .name(format!("vsim-llama-{}", workers.len()))
            .spawn(move || {
                for job in rx {
                    let hand_over = job();
                    flag.store(true, Ordering::Release);
                    hand_over();
                }
            })
            .map_err(|e| JobError::Spawn(e.to_string()))?;
        jobs.send(job).map_err(|_| JobError::Spawn("the new thread ended at once".into()))?;
        workers.push(Worker { jobs, idle });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is process-wide: these tests take turns so that each sees only its own jobs.
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn sequential_jobs_stay_on_one_thread() {
        let _serial = SERIAL.lock().await;
        let mut names = std::collections::HashSet::new();
        for _ in 0..20 {
            names.insert(run(thread_name).await.unwrap());
        }
        assert_eq!(names.len(), 1, "{names:?}");
    }

    /// What the embedded model does: one permit, released after the job's result is handed
    /// over. Requests queued on it then find the same thread idle every time, so the process
    /// keeps one OpenMP team (released inside the job, the next request raced the thread's
    /// idle mark and often started a second thread).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn jobs_queued_on_one_permit_released_after_the_hand_over_stay_on_one_thread() {
        let _serial = SERIAL.lock().await;
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let jobs = (0..16).map(|_| {
            let permits = permits.clone();
            async move {
                let permit = permits.acquire_owned().await.unwrap();
                let name = run(|| {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    thread_name()
                })
                .await;
                drop(permit);
                name.unwrap()
            }
        });
        let names: std::collections::HashSet<String> =
            futures::future::join_all(jobs.map(tokio::spawn)).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn concurrent_jobs_run_at_once() {
        let _serial = SERIAL.lock().await;
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let jobs = (0..3).map(|_| {
            let b = barrier.clone();
            run(move || {
                b.wait();
                thread_name()
            })
        });
        let names: Vec<String> =
            futures::future::join_all(jobs).await.into_iter().map(Result::unwrap).collect();
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), 3, "{names:?}");
    }

    #[tokio::test]
    async fn a_panic_is_an_error_and_the_pool_goes_on() {
        let _serial = SERIAL.lock().await;
        let err = run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(run(|| 7).await.unwrap(), 7);
    }
}
