//! The writer thread: queued writes run in one transaction per batch (group commit), each
//! against the head of the audit chain, and every caller is answered once its batch is
//! committed or rolled back.
//!
//! A write is a function of one role's module (`fn(&Connection, …, &mut AuditHead) ->
//! Result<T, Refusal>`), queued as a [`Job`] that erases its result type: the caller gets its
//! typed `T` back through its own reply channel.

use std::sync::mpsc::{Receiver, SyncSender};

use super::db;
use super::db::Connection;

use super::audit::{audit_head, AuditHead};
use std::sync::Arc;

use crate::error::{CaError, Result, StoreSource};

/// How many queued writes one transaction takes at most.
const MAX_BATCH: usize = 1024;

/// Why one write of a batch did not happen.
pub(super) enum Refusal {
    /// The write was refused before it changed anything; the rest of the batch goes on.
    Refused(CaError),
    /// The database failed; the whole batch is rolled back.
    Fatal(CaError),
}

impl From<db::Error> for Refusal {
    fn from(e: db::Error) -> Self {
        Refusal::Fatal(CaError::Store {
            operation: "write",
            reason: e.to_string(),
            source: Some(e.into()),
        })
    }
}

/// A refusal met after a write of the same job has been made cannot leave that write behind
/// (the batch commits the other jobs' writes): it fails the whole batch instead.
pub(super) fn after_writes(r: Refusal) -> Refusal {
    match r {
        Refusal::Refused(e) => Refusal::Fatal(e),
        fatal => fatal,
    }
}

/// A refusal of the input, naming the field and the rule.
pub(super) fn refused(field: &'static str, rule: impl Into<String>) -> Refusal {
    Refusal::Refused(CaError::invalid(field, rule))
}

/// One write queued for the writer, its result type erased.
pub(super) struct Job(Box<dyn QueuedWrite>);

impl Job {
    /// Queues `write`, whose outcome goes to `reply` once its batch is settled.
    pub(super) fn new<T, F>(write: F, reply: SyncSender<Result<T>>) -> Job
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut AuditHead) -> Result<T, Refusal> + Send + 'static,
    {
        Job(Box::new(TypedWrite {
            write: Some(write),
            outcome: None,
            reply,
        }))
    }
}

/// What the writer does with a job: run it inside the batch, then answer its caller.
trait QueuedWrite: Send {
    /// Runs the write in the batch's transaction and keeps its outcome (a refusal too);
    /// returns the error that fails the whole batch.
    fn apply(&mut self, conn: &Connection, head: &mut AuditHead) -> Result<()>;
    /// Answers the caller: its own outcome when the batch committed, else the batch's error.
    fn settle(self: Box<Self>, batch: std::result::Result<(), &Arc<CaError>>);
}

/// A write with its typed outcome and the channel its caller waits on.
struct TypedWrite<T, F> {
    write: Option<F>,
    outcome: Option<Result<T>>,
    reply: SyncSender<Result<T>>,
}

impl<T, F> QueuedWrite for TypedWrite<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut AuditHead) -> Result<T, Refusal> + Send + 'static,
{
    fn apply(&mut self, conn: &Connection, head: &mut AuditHead) -> Result<()> {
        let Some(write) = self.write.take() else {
            return Ok(());
        };
        match write(conn, head) {
            Ok(t) => self.outcome = Some(Ok(t)),
            Err(Refusal::Refused(e)) => self.outcome = Some(Err(e)),
            Err(Refusal::Fatal(e)) => return Err(e),
        }
        Ok(())
    }

    fn settle(self: Box<Self>, batch: std::result::Result<(), &Arc<CaError>>) {
        let answer = match batch {
            Ok(()) => self.outcome.unwrap_or_else(|| {
                Err(CaError::Store {
                    operation: "write",
                    reason: "the write did not run in its batch".into(),
                    source: None,
                })
            }),
            // The batch's one failure answers every job in it: each gets its operation and
            // reason, and the failure itself, shared, as the source (whether the store was
            // unreachable stays known).
            Err(e) => Err(match &**e {
                CaError::Store {
                    operation, reason, ..
                } => CaError::Store {
                    operation,
                    reason: reason.clone(),
                    source: Some(StoreSource::Batch(e.clone())),
                },
                other => CaError::Store {
                    operation: "write",
                    reason: other.to_string(),
                    source: Some(StoreSource::Batch(e.clone())),
                },
            }),
        };
        // The caller may have gone away; its change is committed either way.
        let _ = self.reply.send(answer);
    }
}

/// The queue to the writer thread, which callers submit writes to.
pub(super) struct Writer(std::sync::Mutex<Option<std::sync::mpsc::Sender<Job>>>);

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn start(conn: Connection) -> Result<(Writer, std::thread::JoinHandle<()>)> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("nesca-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| CaError::Store {
                operation: "start the store writer",
                reason: e.to_string(),
                source: None,
            })?;
        Ok((Writer(std::sync::Mutex::new(Some(tx))), thread))
    }

    /// Queues `write` and waits until its batch is committed (or rolled back): a write is
    /// one function of a role's module, run inside the batch's transaction with the audit
    /// chain's head; its typed outcome comes back on a channel of its own.
    pub(super) fn submit<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut AuditHead) -> Result<T, Refusal> + Send + 'static,
    {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let sender = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let closed = || CaError::Store {
            operation: "write",
            reason: "the store writer has stopped".into(),
            source: None,
        };
        sender
            .ok_or_else(closed)?
            .send(Job::new(write, reply))
            .map_err(|_| closed())?;
        answer.recv().map_err(|_| closed())?
    }

    /// Closes the queue: the writer thread ends once it has committed what it holds.
    pub(super) fn close(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Takes whatever has queued up (at most [`MAX_BATCH`]), commits it as one transaction and
/// answers each caller, until every sender is gone.
fn writer_loop(mut conn: Connection, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = commit_batch(&mut conn, &mut batch).map_err(Arc::new);
        for job in batch {
            job.0.settle(committed.as_ref().map(|_| ()));
        }
    }
}

/// Applies every write of the batch in one transaction and commits once.
///
/// A refused write (serial not reserved, CA exists) is checked before it writes anything, so
/// no savepoint is needed; any database error rolls the whole batch back and every caller in
/// it gets the error (fail closed: no change without its audit record).
///
/// A commit whose answer was lost (the connection to a database server dropped while it
/// committed) may have happened: when the batch appended audit records, the last of them is
/// looked for on a new connection, and found, the batch counts as committed — its callers
/// get their outcomes, not an error for a change that was made.
fn commit_batch(conn: &mut Connection, batch: &mut [Job]) -> Result<()> {
    let tx = db::begin_batch(conn).map_err(CaError::store("begin"))?;
    let mut head = audit_head(&tx)?;
    let appended_from = head.seq;
    for job in batch.iter_mut() {
        job.0.apply(&tx, &mut head)?;
    }
    head.flush(&tx).map_err(CaError::store("write audit records"))?;
    match tx.commit() {
        Ok(()) => Ok(()),
        Err(e) if head.seq > appended_from && committed_anyway(conn, &head) => {
            tracing::warn!(error = %e, seq = head.seq, "the commit's answer was lost but the batch is in the store");
            Ok(())
        }
        Err(e) => Err(CaError::store("commit")(e)),
    }
}

/// Whether the record at `head` is in the store as this batch wrote it, read on a connection
/// opened again if the old one is gone.
fn committed_anyway(conn: &mut Connection, head: &AuditHead) -> bool {
    if db::reopen(conn).is_err() {
        return false;
    }
    head.is_committed(conn).unwrap_or(false)
}
