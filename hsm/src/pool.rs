//! A bounded pool of PKCS#11 sessions, one lent to each worker at a time.
//!
//! `cryptoki::Session` is `Send` but not `Sync`; sharing one session behind a mutex halves the
//! signing rate, so each worker borrows a session of its own. A session that failed with a
//! transient error is closed instead of returned, and a fresh one is opened on the next borrow.
//! Closing a pool session never logs the application out: the login session lives outside the
//! pool (see `module.rs`).

use std::ops::Deref;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use crate::HsmError;

/// How long a borrower waits for a free session before reporting the HSM as busy.
const BORROW_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct SessionPool {
    ctx: Pkcs11,
    slot: Slot,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<Session>,
    open: usize,
}

/// A session on loan from the pool; returned on drop unless marked broken.
pub(crate) struct PooledSession<'a> {
    pool: &'a SessionPool,
    session: Option<Session>,
    broken: bool,
}

impl SessionPool {
    pub(crate) fn new(ctx: Pkcs11, slot: Slot, max: usize) -> Self {
        SessionPool {
            ctx,
            slot,
            max: max.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.max
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding this lock cannot leave PoolState inconsistent (plain pushes
        // and counters), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Borrows an idle session, opens a new one while under the bound, or waits for one.
    pub(crate) fn get(&self) -> Result<PooledSession<'_>, HsmError> {
        let mut state = self.lock();
        loop {
            if let Some(session) = state.idle.pop() {
                return Ok(PooledSession {
                    pool: self,
                    session: Some(session),
                    broken: false,
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.ctx.open_rw_session(self.slot) {
                    Ok(session) => Ok(PooledSession {
                        pool: self,
                        session: Some(session),
                        broken: false,
                    }),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(HsmError::from_ck("C_OpenSession", e))
                    }
                };
            }
            let (next, timeout) = self
                .freed
                .wait_timeout(state, BORROW_TIMEOUT)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            if timeout.timed_out() && state.idle.is_empty() && state.open >= self.max {
                return Err(HsmError::Library {
                    context: "session pool",
                    reason: format!(
                        "no free session after {}s (pool size {})",
                        BORROW_TIMEOUT.as_secs(),
                        self.max
                    ),
                });
            }
        }
    }

    /// Closes every idle session (used after the module was re-logged in).
    pub(crate) fn clear_idle(&self) {
        let mut state = self.lock();
        let n = state.idle.len();
        state.idle.clear();
        state.open -= n;
        drop(state);
        self.freed.notify_all();
    }
}

impl PooledSession<'_> {
    /// Marks the session unusable: it is closed instead of returned.
    pub(crate) fn discard(&mut self) {
        self.broken = true;
    }
}

impl Deref for PooledSession<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        // Invariant: `session` is Some until drop.
        self.session
            .as_ref()
            .expect("pooled session present until drop")
    }
}

impl Drop for PooledSession<'_> {
    fn drop(&mut self) {
        let session = self.session.take();
        let mut state = self.pool.lock();
        match session {
            Some(s) if !self.broken => state.idle.push(s),
            other => {
                state.open -= 1;
                drop(state);
                // Closing may fail if the device is gone; the handle is dead either way.
                drop(other);
                self.pool.freed.notify_one();
                return;
            }
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}
