//! The bounded pool that runs password hashing off the async runtime.
//!
//! Argon2id costs tens of milliseconds of one core and ~19 MiB of memory per call. Run on a
//! runtime worker it would stall every other request on that worker; run on an unbounded
//! `spawn_blocking` a login flood would start hundreds of hashes at once and exhaust memory.
//! So: at most `workers` hashes run at a time (a semaphore in front of the workers), at
//! most `max_waiting` more may queue for a permit, and anything beyond that is refused at
//! once ([`PoolBusy`], which handlers answer with 503 and `Retry-After`). The queue bound
//! keeps both memory and the worst-case wait bounded; health checks, static pages and
//! already-signed-in users never touch the pool, so they stay fast during a flood.
//!
//! The jobs run on `workers` long-lived threads of our own rather than on tokio's
//! `spawn_blocking` pool. With `spawn_blocking`, successive hashes landed on many different
//! blocking threads, and glibc keeps each thread's freed 19 MiB Argon2 buffer in that thread's
//! malloc arena: after a login flood the process held ~800 MiB until the idle threads exited
//! (measured with bench/server_vs_django.py). A fixed set of threads bounds that retained
//! memory to `workers` buffers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

/// Waiting requests allowed per worker before new ones are refused.
pub const QUEUE_PER_WORKER: usize = 4;

/// The pool is saturated (or shutting down); try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password hashing pool is busy")]
pub struct PoolBusy;

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug)]
pub struct HashPool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    /// Hands jobs to the worker threads. The semaphore admits at most `workers` jobs at a
    /// time, so this channel never holds more than that. Dropping the pool closes it and the
    /// threads exit.
    jobs: Mutex<Sender<Job>>,
}

impl HashPool {
    /// A pool of `workers` (at least 1) concurrent jobs and `QUEUE_PER_WORKER × workers`
    /// waiting ones.
    pub fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        Self::with_queue(workers, workers.saturating_mul(QUEUE_PER_WORKER))
    }

    pub fn with_queue(workers: usize, max_waiting: usize) -> Self {
        let workers = workers.max(1);
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for i in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("palisade-hash-{i}"))
                .spawn(move || worker_loop(&receiver));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start a password-hashing thread"),
            }
        }
        Self {
            // Never admit more jobs than there are threads to run them; with no thread at
            // all every login gets PoolBusy (503) instead of hanging.
            permits: Arc::new(Semaphore::new(started)),
            waiting: AtomicUsize::new(0),
            max_waiting: if started == 0 { 0 } else { max_waiting },
            jobs: Mutex::new(sender),
        }
    }

    /// Runs `job` on a blocking thread once a worker is free; [`PoolBusy`] at once if the
    /// queue is already full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolBusy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Reserve a queue slot first, so the count can never exceed the bound even
                // when many requests race here.
                let reserved =
                    self.waiting
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                            (n < self.max_waiting).then_some(n + 1)
                        });
                if reserved.is_err() {
                    return Err(PoolBusy);
                }
                // Released on drop, so a request cancelled while waiting (timeout, client
                // gone) gives its slot back instead of shrinking the queue for good.
                let _slot = QueueSlot(&self.waiting);
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| PoolBusy)?
            }
        };
        let (done, result) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            // Held for the job's whole run, released when the thread finishes it.
            let _permit = permit;
            // A receiver that went away (request cancelled) just discards the result.
            let _ = done.send(job());
        });
        self.jobs
            .lock()
            .map_err(|_| PoolBusy)?
            .send(wrapped)
            .map_err(|_| PoolBusy)?;
        result.await.map_err(|_| PoolBusy)
    }
}

/// One hashing thread: runs jobs until the pool is dropped. A job that panics (none should:
/// panics are denied by lint) costs its own request a 503, not the thread.
fn worker_loop(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = match receiver.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => {
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuses_beyond_workers_plus_queue() {
        let pool = Arc::new(HashPool::with_queue(1, 2));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let pool = Arc::clone(&pool);
            tasks.push(tokio::spawn(async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(300)))
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // One running, two waiting: the fourth is refused without waiting.
        assert_eq!(pool.run(|| ()).await, Err(PoolBusy));
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(()));
        }
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_the_pools_own_few_threads() {
        // The memory bound depends on this: every hash runs on one of `workers` long-lived
        // threads, never on a growing set of blocking threads.
        let pool = Arc::new(HashPool::with_queue(2, 64));
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let pool = Arc::clone(&pool);
            tasks.push(tokio::spawn(async move {
                pool.run(|| {
                    std::thread::sleep(Duration::from_millis(2));
                    std::thread::current().name().map(str::to_owned)
                })
                .await
            }));
        }
        let mut names = std::collections::BTreeSet::new();
        for t in tasks {
            names.insert(t.await.unwrap().unwrap().unwrap());
        }
        assert!(names.len() <= 2, "ran on {names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("palisade-hash-")),
            "{names:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_waiters_free_their_slot() {
        let pool = Arc::new(HashPool::with_queue(1, 1));
        let busy = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(300)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A waiter that gives up (as the request timeout would make it) ...
        let gave_up = tokio::time::timeout(Duration::from_millis(20), pool.run(|| ())).await;
        assert!(gave_up.is_err());
        // ... leaves the queue slot free for the next one.
        assert_eq!(pool.run(|| 1).await, Ok(1));
        assert_eq!(busy.await.unwrap(), Ok(()));
    }
}
