//! Signing workers: one thread per PKCS#11 session, fed from one queue.
//!
//! `cryptoki::Session` is `Send` but not `Sync`, and a mutex around one session halves the
//! signing rate, so each session belongs to one worker thread. Callers queue a job and wait
//! for its answer. While jobs are waiting, a worker takes the next one straight away on a
//! session that is already open; there is no hand-over of a session between sleeping
//! threads between two signatures.
//!
//! A job that fails transiently (session closed, device removed) makes its worker drop the
//! session; the next job opens a fresh one. [`Workers::reset`] makes every worker do so.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cryptoki::context::Pkcs11;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use crate::error::ErrorClass;
use crate::HsmError;

/// What the worker does with its session after a job.
enum After {
    Keep,
    Discard,
}

type Job = Box<dyn FnOnce(Result<&Session, HsmError>) -> After + Send>;

pub(crate) struct Workers {
    sender: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    generation: Arc<AtomicU64>,
}

fn stopped() -> HsmError {
    HsmError::Library {
        context: "signing workers",
        reason: "the signing workers have stopped".into(),
    }
}

impl Workers {
    /// Starts `size` workers (at least one). Sessions open on first use, on the slot `slot`
    /// holds at that moment (a re-initialised module may number its slots anew).
    pub(crate) fn start(
        ctx: Pkcs11,
        slot: Arc<Mutex<Slot>>,
        size: usize,
    ) -> Result<Workers, HsmError> {
        let size = size.max(1);
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let generation = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(size);
        for i in 0..size {
            let (ctx, rx, generation, slot) =
                (ctx.clone(), rx.clone(), generation.clone(), slot.clone());
            let thread = std::thread::Builder::new()
                .name(format!("nesca-hsm-{i}"))
                .spawn(move || worker_loop(ctx, slot, rx, generation))
                .map_err(|e| HsmError::Library {
                    context: "starting signing workers",
                    reason: e.to_string(),
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            sender: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            generation,
        })
    }

    /// Runs `op` on some worker's session and waits for its answer.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Session) -> Result<T, HsmError> + Send + 'static,
    ) -> Result<T, HsmError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::new(move |session| {
            let result = session.and_then(op);
            let after = match &result {
                Err(e) if e.class() == ErrorClass::Transient => After::Discard,
                _ => After::Keep,
            };
            // The caller waits for this; if it has gone, the answer has no reader.
            let _ = reply.send(result);
            after
        });
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(stopped)?;
        sender.send(job).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Makes every worker close its session before its next job.
    pub(crate) fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Closing the queue ends each worker after the jobs already queued.
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }
}

fn worker_loop(
    ctx: Pkcs11,
    slot: Arc<Mutex<Slot>>,
    jobs: crossbeam_channel::Receiver<Job>,
    generation: Arc<AtomicU64>,
) {
    let mut session: Option<(Session, u64)> = None;
    for job in jobs.iter() {
        let current = generation.load(Ordering::SeqCst);
        if session.as_ref().is_some_and(|(_, g)| *g != current) {
            session = None;
        }
        if session.is_none() {
            let current_slot = *slot.lock().unwrap_or_else(|p| p.into_inner());
            match ctx.open_rw_session(current_slot) {
                Ok(s) => session = Some((s, current)),
                Err(e) => {
                    job(Err(HsmError::from_ck("C_OpenSession", e)));
                    continue;
                }
            }
        }
        let Some((s, _)) = session.as_ref() else {
            continue;
        };
        // A panic inside a job must not take the worker (and its share of the HSM) with it;
        // the caller sees its answer channel close and gets an error.
        match catch_unwind(AssertUnwindSafe(|| job(Ok(s)))) {
            Ok(After::Keep) => {}
            Ok(After::Discard) | Err(_) => session = None,
        }
    }
}
