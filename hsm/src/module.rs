//! Loading the PKCS#11 module, finding the token, logging in, and the retry policy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;

use crate::error::{ErrorClass, Remedy};
use crate::softhsm_guard;
use crate::store_lock::StoreLock;
use crate::workers::Workers;
use crate::HsmError;

/// Where the token is and how to log in to it.
pub struct HsmConfig {
    /// Path of the vendor's PKCS#11 module (SoftHSM: `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label; slots are found by label because SoftHSM assigns random slot ids.
    pub token_label: String,
    /// The user PIN. Never logged, never part of an error.
    pub pin: SecretString,
    /// How many sessions (signing workers) at most.
    pub pool_size: usize,
    /// Sessions of their own for OCSP signers ([`KeySigner::on_ocsp_sessions`]), so that
    /// answering relying parties never waits behind issuance and CRLs, nor they behind an OCSP
    /// flood. 0: OCSP signers share the signing workers.
    ///
    /// [`KeySigner::on_ocsp_sessions`]: crate::KeySigner::on_ocsp_sessions
    pub ocsp_pool_size: usize,
    /// SoftHSM only: the `softhsm2.conf` this token lives in. SoftHSM reads `SOFTHSM2_CONF`
    /// at `C_Initialize`, so it is set here, before the module is initialised.
    pub softhsm_conf: Option<PathBuf>,
}

/// An initialised, logged-in PKCS#11 token. Cheap to clone.
#[derive(Clone)]
pub struct Hsm {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) ctx: Pkcs11,
    /// The token's slot; found again by label when the module is re-initialised.
    slot: Arc<Mutex<Slot>>,
    token_label: String,
    pin: SecretString,
    /// SoftHSM only: its configuration, whose token store [`StoreLock`] locks.
    softhsm_conf: Option<PathBuf>,
    /// Kept open for the life of the process: login state is per application and ends when
    /// the last session closes, which would also invalidate private key handles.
    login_session: Mutex<Option<Session>>,
    pub(crate) workers: Workers,
    /// The OCSP signers' workers, when `ocsp_pool_size` is not 0.
    ocsp_workers: Option<Workers>,
    /// Key generation takes it for writing, every other token operation for reading.
    /// SoftHSM's file store answered C_GenerateKeyPair with CKR_GENERAL_ERROR when other
    /// sessions signed or searched the token at the same moment (reproduced by the test
    /// `keys_generated_from_several_threads_at_once`). Generation is rare; readers do not
    /// wait for each other. Reconnecting (`C_Finalize`, `C_Initialize`) takes it for writing
    /// too: no other thread is inside the module meanwhile.
    pub(crate) objects: RwLock<()>,
    /// The module's epoch: bumped at each `C_Finalize` nesca makes. Sessions and object handles
    /// of an earlier epoch are dead (and their numbers may be reused): workers forget such
    /// sessions, signers look their key up again.
    pub(crate) epoch: Arc<AtomicU64>,
    /// Reconnection after the token was lost: who tries, when next, and why it failed.
    recovery: Mutex<Recovery>,
    /// Whether the module's AES key wrap with padding is RFC 5649: checked at the first card
    /// key wrapping (`kwp.rs`), then kept for the life of the process.
    pub(crate) aes_key_wrap: Mutex<Option<crate::kwp::AesKeyWrapCheck>>,
}

/// The state of reconnection ([`Hsm::reconnect`]).
#[derive(Default)]
struct Recovery {
    /// Since when the token is lost (a reconnection failed), while it is.
    lost_since: Option<Instant>,
    /// Reconnections that failed since then.
    failures: u32,
    /// Why the last one failed.
    last: Option<HsmError>,
    /// No reconnection before this instant.
    not_before: Option<Instant>,
    /// The token refused the PIN: never tried again by this process (a real HSM locks the PIN
    /// after a few wrong tries, and the PIN does not change while the process runs).
    pin_refused: Option<HsmError>,
}

impl Recovery {
    fn lost_error(&self, label: &str, cause: Option<&HsmError>) -> HsmError {
        if let Some(refused) = &self.pin_refused {
            return refused.clone();
        }
        let last = self
            .last
            .clone()
            .or_else(|| cause.cloned())
            .unwrap_or_else(|| not_found(label, &[]));
        HsmError::TokenLost {
            label: label.to_string(),
            failures: self.failures,
            last: Box::new(last),
        }
    }
}

/// Attempts for an operation that fails transiently, and the first back-off.
const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The pause after a reconnection before the next may start; it doubles with each failure
/// up to [`RECONNECT_MAX_PAUSE`], so that a lost token costs the module one `C_Finalize` and
/// `C_Initialize` a second at most, and a token that returns is found within a second.
const RECONNECT_FIRST_PAUSE: Duration = Duration::from_millis(250);
const RECONNECT_MAX_PAUSE: Duration = Duration::from_secs(1);
/// How long one reconnection retries a token store caught mid-update ([`connect`]).
const RECONNECT_BUDGET: Duration = Duration::from_millis(200);

/// The pause before the reconnection that follows `failures` failed ones (0: after a success).
fn reconnect_pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RECONNECT_FIRST_PAUSE * (1u32 << doublings)).min(RECONNECT_MAX_PAUSE)
}

/// Which sessions an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// The signing workers: issuance, CRLs, key operations.
    Signing,
    /// The OCSP signers' own workers (the signing workers when there are none).
    Ocsp,
}

/// A module initialised in this process, and the SoftHSM configuration it read.
type Initialised = (Pkcs11, Option<PathBuf>);

/// `C_Initialize` may run once per process and module; later opens share the context.
fn initialised_modules() -> &'static Mutex<HashMap<PathBuf, Initialised>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Initialised>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Hsm {
    /// Loads and initialises the module, finds the token by label and logs the user in.
    pub fn open(config: HsmConfig) -> Result<Hsm, HsmError> {
        // Other nesca processes neither read nor rewrite the token's metadata meanwhile.
        let mut store = StoreLock::acquire(config.softhsm_conf.as_deref());
        let ctx = load_module(&config.module, config.softhsm_conf.as_deref())?;
        let (slot, login) = connect(
            &ctx,
            &config.token_label,
            &config.pin,
            config.softhsm_conf.as_deref(),
            &mut store,
            CONNECT_BUDGET,
        )?;
        drop(store);
        let slot = Arc::new(Mutex::new(slot));
        let epoch = Arc::new(AtomicU64::new(0));
        let workers = Workers::start(ctx.clone(), slot.clone(), epoch.clone(), config.pool_size)?;
        let ocsp_workers = match config.ocsp_pool_size {
            0 => None,
            n => Some(Workers::start(ctx.clone(), slot.clone(), epoch.clone(), n)?),
        };
        Ok(Hsm {
            inner: Arc::new(Inner {
                ctx,
                slot,
                token_label: config.token_label,
                pin: config.pin,
                softhsm_conf: config.softhsm_conf,
                login_session: Mutex::new(Some(login)),
                workers,
                ocsp_workers,
                objects: RwLock::new(()),
                epoch,
                recovery: Mutex::new(Recovery::default()),
                aes_key_wrap: Mutex::new(None),
            }),
        })
    }

    /// Initialises a new token in a free slot (one whose token is not initialised yet, as
    /// SoftHSM always offers) and sets its user PIN. The PINs travel through PKCS#11 only,
    /// never through a command line where other local users could read them.
    pub fn init_token(
        module: &Path,
        softhsm_conf: Option<&Path>,
        label: &str,
        so_pin: &SecretString,
        user_pin: &SecretString,
    ) -> Result<(), HsmError> {
        let _store = StoreLock::acquire(softhsm_conf);
        let ctx = load_module(module, softhsm_conf)?;
        if find_token(&ctx, label).is_ok() {
            return Err(HsmError::TokenExists {
                label: label.to_string(),
            });
        }
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| HsmError::from_ck("C_GetSlotList", e))?;
        let mut free = None;
        for slot in slots {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| HsmError::from_ck("C_GetTokenInfo", e))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| HsmError::TokenNotFound {
            label: "(a free slot with an uninitialised token)".into(),
            available: "none free".into(),
        })?;
        ctx.init_token(slot, so_pin, label)
            .map_err(|e| HsmError::from_ck("C_InitToken", e))?;
        let slot = find_token(&ctx, label)?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| HsmError::from_ck("C_OpenSession", e))?;
        session
            .login(UserType::So, Some(so_pin))
            .map_err(|e| HsmError::from_ck("C_Login", e))?;
        session
            .init_pin(user_pin)
            .map_err(|e| HsmError::from_ck("C_InitPIN", e))?;
        session
            .logout()
            .map_err(|e| HsmError::from_ck("C_Logout", e))?;
        Ok(())
    }

    /// Runs `op` on a worker's session of `lane`, retrying transient failures with back-off on
    /// a fresh session (and a fresh login when the token forgot it, and a reconnected module
    /// when the token does not answer). Permanent failures return at once; so does
    /// [`HsmError::TokenLost`] while the token cannot be reached, without touching the HSM
    /// between two reconnection attempts.
    pub(crate) fn with_session<T: Send + 'static>(
        &self,
        lane: Lane,
        op: impl Fn(&Session) -> Result<T, HsmError> + Send + Sync + 'static,
    ) -> Result<T, HsmError> {
        let workers = match (lane, &self.inner.ocsp_workers) {
            (Lane::Ocsp, Some(ocsp)) => ocsp,
            _ => &self.inner.workers,
        };
        let op = Arc::new(op);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            if self.is_lost() {
                // No session on a slot that may be gone: reconnect when it is time, else
                // answer at once.
                self.reconnect(self.epoch(), None)?;
            }
            let this_try = op.clone();
            // The share of the token is held for one attempt only: a reconnection between two
            // takes the token whole.
            let (epoch, result) = {
                let _reading = self.objects_read();
                (self.epoch(), workers.run(move |session| this_try(session)))
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if e.class() == ErrorClass::Permanent => return Err(e),
                Err(e) if attempt >= MAX_ATTEMPTS => {
                    return Err(HsmError::Unavailable {
                        attempts: attempt,
                        last: Box::new(e),
                    })
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "transient HSM error; retrying");
                    self.recover(&e, epoch)?;
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// After the transient error `cause` of an attempt made in module epoch `seen`: new
    /// sessions and a new login while the token answers as ours (a session closed, the login
    /// lost), else a reconnection ([`Hsm::reconnect`]). An error: the token is lost, and the
    /// caller answers that now.
    fn recover(&self, cause: &HsmError, seen: u64) -> Result<(), HsmError> {
        if cause.remedy() == Remedy::Sessions {
            // Decided under the share of the token, acted on without it: the recovery state's
            // lock is taken before the whole token (`reconnect`), never after a share of it.
            let relogged = {
                let _reading = self.objects_read();
                if self.epoch() != seen {
                    // Reconnected meanwhile by another thread.
                    return Ok(());
                }
                match self.probe() {
                    // Logging in again is harmless when the token had not forgotten the login
                    // (CKR_USER_ALREADY_LOGGED_IN).
                    Ok(()) => Some(self.relogin()),
                    Err(e) => {
                        tracing::warn!(error = %e, cause = %cause, "the HSM token does not answer");
                        None
                    }
                }
            };
            match relogged {
                Some(Err(e)) if e.pin_refused() => {
                    self.refuse_pin(&e);
                    return Err(e);
                }
                // Another failure shows up as the next attempt's.
                Some(_) => return Ok(()),
                None => {}
            }
        }
        self.reconnect(seen, Some(cause))
    }

    /// Whether the token on our slot still answers, and as ours (its label): `C_GetTokenInfo`.
    /// SoftHSM answers `CKR_GENERAL_ERROR` once its token directory went away, and keeps doing
    /// so after it came back, until the module is initialised again.
    fn probe(&self) -> Result<(), HsmError> {
        let _store = self.lock_store();
        let info = self
            .inner
            .ctx
            .get_token_info(self.current_slot())
            .map_err(|e| HsmError::from_ck("C_GetTokenInfo", e))?;
        let label = info.label().trim_end();
        if label != self.inner.token_label {
            return Err(not_found(&self.inner.token_label, &[label.to_string()]));
        }
        Ok(())
    }

    /// Whether a reconnection failed and none has succeeded since (or the PIN was refused).
    fn is_lost(&self) -> bool {
        let state = self
            .inner
            .recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.lost_since.is_some() || state.pin_refused.is_some()
    }

    /// Remembers that the token refused the PIN: it is not tried again.
    fn refuse_pin(&self, e: &HsmError) {
        tracing::error!(error = %e, "the HSM token refused the PIN; not logging in again until restarted");
        let mut state = self
            .inner
            .recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        state.pin_refused = Some(e.clone());
    }

    /// Reconnects to the token after an attempt in module epoch `seen` failed (`cause`; none:
    /// the token is known lost): `C_Finalize`, `C_Initialize`, the token found again by label,
    /// a new login; every worker then opens new sessions, every signer looks its key up again.
    ///
    /// Rate-limited: one reconnection at a time, and none before the pause after the last
    /// ([`reconnect_pause`]). While the token is lost and the pause runs, or when this
    /// reconnection fails, the answer is [`HsmError::TokenLost`] at once. The caller must not
    /// hold [`Hsm::objects_read`]: the reconnection waits for every operation in flight.
    fn reconnect(&self, seen: u64, cause: Option<&HsmError>) -> Result<(), HsmError> {
        let label = &self.inner.token_label;
        let mut state = self
            .inner
            .recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if state.pin_refused.is_some() {
            return Err(state.lost_error(label, cause));
        }
        let now = Instant::now();
        // Another thread reconnected since the caller's attempt (or tried and failed), or the
        // pause after the last reconnection runs.
        if self.epoch() != seen || state.not_before.is_some_and(|t| now < t) {
            return match state.lost_since {
                Some(_) => Err(state.lost_error(label, cause)),
                // Reconnected: the caller's back-off and next attempt decide.
                None => Ok(()),
            };
        }
        if state.lost_since.is_none() {
            match cause {
                Some(cause) => {
                    tracing::warn!(token = %label, cause = %cause, "HSM token lost or module reset; reconnecting")
                }
                None => tracing::warn!(token = %label, "reconnecting to the HSM token"),
            }
        }
        let result = {
            let _alone = self.objects_write();
            self.reconnect_locked()
        };
        match result {
            Ok(()) => {
                if let Some(since) = state.lost_since {
                    tracing::warn!(
                        token = %label,
                        lost_ms = since.elapsed().as_millis() as u64,
                        failed_attempts = state.failures,
                        "HSM token back: reconnected, signing again"
                    );
                } else {
                    tracing::info!(token = %label, "reconnected to the HSM token");
                }
                *state = Recovery {
                    not_before: Some(Instant::now() + reconnect_pause(0)),
                    ..Recovery::default()
                };
                Ok(())
            }
            Err(e) if e.pin_refused() => {
                drop(state);
                self.refuse_pin(&e);
                Err(e)
            }
            Err(e) => {
                state.failures += 1;
                state.lost_since.get_or_insert(now);
                let pause = reconnect_pause(state.failures);
                state.not_before = Some(Instant::now() + pause);
                // Warned at the first failures, then once in 60 (a minute or so).
                if state.failures <= 3 || state.failures.is_multiple_of(60) {
                    tracing::warn!(
                        token = %label,
                        failures = state.failures,
                        next_in_ms = pause.as_millis() as u64,
                        error = %e,
                        "HSM token still lost"
                    );
                } else {
                    tracing::debug!(token = %label, failures = state.failures, error = %e, "HSM token still lost");
                }
                state.last = Some(e);
                Err(state.lost_error(label, cause))
            }
        }
    }

    /// The reconnection itself, for a caller that holds [`Hsm::objects_write`].
    fn reconnect_locked(&self) -> Result<(), HsmError> {
        let mut store = self.lock_store();
        // From here on the sessions and handles of this process are dead: forgotten, never
        // closed (after C_Initialize their numbers may name new sessions).
        self.inner.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = self
            .inner
            .login_session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            std::mem::forget(old);
        }
        // C_Finalize then C_Initialize: the way to make a module read its device or store
        // anew. Finalising a module that is not initialised (someone else did) is no error.
        let _ = self.inner.ctx.clone().finalize();
        if let Some(conf) = self.inner.softhsm_conf.as_deref() {
            if let Err(g) = softhsm_guard::guard_tokens(conf) {
                tracing::warn!(error = %g, "SoftHSM token metadata not guarded before reconnecting");
            }
        }
        initialize(&self.inner.ctx)?;
        let (slot, login) = connect(
            &self.inner.ctx,
            &self.inner.token_label,
            &self.inner.pin,
            self.inner.softhsm_conf.as_deref(),
            &mut store,
            RECONNECT_BUDGET,
        )?;
        *self.inner.slot.lock().unwrap_or_else(|p| p.into_inner()) = slot;
        *self
            .inner
            .login_session
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(login);
        Ok(())
    }

    /// Initialises the module again (after `C_Finalize`, a removed device or a library that lost
    /// its state), finds the token by label, logs in, and has every worker open a new session.
    /// Not rate-limited, unlike the reconnection signing makes by itself.
    pub fn reinitialize(&self) -> Result<(), HsmError> {
        tracing::warn!(token = %self.inner.token_label, "re-initialising the PKCS#11 module");
        let mut state = self
            .inner
            .recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let result = {
            let _alone = self.objects_write();
            self.reconnect_locked()
        };
        if result.is_ok() {
            *state = Recovery {
                pin_refused: state.pin_refused.take(),
                ..Recovery::default()
            };
        }
        result
    }

    /// The module's epoch ([`Inner::epoch`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// nesca's lock on the token store ([`StoreLock`]), for a `C_Initialize` or a `C_Login`.
    fn lock_store(&self) -> StoreLock {
        StoreLock::acquire(self.inner.softhsm_conf.as_deref())
    }

    pub(crate) fn current_slot(&self) -> Slot {
        *self.inner.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a new login session and logs in again.
    fn relogin(&self) -> Result<(), HsmError> {
        let _store = self.lock_store();
        self.relogin_locked()
    }

    /// [`Hsm::relogin`] for a caller that holds the [`StoreLock`] already.
    fn relogin_locked(&self) -> Result<(), HsmError> {
        let mut guard = self
            .inner
            .login_session
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let session = self
            .inner
            .ctx
            .open_rw_session(self.current_slot())
            .map_err(|e| HsmError::from_ck("C_OpenSession", e))?;
        login_user(&session, &self.inner.pin)?;
        *guard = Some(session);
        Ok(())
    }

    /// Closes every session this process holds, which logs it out of the token (as a device
    /// reset or an administrator would). The next operation opens sessions and logs in again;
    /// used to exercise recovery.
    pub fn close_all_sessions(&self) {
        let mut guard = self
            .inner
            .login_session
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        guard.take();
        self.reset_workers();
    }

    /// Makes every worker, of both lanes, open a new session before its next job.
    fn reset_workers(&self) {
        self.inner.workers.reset();
        if let Some(ocsp) = &self.inner.ocsp_workers {
            ocsp.reset();
        }
    }

    /// Shared access to the token's objects (signing, searching).
    pub(crate) fn objects_read(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.inner.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Sole access to the token's objects (key generation).
    pub(crate) fn objects_write(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.inner
            .objects
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A session of its own for key management (rare, not retried, closed after use; the
    /// login session keeps the application logged in meanwhile).
    pub(crate) fn session(&self) -> Result<Session, HsmError> {
        self.inner
            .ctx
            .open_rw_session(self.current_slot())
            .map_err(|e| HsmError::from_ck("C_OpenSession", e))
    }
}

/// How long [`connect`] keeps trying a token store caught mid-update, all attempts together.
const CONNECT_BUDGET: Duration = Duration::from_secs(3);
/// The first pause between two attempts of [`connect`]; it doubles up to [`CONNECT_MAX_BACKOFF`].
const CONNECT_FIRST_BACKOFF: Duration = Duration::from_millis(20);
const CONNECT_MAX_BACKOFF: Duration = Duration::from_millis(320);

/// Why one attempt of [`connect`] failed.
#[derive(Debug)]
enum Miss {
    /// No slot's token carries the label; the labels the initialised tokens reported.
    NotFound(Vec<String>),
    /// A PKCS#11 call failed.
    Failed(HsmError),
}

impl Miss {
    fn into_error(self, label: &str) -> HsmError {
        match self {
            Miss::NotFound(seen) => not_found(label, &seen),
            Miss::Failed(e) => e,
        }
    }
}

/// Finds the token and logs in, retrying what a token store that another process is writing at
/// that moment can answer ([`caught_mid_update`]) for `budget` at most, then failing
/// with the last attempt's error. Between attempts the module is initialised again, so that it
/// reads its token store anew (SoftHSM reads it at `C_Initialize` only, and drops for good a
/// token whose metadata it found empty then) — after SoftHSM's token metadata is guarded again
/// (`softhsm_guard`: another process killed mid-rewrite since this one started leaves it empty).
/// `store` is held, except during the pauses between attempts.
fn connect(
    ctx: &Pkcs11,
    label: &str,
    pin: &SecretString,
    softhsm_conf: Option<&Path>,
    store: &mut StoreLock,
    budget: Duration,
) -> Result<(Slot, Session), HsmError> {
    let attempt = || -> Result<(Slot, Session), Miss> {
        let slot = match look_up(ctx, label).map_err(Miss::Failed)? {
            Lookup::Found(slot) => slot,
            Lookup::Missing(seen) => return Err(Miss::NotFound(seen)),
        };
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| Miss::Failed(HsmError::from_ck("C_OpenSession", e)))?;
        login_user(&session, pin).map_err(Miss::Failed)?;
        Ok((slot, session))
    };
    let started = Instant::now();
    let mut backoff = CONNECT_FIRST_BACKOFF;
    let mut tries = 1u32;
    loop {
        let miss = match attempt() {
            Ok(connected) => return Ok(connected),
            Err(miss) => miss,
        };
        let on_disk = || softhsm_conf.is_some_and(|c| softhsm_guard::label_on_disk(c, label));
        let pause = jittered(backoff, tries);
        if !caught_mid_update(&miss, on_disk) || started.elapsed() + pause > budget {
            return Err(miss.into_error(label));
        }
        tries += 1;
        let e = miss.into_error(label);
        if budget >= CONNECT_BUDGET {
            tracing::warn!(attempt = tries, error = %e, "token not readable yet; re-initialising the module");
        } else {
            // A reconnection: it says itself how it went.
            tracing::debug!(attempt = tries, error = %e, "token not readable yet; re-initialising the module");
        }
        store.release_for(pause);
        backoff = (backoff * 2).min(CONNECT_MAX_BACKOFF);
        // C_Finalize then C_Initialize: the way to make the module read its store again.
        let _ = ctx.clone().finalize();
        if let Some(conf) = softhsm_conf {
            if let Err(g) = softhsm_guard::guard_tokens(conf) {
                tracing::warn!(error = %g, "SoftHSM token metadata not guarded before the retry");
            }
        }
        initialize(ctx)?;
    }
}

/// Whether `miss` is what a token store caught mid-update answers (SoftHSM's file store, while
/// another process's `C_Login` rewrites the token's metadata: docs/STANDARDS.md "SoftHSM's
/// token store"), so that reading the store again can succeed. `label_on_disk` says whether the
/// token store holds a token with the wanted label (SoftHSM: its metadata file or nesca's copy
/// of it); it is asked only when nothing else decides.
fn caught_mid_update(miss: &Miss, label_on_disk: impl FnOnce() -> bool) -> bool {
    match miss {
        // CKR_GENERAL_ERROR: C_GetTokenInfo or C_Login found the metadata empty. A token
        // initialised while the metadata could not be read has no user PIN
        // (CKR_USER_PIN_NOT_INITIALIZED) until the module reads it again. A token that really
        // has none, a device really gone, are reported once the budget is spent.
        Miss::Failed(HsmError::Pkcs11 { rv, .. }) => matches!(
            rv,
            RvError::GeneralError
                | RvError::TokenNotPresent
                | RvError::DeviceError
                | RvError::UserPinNotInitialized
        ),
        Miss::Failed(_) => false,
        Miss::NotFound(seen) => {
            // No token at all: C_Initialize found the metadata empty and dropped the token.
            // A blank label: C_GetTokenInfo read the flags (CKF_TOKEN_INITIALIZED), then found
            // the metadata empty when it read the label, and answered CKR_OK with a label of
            // spaces. A token of another label only: ours may have been dropped at
            // C_Initialize beside it, which its metadata on disk tells.
            seen.is_empty() || seen.iter().any(|l| l.is_empty()) || label_on_disk()
        }
    }
}

/// `base` less up to half of it, differently in each process and attempt, so that processes
/// that failed together do not all read the store again at the same instant.
fn jittered(base: Duration, attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    // RandomState is seeded afresh in each process.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let half = base / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    base - Duration::from_nanos(random % nanos.max(1))
}

fn login_user(session: &Session, pin: &SecretString) -> Result<(), HsmError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) => Ok(()),
        // Another session of this application is logged in already: that is the state we want.
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(HsmError::from_ck("C_Login", e)),
    }
}

/// Loads and initialises `path` once per process. SoftHSM reads `SOFTHSM2_CONF` inside
/// `C_Initialize` only, so the variable is set just before, and a later open that names
/// another SoftHSM configuration is refused rather than silently served from the first.
fn load_module(path: &Path, softhsm_conf: Option<&Path>) -> Result<Pkcs11, HsmError> {
    if !path.is_file() {
        return Err(HsmError::MissingFile {
            what: "PKCS#11 module",
            path: path.display().to_string(),
        });
    }
    if let Some(conf) = softhsm_conf {
        check_softhsm_conf(conf)?;
    }
    let mut modules = initialised_modules()
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some((ctx, first_conf)) = modules.get(path) {
        return match (softhsm_conf, first_conf) {
            (Some(asked), Some(first)) if asked != first.as_path() => Err(HsmError::Library {
                context: "loading the module",
                reason: format!(
                    "SoftHSM was initialised in this process with {}; it cannot switch to {} (one SoftHSM configuration per process)",
                    first.display(),
                    asked.display()
                ),
            }),
            _ => Ok(ctx.clone()),
        };
    }
    if let Some(conf) = softhsm_conf {
        // Before SoftHSM reads its token store: put back token metadata a killed process left
        // damaged, and keep a copy of it that parses.
        softhsm_guard::guard_tokens(conf)?;
        std::env::set_var("SOFTHSM2_CONF", conf);
    }
    let ctx = Pkcs11::new(path).map_err(|e| match e {
        CkError::LibraryLoading(err) => HsmError::ModuleLoad {
            path: path.display().to_string(),
            reason: err.to_string(),
        },
        other => HsmError::from_ck("loading the module", other),
    })?;
    initialize(&ctx)?;
    modules.insert(
        path.to_path_buf(),
        (ctx.clone(), softhsm_conf.map(Path::to_path_buf)),
    );
    Ok(ctx)
}

/// `C_Initialize` with OS locking (without it, concurrent sessions corrupt SoftHSM's heap);
/// a module that is initialised already is what we want.
fn initialize(ctx: &Pkcs11) -> Result<(), HsmError> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(HsmError::from_ck("C_Initialize", e)),
    }
}

/// What one look at the slots found.
#[derive(Debug)]
enum Lookup {
    /// The slot whose token carries the label.
    Found(Slot),
    /// None does; the labels the initialised tokens reported (a blank one as "").
    Missing(Vec<String>),
}

fn look_up(ctx: &Pkcs11, label: &str) -> Result<Lookup, HsmError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| HsmError::from_ck("C_GetSlotList", e))?;
    let mut seen = Vec::new();
    for slot in slots {
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| HsmError::from_ck("C_GetTokenInfo", e))?;
        let found = info.label().trim_end();
        if found == label {
            return Ok(Lookup::Found(slot));
        }
        if info.token_initialized() {
            seen.push(found.to_string());
        }
    }
    Ok(Lookup::Missing(seen))
}

fn find_token(ctx: &Pkcs11, label: &str) -> Result<Slot, HsmError> {
    match look_up(ctx, label)? {
        Lookup::Found(slot) => Ok(slot),
        Lookup::Missing(seen) => Err(not_found(label, &seen)),
    }
}

/// [`HsmError::TokenNotFound`], naming the initialised tokens that were seen.
fn not_found(label: &str, seen: &[String]) -> HsmError {
    HsmError::TokenNotFound {
        label: label.to_string(),
        available: if seen.is_empty() {
            "none".into()
        } else {
            seen.iter()
                .map(|l| format!("\"{l}\""))
                .collect::<Vec<_>>()
                .join(", ")
        },
    }
}

/// SoftHSM answers a missing config or token directory with CKR_GENERAL_ERROR only; say which.
fn check_softhsm_conf(conf: &Path) -> Result<(), HsmError> {
    let text = std::fs::read_to_string(conf).map_err(|_| HsmError::MissingFile {
        what: "SoftHSM configuration (softhsm2.conf)",
        path: conf.display().to_string(),
    })?;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("directories.tokendir") {
            let dir = rest.trim_start().trim_start_matches('=').trim();
            if !Path::new(dir).is_dir() {
                return Err(HsmError::MissingFile {
                    what: "SoftHSM token directory",
                    path: dir.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod connect_tests {
    use cryptoki::context::Function;

    use super::*;

    fn failed(rv: RvError, function: Function) -> Miss {
        Miss::Failed(HsmError::from_ck("test", CkError::Pkcs11(rv, function)))
    }

    fn not_found(seen: &[&str]) -> Miss {
        Miss::NotFound(seen.iter().map(|l| l.to_string()).collect())
    }

    /// What SoftHSM answers while another process rewrites the token's metadata is retried;
    /// what a wrong PIN, a wrong label or a missing file answers is not.
    #[test]
    fn only_what_a_store_caught_mid_update_answers_is_retried() {
        let never = || -> bool { panic!("the token store was looked at") };
        for (rv, function) in [
            (RvError::GeneralError, Function::GetTokenInfo),
            (RvError::GeneralError, Function::Login),
            (RvError::UserPinNotInitialized, Function::Login),
            (RvError::TokenNotPresent, Function::GetTokenInfo),
            (RvError::DeviceError, Function::OpenSession),
        ] {
            assert!(caught_mid_update(&failed(rv, function), never), "{rv:?}");
        }
        for (rv, function) in [
            (RvError::PinIncorrect, Function::Login),
            (RvError::PinLocked, Function::Login),
            (RvError::SlotIdInvalid, Function::GetTokenInfo),
        ] {
            assert!(!caught_mid_update(&failed(rv, function), never), "{rv:?}");
        }
        let missing = Miss::Failed(HsmError::MissingFile {
            what: "SoftHSM token directory",
            path: "/x".into(),
        });
        assert!(!caught_mid_update(&missing, never));

        // No token at all, or one whose label came back blank (flags read, label not): retried
        // without looking at the disk.
        assert!(caught_mid_update(&not_found(&[]), never));
        assert!(caught_mid_update(&not_found(&["other", ""]), never));
        // Other tokens only: retried when the store holds ours, refused at once otherwise
        // (a wrong label in the configuration).
        assert!(caught_mid_update(&not_found(&["other"]), || true));
        assert!(!caught_mid_update(&not_found(&["other"]), || false));
    }

    #[test]
    fn the_last_error_is_today_s() {
        assert_eq!(
            not_found(&[]).into_error("nesca-demo").to_string(),
            "no token labelled \"nesca-demo\" in any slot of the PKCS#11 module (slots with a token: none)"
        );
        assert_eq!(
            not_found(&["a", ""]).into_error("nesca-demo").to_string(),
            "no token labelled \"nesca-demo\" in any slot of the PKCS#11 module (slots with a token: \"a\", \"\")"
        );
        let e = failed(RvError::GeneralError, Function::GetTokenInfo).into_error("x");
        assert_eq!(e.to_string(), "C_GetTokenInfo failed: CKR_GENERAL_ERROR");
    }

    /// A lost token is reconnected to once a second at most, and at least once a second: a
    /// token that returns is signing again within about a second of the next request.
    #[test]
    fn reconnections_are_paced_up_to_a_second() {
        let ms = |f| reconnect_pause(f).as_millis();
        assert_eq!(
            [0, 1, 2, 3, 4, 10, u32::MAX].map(ms),
            [250, 250, 500, 1000, 1000, 1000, 1000]
        );
    }

    #[test]
    fn pauses_are_jittered_within_half_of_the_backoff() {
        let base = Duration::from_millis(40);
        let pauses: Vec<Duration> = (0..64).map(|i| jittered(base, i)).collect();
        assert!(
            pauses.iter().all(|p| *p > base / 2 && *p <= base),
            "{pauses:?}"
        );
        assert!(
            pauses.iter().any(|p| *p != pauses[0]),
            "no jitter: {pauses:?}"
        );
        assert_eq!(jittered(Duration::ZERO, 1), Duration::ZERO);
        // The budget leaves room for many readings of the store, however long the pauses.
        let (mut backoff, mut total, mut pauses) = (CONNECT_FIRST_BACKOFF, Duration::ZERO, 0);
        while total + backoff <= CONNECT_BUDGET {
            total += backoff;
            pauses += 1;
            backoff = (backoff * 2).min(CONNECT_MAX_BACKOFF);
        }
        assert!(pauses >= 8, "{pauses} pauses");
    }
}

#[cfg(test)]
mod lane_tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::KeyAlgorithm;

    const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

    /// A fresh SoftHSM token (this test binary's only one: SoftHSM reads its configuration
    /// once per process), opened with one signing worker and one OCSP worker.
    fn token(dir: &Path) -> Hsm {
        let tokens = dir.join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        );
        std::fs::write(&conf, text).unwrap();
        let pin = || SecretString::from("lane-test-pin-1234".to_string());
        let so_pin = SecretString::from("lane-test-so-5678".to_string());
        Hsm::init_token(Path::new(MODULE), Some(&conf), "lanes", &so_pin, &pin()).unwrap();
        Hsm::open(HsmConfig {
            module: MODULE.into(),
            token_label: "lanes".into(),
            pin: pin(),
            pool_size: 1,
            ocsp_pool_size: 1,
            softhsm_conf: Some(conf),
        })
        .unwrap()
    }

    /// While the only signing worker is held (issuance or a CRL busy on it), an OCSP signer
    /// still signs: on its own session.
    #[test]
    fn ocsp_signers_do_not_wait_for_the_signing_workers() {
        assert!(Path::new(MODULE).is_file(), "apt-get install -y softhsm2");
        let dir = tempfile::tempdir().unwrap();
        let hsm = token(dir.path());
        let ocsp = hsm
            .generate_key("ocsp-signer", KeyAlgorithm::EcdsaP256)
            .unwrap()
            .on_ocsp_sessions();

        let (held, is_held) = mpsc::channel::<()>();
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        let holder = {
            let hsm = hsm.clone();
            std::thread::spawn(move || {
                hsm.with_session(Lane::Signing, move |_session| {
                    let _ = held.send(());
                    let _ = released.lock().unwrap().recv();
                    Ok(())
                })
            })
        };
        is_held.recv().unwrap();

        // Bounded: without a lane of its own this signature would wait for ever.
        let (signed, signature) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = signed.send(ocsp.sign(b"an OCSP response's tbsResponseData"));
        });
        let signature = signature
            .recv_timeout(Duration::from_secs(30))
            .expect("the OCSP signer waited for the held signing worker");
        assert!(!signature.unwrap().is_empty());
        assert!(!holder.is_finished(), "the signing worker was not held");

        release.send(()).unwrap();
        holder.join().unwrap().unwrap();
    }
}
