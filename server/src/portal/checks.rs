//! The threads that run the portal's password, word and code checks. An argon2 verification
//! allocates about 19 MiB; run on the runtime's blocking pool, each new thread would keep its
//! own allocator arena with such a block in it, and a flood of sign-ins would leave the process
//! holding hundreds of MiB. Here a few threads of their own (one per core, 2 to 8) take every
//! check, one source (an address, an IPv6 /64) holds at most half of them, and a request finds
//! one free or is answered 503 at once ([`CheckPool::try_run`]).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Why a check did not run.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum NotRun {
    /// Every check thread, or the source's share of them, is taken.
    Busy,
    /// The check panicked (logged), or the pool stopped.
    Failed,
}

/// A fixed set of check threads, the permits that say how many are free, and how many each
/// source holds.
pub(super) struct CheckPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    free: Arc<tokio::sync::Semaphore>,
    per_source: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// A source's hold on a check thread, given back when dropped.
struct SourceHold {
    held: Arc<Mutex<HashMap<String, usize>>>,
    source: String,
}

impl Drop for SourceHold {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.source);
            }
        }
    }
}

impl CheckPool {
    /// Starts `threads` check threads.
    pub(super) fn start(threads: usize) -> std::io::Result<CheckPool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("nesca-portal-check-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        // The pool is gone: the server stops.
                        Err(_) => return,
                    };
                    // A check that panics is logged and answers nothing; the thread lives on.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a portal check panicked; the request was answered 503");
                    }
                })?;
        }
        Ok(CheckPool {
            jobs: Mutex::new(tx),
            free: Arc::new(tokio::sync::Semaphore::new(threads)),
            per_source: (threads / 2).max(1),
            held: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Takes one of `source`'s share of the threads, if it has one left.
    fn hold(&self, source: &str) -> Option<SourceHold> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(source.to_owned()).or_insert(0);
        if *n >= self.per_source {
            return None;
        }
        *n += 1;
        Some(SourceHold {
            held: self.held.clone(),
            source: source.to_owned(),
        })
    }

    /// Runs `work` for `source` on a check thread and answers its result; [`NotRun::Busy`] at
    /// once when every check thread, or the source's share, is taken.
    pub(super) async fn try_run<T: Send + 'static>(
        &self,
        source: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let hold = self.hold(source).ok_or(NotRun::Busy)?;
        let permit = self
            .free
            .clone()
            .try_acquire_owned()
            .map_err(|_| NotRun::Busy)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = work();
            // Free before the answer goes: the next request finds the thread free.
            drop((permit, hold));
            let _ = tx.send(result);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| NotRun::Failed)?;
        rx.await.map_err(|_| NotRun::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Holds a check thread for `source` until the returned sender sends.
    fn hold_one(
        pool: &Arc<CheckPool>,
        source: &'static str,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<bool, NotRun>>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let pool = pool.clone();
        let task =
            tokio::spawn(async move { pool.try_run(source, move || rx.recv().is_ok()).await });
        (tx, task)
    }

    async fn settle(pool: &CheckPool, free: usize) {
        for _ in 0..1000 {
            if pool.free.available_permits() == free {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the pool never had {free} free threads");
    }

    #[test]
    fn a_full_pool_and_a_sources_full_share_refuse_at_once() {
        runtime().block_on(async {
            let pool = Arc::new(CheckPool::start(2).unwrap());
            assert_eq!(pool.try_run("a", || 41 + 1).await, Ok(42));
            // Source a holds its share (one of two threads): a is refused, b is not.
            let (release_a, a) = hold_one(&pool, "a");
            settle(&pool, 1).await;
            assert_eq!(pool.try_run("a", || 1).await, Err(NotRun::Busy));
            let (release_b, b) = hold_one(&pool, "b");
            settle(&pool, 0).await;
            // Both threads taken: everyone is refused.
            assert_eq!(pool.try_run("c", || 1).await, Err(NotRun::Busy));
            release_a.send(()).unwrap();
            release_b.send(()).unwrap();
            assert_eq!(a.await.unwrap(), Ok(true));
            assert_eq!(b.await.unwrap(), Ok(true));
            assert_eq!(pool.try_run("a", || 2).await, Ok(2));
            assert!(pool.held.lock().unwrap().is_empty());
        });
    }

    #[test]
    fn a_panicking_check_fails_and_the_thread_lives_on() {
        runtime().block_on(async {
            let pool = CheckPool::start(1).unwrap();
            let failed = pool.try_run("a", || -> u8 { panic!("a bug") }).await;
            assert_eq!(failed, Err(NotRun::Failed));
            assert_eq!(pool.try_run("a", || 3).await, Ok(3));
        });
    }
}
