//! The threads that run the portal's password, word and code checks. An argon2 verification
//! allocates about 19 MiB; run on the runtime's blocking pool, each new thread would keep its
//! own allocator arena with such a block in it, and a flood of sign-ins would leave the process
//! holding hundreds of MiB. Here a few threads of their own (one per core, 2 to 8) take every
//! check, and a request finds one free or is answered 503 at once ([`CheckPool::try_run`]).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of check threads and the permits that say how many are free.
pub(super) struct CheckPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    free: Arc<tokio::sync::Semaphore>,
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
                    // A check that panics answers nothing (the request sees a stopped pool);
                    // the thread lives on for the next.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                })?;
        }
        Ok(CheckPool {
            jobs: Mutex::new(tx),
            free: Arc::new(tokio::sync::Semaphore::new(threads)),
        })
    }

    /// Runs `work` on a check thread and answers its result; `None` at once when every check
    /// thread is taken (or the pool stopped).
    pub(super) async fn try_run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let permit = self.free.clone().try_acquire_owned().ok()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let result = work();
            // Free before the answer goes: the next request finds the thread free.
            drop(permit);
            let _ = tx.send(result);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_runs_on_a_free_thread_and_a_full_pool_refuses_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = Arc::new(CheckPool::start(1).unwrap());
            assert_eq!(pool.try_run(|| 41 + 1).await, Some(42));
            // The one thread held by a long check: the next is refused, not queued.
            let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
            let busy = {
                let pool = pool.clone();
                tokio::spawn(async move { pool.try_run(move || hold_rx.recv().is_ok()).await })
            };
            tokio::task::yield_now().await;
            for _ in 0..100 {
                if pool.free.available_permits() == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            assert_eq!(pool.try_run(|| 1).await, None);
            hold_tx.send(()).unwrap();
            assert_eq!(busy.await.unwrap(), Some(true));
            assert_eq!(pool.try_run(|| 2).await, Some(2));
        });
    }
}
