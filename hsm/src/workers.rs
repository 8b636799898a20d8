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
//!
//! A session is given up before its job's caller has the answer, while that caller still holds
//! its share of the token (`Hsm::objects_read`): never during a `C_Finalize` another thread
//! makes. A session opened before the module was finalised (an older module epoch) is
//! forgotten, not closed: its handle died with the module, and after `C_Initialize` the same
//! number may name a session of someone else.

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

/// Hands a job's answer to its caller; run once the worker is done with the session.
type Deliver = Box<dyn FnOnce() + Send>;

type Job = Box<dyn FnOnce(Result<&Session, HsmError>) -> (After, Deliver) + Send>;

pub(crate) struct Workers {
    sender: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    generation: Arc<AtomicU64>,
}

/// A worker's session, with the reset generation and the module epoch it was opened in.
struct Held {
    session: Session,
    generation: u64,
    epoch: u64,
}

impl Held {
    /// Closes the session, or forgets it when the module was finalised since it was opened.
    fn give_up(self, epoch_now: u64) {
        if self.epoch == epoch_now {
            drop(self.session);
        } else {
            std::mem::forget(self.session);
        }
    }
}

fn stopped() -> HsmError {
    HsmError::Library {
        context: "signing workers",
        reason: "the signing workers have stopped".into(),
    }
}

impl Workers {
    /// Starts `size` workers (at least one). Sessions open on first use, on the slot `slot`
    /// holds at that moment (a re-initialised module may number its slots anew). `epoch` is
    /// the module's: bumped at each `C_Finalize` nesca makes.
    pub(crate) fn start(
        ctx: Pkcs11,
        slot: Arc<Mutex<Slot>>,
        epoch: Arc<AtomicU64>,
        size: usize,
    ) -> Result<Workers, HsmError> {
        let size = size.max(1);
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let generation = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(size);
        for i in 0..size {
            let (ctx, rx, generation, slot, epoch) = (
                ctx.clone(),
                rx.clone(),
                generation.clone(),
                slot.clone(),
                epoch.clone(),
            );
            let thread = std::thread::Builder::new()
                .name(format!("nesca-hsm-{i}"))
                .spawn(move || worker_loop(ctx, slot, rx, generation, epoch))
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
            let deliver: Deliver = Box::new(move || {
                // The caller waits for this; if it has gone, the answer has no reader.
                let _ = reply.send(result);
            });
            (after, deliver)
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
    epoch: Arc<AtomicU64>,
) {
    let mut session: Option<Held> = None;
    for job in jobs.iter() {
        // Read while the job's caller holds its share of the token: stable until it answers.
        let (generation_now, epoch_now) = (
            generation.load(Ordering::SeqCst),
            epoch.load(Ordering::SeqCst),
        );
        if session
            .as_ref()
            .is_some_and(|h| h.generation != generation_now || h.epoch != epoch_now)
        {
            if let Some(held) = session.take() {
                held.give_up(epoch_now);
            }
        }
        if session.is_none() {
            let current_slot = *slot.lock().unwrap_or_else(|p| p.into_inner());
            match ctx.open_rw_session(current_slot) {
                Ok(s) => {
                    session = Some(Held {
                        session: s,
                        generation: generation_now,
                        epoch: epoch_now,
                    })
                }
                Err(e) => {
                    let (_, deliver) = job(Err(HsmError::from_ck("C_OpenSession", e)));
                    deliver();
                    continue;
                }
            }
        }
        let Some(held) = session.as_ref() else {
            continue;
        };
        // A panic inside a job must not take the worker (and its share of the HSM) with it;
        // the caller sees its answer channel close and gets an error.
        match catch_unwind(AssertUnwindSafe(|| job(Ok(&held.session)))) {
            Ok((After::Keep, deliver)) => deliver(),
            Ok((After::Discard, deliver)) => {
                if let Some(held) = session.take() {
                    held.give_up(epoch_now);
                }
                deliver();
            }
            // The caller has its answer (the channel closed) and may have let go of the token:
            // no PKCS#11 call any more on this session, which is forgotten.
            Err(_) => {
                if let Some(held) = session.take() {
                    std::mem::forget(held.session);
                }
            }
        }
    }
}
