//! The audit writer: many tasks call [`AuditLog::record`]; one background task
//! owns the file, appends, fsyncs and rotates.
//!
//! - Separate from the application log: its own directory, one JSON object per
//!   line, files created mode 0600 in a directory created mode 0700.
//! - Rotation: before a record would make `audit.jsonl` larger than
//!   `max_file_bytes`, and at the first record of a new UTC day, the file is
//!   renamed to `audit-YYYYMMDD-HHMMSS.jsonl` (the UTC closing time) and a new
//!   one begins. The directory is fsynced after the rename.
//! - Durability: [`Fsync::EveryRecord`] fsyncs after each record;
//!   [`Fsync::Batch`] writes whatever is queued (up to `max_records`) and then
//!   fsyncs once (group commit). No record ever waits for a timer: a batch is
//!   only what had already queued up while the previous fsync ran.
//! - Written means fsynced: [`AuditLog::record_durable`] returns only when its
//!   record's batch has been written and fsynced, or with
//!   [`AuditError::NotWritten`] when it could not be. This is how the relay
//!   holds an answer back until its record is on disk (`[audit] on_failure =
//!   "refuse"`); concurrent requests share one fsync. [`AuditLog::record`]
//!   only queues (for records nothing waits on).
//! - Health: after a write or fsync error the trail is *not writable*
//!   ([`AuditLog::is_writable`]) until a batch is written and fsynced again, or
//!   [`AuditLog::check`] (re)opens the file and fsyncs it. The writer never gives
//!   up: a file that cannot be opened (a read-only directory, a full disk) is
//!   tried again at every record and every check.
//! - Back-pressure: the queue is bounded. When it is full, `record` waits up to
//!   `max_wait`; if it is still full the record is dropped, counted in
//!   [`AuditStats::dropped`], logged as an error, and `record` returns
//!   [`AuditError::Dropped`], so a caller that must not proceed without an audit
//!   record can refuse the request. Nothing is dropped silently.
//! - Retention: closed files closed more than `retention_months` ago are deleted
//!   when the writer opens and after every rotation (so at least daily). Each
//!   deletion is logged and written to the trail itself as an `admin` record
//!   (`who` = `relay:retention`, `action` = `audit_file_deleted`, `target` = the
//!   file name). The current file is never deleted.
//! - Restart: an existing `audit.jsonl` is appended to (after a newline if the
//!   last record was torn by a crash), or closed first if it is from an earlier day.
//!
//! The writer blocks on disk I/O, so it runs on a blocking thread
//! ([`AuditTask::spawn`]) and never on the async workers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::error::{AuditError, Result};
use crate::files::{CURRENT_FILE, rotated_name};
use crate::record::AuditRecord;

/// When the writer fsyncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every record: nothing acknowledged is ever lost, at one fsync per record.
    EveryRecord,
    /// After each group of at most `max_records` records that were queued together.
    Batch { max_records: usize },
}

/// Where and how the audit trail is written.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The audit directory (not the application log's).
    pub dir: PathBuf,
    /// Close the file before it grows beyond this; 0 turns size rotation off.
    pub max_file_bytes: u64,
    /// Close the file at the first record of each new UTC day.
    pub rotate_daily: bool,
    pub fsync: Fsync,
    /// Records that may wait for the writer.
    pub queue_capacity: usize,
    /// How long [`AuditLog::record`] waits for room in a full queue before it
    /// drops the record (and says so).
    pub max_wait: Duration,
    /// Closed files older than this many months are deleted; 0 keeps every file.
    pub retention_months: u32,
    /// Called once for every record lost to a disk error (the relay counts
    /// them in its metrics).
    pub on_write_error: Option<WriteErrorHook>,
}

/// What [`AuditConfig::on_write_error`] calls: a closure, so that it can hold
/// the counter it increments (the relay's metrics are a value, not a global).
#[derive(Clone)]
pub struct WriteErrorHook(Arc<dyn Fn() + Send + Sync>);

impl WriteErrorHook {
    pub fn new(hook: impl Fn() + Send + Sync + 'static) -> Self {
        Self(Arc::new(hook))
    }
}

impl std::fmt::Debug for WriteErrorHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteErrorHook")
    }
}

/// The default retention: 13 months. The yearly figures of the service-level
/// report (unplanned outages and down time per calendar year) need every file
/// back to 1 January, so the December report, written in early January, needs
/// 12 months and some days; one more month leaves room for the report to be
/// questioned and re-run. Longer is not needed for any purpose the trail
/// serves, and the trail is personal data (pseudonymised), so it is not kept
/// longer (GDPR art. 5.1 e).
pub const DEFAULT_RETENTION_MONTHS: u32 = 13;

impl AuditConfig {
    /// Defaults: 64 MiB files, daily rotation, fsync per batch of up to 64,
    /// 4096 queued records, 2 s wait when full, 13 months' retention.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_file_bytes: 64 * 1024 * 1024,
            rotate_daily: true,
            fsync: Fsync::Batch { max_records: 64 },
            queue_capacity: 4096,
            max_wait: Duration::from_secs(2),
            retention_months: DEFAULT_RETENTION_MONTHS,
            on_write_error: None,
        }
    }
}

/// Counters since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written to the file.
    pub written: u64,
    /// Records refused because the queue stayed full or the writer had stopped.
    pub dropped: u64,
    /// Records lost to a disk error (the writer logs each and reopens the file).
    pub write_errors: u64,
    /// Files closed by rotation.
    pub rotations: u64,
    /// Closed files deleted by retention.
    pub deleted_files: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    rotations: AtomicU64,
    deleted_files: AtomicU64,
    /// Set by a write or fsync error, cleared by the next good batch or check.
    failing: AtomicBool,
}

impl Counters {
    fn snapshot(&self) -> AuditStats {
        AuditStats {
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            deleted_files: self.deleted_files.load(Ordering::Relaxed),
        }
    }
}

/// What a durable record's writer answers: written and fsynced, or why not.
type Ack = oneshot::Sender<std::result::Result<(), String>>;

enum Msg {
    /// One record; with an [`Ack`] when the caller waits for the fsync.
    Line(Vec<u8>, Option<Ack>),
    Flush(oneshot::Sender<()>),
    /// (Re)open the file if needed and fsync it; answers whether that worked.
    Check(oneshot::Sender<bool>),
}

/// The handle request tasks write through. Cheap to clone; the writer stops
/// (after writing everything queued) when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    counters: Arc<Counters>,
    max_wait: Duration,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Line(..) => "Line",
            Self::Flush(_) => "Flush",
            Self::Check(_) => "Check",
        })
    }
}

impl AuditLog {
    /// Opens (or creates) the audit directory and file and returns the handle and
    /// the writer task, which the caller starts with [`AuditTask::spawn`] (or runs
    /// on a thread of its own with [`AuditTask::run`]).
    ///
    /// A directory or file that cannot be written does not fail the open: the
    /// log starts *not writable* ([`AuditLog::is_writable`]), the reason is
    /// logged, and the writer tries again at every record and check, so a relay
    /// can start, say why it refuses, and recover without a restart.
    pub fn open(config: AuditConfig) -> Result<(AuditLog, AuditTask)> {
        let now = Utc::now();
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let segment = match Segment::open(&config, now) {
            Ok(mut segment) => {
                let deleted = apply_retention(&mut segment, &config, now);
                counters.deleted_files.fetch_add(deleted, Ordering::Relaxed);
                Some(segment)
            }
            Err(e) => {
                tracing::error!(error = %e, "the audit trail cannot be written");
                counters.failing.store(true, Ordering::Relaxed);
                None
            }
        };
        let max_batch = match config.fsync {
            Fsync::EveryRecord => 1,
            Fsync::Batch { max_records } => max_records.max(1),
        };
        let log = AuditLog {
            tx,
            counters: counters.clone(),
            max_wait: config.max_wait,
        };
        let task = AuditTask {
            rx,
            segment,
            config,
            counters,
            max_batch,
        };
        Ok((log, task))
    }

    /// Queues one record. Waits up to `max_wait` when the queue is full; past
    /// that the record is dropped, counted and logged, and the error says so.
    pub async fn record(&self, record: impl Into<AuditRecord>) -> Result<()> {
        self.send(record.into(), None).await
    }

    /// Writes one record and returns when it is on disk (written and fsynced
    /// with whatever else was queued at the same time: group commit), or with
    /// the reason it is not ([`AuditError::NotWritten`], or the queue errors of
    /// [`AuditLog::record`]).
    pub async fn record_durable(&self, record: impl Into<AuditRecord>) -> Result<()> {
        let (ack, written) = oneshot::channel();
        self.send(record.into(), Some(ack)).await?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(AuditError::NotWritten(reason)),
            Err(_) => Err(AuditError::Closed),
        }
    }

    /// Whether the last write (or check) succeeded.
    pub fn is_writable(&self) -> bool {
        !self.counters.failing.load(Ordering::Relaxed)
    }

    /// Asks the writer to (re)open the file if it has none and fsync it; true
    /// when that worked (the log is then writable again).
    pub async fn check(&self) -> bool {
        let (done, answer) = oneshot::channel();
        if self.tx.send(Msg::Check(done)).await.is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    async fn send(&self, record: AuditRecord, ack: Option<Ack>) -> Result<()> {
        let mut line = serde_json::to_vec(&record)?;
        line.push(b'\n');
        match self
            .tx
            .send_timeout(Msg::Line(line, ack), self.max_wait)
            .await
        {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    dropped_total = total,
                    waited_ms = self.max_wait.as_millis() as u64,
                    "audit queue full: record dropped"
                );
                Err(AuditError::Dropped(self.max_wait))
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    dropped_total = total,
                    "audit writer stopped: record dropped"
                );
                Err(AuditError::Closed)
            }
        }
    }

    /// Waits until everything queued before this call is written and fsynced.
    pub async fn flush(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done))
            .await
            .map_err(|_| AuditError::Closed)?;
        wait.await.map_err(|_| AuditError::Closed)
    }

    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot()
    }
}

/// The writer: owns the file. Runs until every [`AuditLog`] clone is dropped and
/// the queue is empty, then fsyncs and returns its counters.
#[derive(Debug)]
pub struct AuditTask {
    rx: mpsc::Receiver<Msg>,
    segment: Option<Segment>,
    config: AuditConfig,
    counters: Arc<Counters>,
    max_batch: usize,
}

impl AuditTask {
    /// Runs the writer on tokio's blocking pool.
    pub fn spawn(self) -> tokio::task::JoinHandle<AuditStats> {
        tokio::task::spawn_blocking(move || self.run())
    }

    /// Runs the writer on the current thread (blocking) until the log is closed.
    pub fn run(mut self) -> AuditStats {
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut checks: Vec<oneshot::Sender<bool>> = Vec::new();
        while let Some(first) = self.rx.blocking_recv() {
            let mut batch = Batch::default();
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Line(line, ack) => self.write(&line, ack, &mut batch),
                    Msg::Flush(done) => flushes.push(done),
                    Msg::Check(done) => checks.push(done),
                }
                if batch.lines < self.max_batch {
                    next = self.rx.try_recv().ok();
                }
            }
            if !checks.is_empty() && self.segment.is_none() {
                self.reopen(&mut batch);
            }
            self.sync(&mut batch);
            let ok = batch.finish(&self.counters) && self.segment.is_some();
            if !checks.is_empty() {
                self.counters.failing.store(!ok, Ordering::Relaxed);
            }
            for done in checks.drain(..) {
                let _ = done.send(ok);
            }
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
        let mut batch = Batch::default();
        self.sync(&mut batch);
        batch.finish(&self.counters);
        self.counters.snapshot()
    }

    fn reopen(&mut self, batch: &mut Batch) {
        match Segment::open(&self.config, Utc::now()) {
            Ok(s) => self.segment = Some(s),
            Err(e) => batch.error = Some(e.to_string()),
        }
    }

    fn write(&mut self, line: &[u8], ack: Option<Ack>, batch: &mut Batch) {
        batch.lines += 1;
        let now = Utc::now();
        if self.segment.is_none() {
            self.reopen(batch);
        }
        let Some(segment) = self.segment.as_mut() else {
            let reason = batch.error.clone().unwrap_or_default();
            self.lost(&reason, 1);
            if let Some(ack) = ack {
                let _ = ack.send(Err(reason));
            }
            return;
        };
        match segment.write(line, now) {
            Ok(rotated) => {
                self.counters.written.fetch_add(1, Ordering::Relaxed);
                batch.unsynced.push(ack);
                if rotated {
                    self.counters.rotations.fetch_add(1, Ordering::Relaxed);
                    let deleted = apply_retention(segment, &self.config, now);
                    self.counters
                        .deleted_files
                        .fetch_add(deleted, Ordering::Relaxed);
                }
            }
            Err(e) => {
                // Reopen on the next record: the file may have been moved or the
                // disk may have room again. What went to the dropped file since
                // its last fsync is not known to be on disk: failed too.
                self.segment = None;
                let reason = format!("{}: {e}", self.config.dir.display());
                self.lost(&reason, 1);
                batch.fail_unsynced(&reason);
                if let Some(ack) = ack {
                    let _ = ack.send(Err(reason.clone()));
                }
                batch.error = Some(reason);
            }
        }
    }

    fn lost(&self, error: &str, records: u64) {
        // Before any caller hears of it: whoever is refused sees the trail failing.
        self.counters.failing.store(true, Ordering::Relaxed);
        let total = self
            .counters
            .write_errors
            .fetch_add(records, Ordering::Relaxed)
            + records;
        if let Some(hook) = &self.config.on_write_error {
            for _ in 0..records {
                (hook.0)();
            }
        }
        tracing::error!(
            dir = %self.config.dir.display(),
            error,
            lost_total = total,
            "audit record could not be written"
        );
    }

    fn sync(&mut self, batch: &mut Batch) {
        if let Some(segment) = self.segment.as_mut()
            && let Err(e) = segment.sync()
        {
            let reason = format!("{}: fsync: {e}", self.config.dir.display());
            self.segment = None;
            let unsynced = batch.unsynced.len() as u64;
            if unsynced > 0 {
                self.lost(&reason, unsynced);
            } else {
                tracing::error!(dir = %self.config.dir.display(), error = %e, "audit fsync failed");
            }
            batch.fail_unsynced(&reason);
            batch.error = Some(reason);
        }
    }
}

/// One group commit: the records written since the last fsync, each with the
/// caller waiting for it (if any), and the first error of the group.
#[derive(Default)]
struct Batch {
    lines: usize,
    unsynced: Vec<Option<Ack>>,
    error: Option<String>,
}

impl Batch {
    fn fail_unsynced(&mut self, reason: &str) {
        for ack in self.unsynced.drain(..).flatten() {
            let _ = ack.send(Err(reason.to_owned()));
        }
    }

    /// Acknowledges what is on disk and sets the trail's health; true when the
    /// group had no error.
    fn finish(self, counters: &Counters) -> bool {
        for ack in self.unsynced.into_iter().flatten() {
            let _ = ack.send(Ok(()));
        }
        let ok = self.error.is_none();
        if !ok {
            counters.failing.store(true, Ordering::Relaxed);
        } else if self.lines > 0 {
            counters.failing.store(false, Ordering::Relaxed);
        }
        ok
    }
}

/// Who the retention's admin records name.
pub const RETENTION_WHO: &str = "relay:retention";

/// Deletes the closed files past retention at `now`, logging each and writing
/// an admin record for each to `segment`. Returns how many were deleted. A file
/// that cannot be deleted is logged and tried again at the next rotation.
fn apply_retention(segment: &mut Segment, config: &AuditConfig, now: DateTime<Utc>) -> u64 {
    if config.retention_months == 0 {
        return 0;
    }
    let Some(cutoff) = now.checked_sub_months(chrono::Months::new(config.retention_months)) else {
        return 0;
    };
    let old = match crate::files::closed_before(&config.dir, cutoff) {
        Ok(old) => old,
        Err(e) => {
            tracing::error!(error = %e, "audit retention: the directory could not be read");
            return 0;
        }
    };
    let mut deleted = 0;
    for path in old {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::error!(file = %name, error = %e, "audit retention: file could not be deleted");
            continue;
        }
        deleted += 1;
        tracing::info!(
            file = %name,
            retention_months = config.retention_months,
            "audit retention: closed audit file deleted"
        );
        let record = AuditRecord::from(crate::record::AdminRecord {
            time: now,
            who: RETENTION_WHO.to_owned(),
            action: "audit_file_deleted".to_owned(),
            target: name.clone(),
        });
        let written = serde_json::to_vec(&record)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                segment.write(&line, now).map(|_| ())
            });
        if let Err(e) = written {
            tracing::error!(file = %name, error = %e, "audit retention: deletion record could not be written");
        }
    }
    if deleted > 0
        && let Err(e) = segment.sync()
    {
        tracing::error!(error = %e, "audit retention: fsync failed");
    }
    deleted
}

/// The file being written, with what rotation needs to know about it.
#[derive(Debug)]
struct Segment {
    dir: PathBuf,
    file: File,
    bytes: u64,
    /// The UTC day the file was begun (for an existing file: last modified).
    day: NaiveDate,
    unsynced: bool,
    max_bytes: u64,
    daily: bool,
}

impl Segment {
    fn open(config: &AuditConfig, now: DateTime<Utc>) -> Result<Self> {
        let dir = &config.dir;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(AuditError::io(dir))?;
        let path = dir.join(CURRENT_FILE);
        let mut segment = Self {
            dir: dir.clone(),
            file: open_append(&path).map_err(AuditError::io(&path))?,
            bytes: 0,
            day: now.date_naive(),
            unsynced: false,
            max_bytes: config.max_file_bytes,
            daily: config.rotate_daily,
        };
        let meta = segment.file.metadata().map_err(AuditError::io(&path))?;
        segment.bytes = meta.len();
        if segment.bytes > 0 {
            if let Ok(modified) = meta.modified() {
                segment.day = DateTime::<Utc>::from(modified).date_naive();
            }
            segment
                .end_torn_line(&path)
                .map_err(AuditError::io(&path))?;
            if segment.daily && segment.day < now.date_naive() {
                segment.rotate(now).map_err(AuditError::io(&path))?;
            }
        }
        Ok(segment)
    }

    /// After a crash the last line may be torn; start the next record on a line of
    /// its own so that only the torn one is lost.
    fn end_torn_line(&mut self, path: &Path) -> std::io::Result<()> {
        let mut reader = File::open(path)?;
        reader.seek(SeekFrom::End(-1))?;
        let mut last = [0u8; 1];
        reader.read_exact(&mut last)?;
        if last[0] != b'\n' {
            self.file.write_all(b"\n")?;
            self.bytes += 1;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Appends one line, rotating first when it is due. Returns whether it rotated.
    fn write(&mut self, line: &[u8], now: DateTime<Utc>) -> std::io::Result<bool> {
        let too_big = self.max_bytes > 0 && self.bytes + line.len() as u64 > self.max_bytes;
        let new_day = self.daily && now.date_naive() != self.day;
        let rotate = self.bytes > 0 && (too_big || new_day);
        if rotate {
            self.rotate(now)?;
        }
        self.file.write_all(line)?;
        self.bytes += line.len() as u64;
        self.unsynced = true;
        Ok(rotate)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.file.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn rotate(&mut self, now: DateTime<Utc>) -> std::io::Result<()> {
        self.file.sync_all()?;
        let current = self.dir.join(CURRENT_FILE);
        let closed = (0u32..)
            .map(|seq| self.dir.join(rotated_name(now, seq)))
            .find(|p| !p.exists())
            .unwrap_or_else(|| unreachable!("u32::MAX files closed within one second"));
        std::fs::rename(&current, &closed)?;
        self.file = open_append(&current)?;
        // The rename and the new file must survive a crash too.
        File::open(&self.dir)?.sync_all()?;
        self.bytes = 0;
        self.day = now.date_naive();
        self.unsynced = false;
        Ok(())
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true).read(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config(dir: &Path) -> AuditConfig {
        AuditConfig {
            max_file_bytes: 100,
            ..AuditConfig::new(dir)
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_file_is_closed_before_it_would_grow_past_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
        let mut seg = Segment::open(&config(dir.path()), t).unwrap();
        let line = [b'x'; 39].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        assert!(!seg.write(&line, t).unwrap());
        assert!(!seg.write(&line, t).unwrap());
        // 80 + 40 > 100: closed first.
        assert!(seg.write(&line, t).unwrap());
        // Same second: the second closed file gets a sequence number.
        assert!(!seg.write(&line, t).unwrap());
        assert!(seg.write(&line, t).unwrap());
        assert_eq!(
            names(dir.path()),
            [
                "audit-20261102-090000-1.jsonl",
                "audit-20261102-090000.jsonl",
                "audit.jsonl"
            ]
        );
        let first = std::fs::read(dir.path().join("audit-20261102-090000.jsonl")).unwrap();
        assert_eq!(first.len(), 80);
    }

    #[test]
    fn the_first_record_of_a_new_utc_day_begins_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig::new(dir.path());
        let monday = Utc.with_ymd_and_hms(2026, 11, 2, 23, 59, 59).unwrap();
        let tuesday = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 1).unwrap();
        let mut seg = Segment::open(&cfg, monday).unwrap();
        assert!(!seg.write(b"{}\n", monday).unwrap());
        assert!(seg.write(b"{}\n", tuesday).unwrap());
        assert!(!seg.write(b"{}\n", tuesday).unwrap());
        assert_eq!(
            names(dir.path()),
            ["audit-20261103-000001.jsonl", "audit.jsonl"]
        );
    }

    #[test]
    fn a_torn_last_line_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CURRENT_FILE), b"{\"kind\":\"dele").unwrap();
        let now = Utc::now();
        let mut seg = Segment::open(&AuditConfig::new(dir.path()), now).unwrap();
        seg.write(b"{}\n", now).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap();
        assert_eq!(text, "{\"kind\":\"dele\n{}\n");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_mode_0600_and_the_directory_0700() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("audit");
        let now = Utc::now();
        let mut seg = Segment::open(&config(&dir), now).unwrap();
        seg.write(&[b'x'; 99], now).unwrap();
        seg.write(&[b'y'; 10], now).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in names(&dir) {
            assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
        }
    }

    #[test]
    fn retention_deletes_only_closed_files_past_it_and_records_each_deletion() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "audit-20251031-235959.jsonl",
            "audit-20251031-235959-1.jsonl",
            "audit-20250101-000000.jsonl",
            "audit-20251101-000000.jsonl",
            "audit-20261130-120000.jsonl",
            "audit-2025.jsonl",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "{}\n").unwrap();
        }
        // 13 months before 2026-12-01T00:00:00Z is 2025-11-01T00:00:00Z.
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let cfg = AuditConfig::new(dir.path());
        let mut seg = Segment::open(&cfg, now).unwrap();
        assert_eq!(apply_retention(&mut seg, &cfg, now), 3);
        assert_eq!(
            names(dir.path()),
            [
                "audit-2025.jsonl",
                "audit-20251101-000000.jsonl",
                "audit-20261130-120000.jsonl",
                "audit.jsonl",
                "notes.txt"
            ]
        );
        let text = std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap();
        let targets: Vec<String> = text
            .lines()
            .map(|l| match serde_json::from_str::<AuditRecord>(l).unwrap() {
                AuditRecord::Admin(a) => {
                    assert_eq!(
                        (a.who.as_str(), a.action.as_str()),
                        (RETENTION_WHO, "audit_file_deleted")
                    );
                    a.target
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                "audit-20250101-000000.jsonl",
                "audit-20251031-235959.jsonl",
                "audit-20251031-235959-1.jsonl"
            ]
        );
        // Nothing more to do; and 0 months keeps everything.
        assert_eq!(apply_retention(&mut seg, &cfg, now), 0);
        let keep = AuditConfig {
            retention_months: 0,
            ..AuditConfig::new(dir.path())
        };
        let later = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(apply_retention(&mut seg, &keep, later), 0);
    }
    fn admin(target: &str) -> AuditRecord {
        AuditRecord::from(crate::record::AdminRecord {
            time: Utc::now(),
            who: "test".into(),
            action: "check".into(),
            target: target.into(),
        })
    }

    #[tokio::test]
    async fn a_durable_record_is_in_the_file_when_record_durable_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (log, task) = AuditLog::open(AuditConfig::new(dir.path())).unwrap();
        let writer = task.spawn();
        let writes = (0..32).map(|i| {
            let log = log.clone();
            async move { log.record_durable(admin(&format!("t{i}"))).await }
        });
        for r in futures::future::join_all(writes).await {
            r.unwrap();
        }
        let text = std::fs::read_to_string(dir.path().join(CURRENT_FILE)).unwrap();
        for i in 0..32 {
            assert!(text.contains(&format!("\"target\":\"t{i}\"")), "{text}");
        }
        assert!(log.is_writable());
        drop(log);
        assert_eq!(writer.await.unwrap().written, 32);
    }

    /// A full disk (the file is /dev/full, which refuses every write even to
    /// root): durable records fail with the reason, are counted, the trail is
    /// not writable; once the disk has room again a check and the next record
    /// succeed.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_record_that_cannot_be_written_fails_its_caller_until_the_disk_recovers() {
        static ERRORS: AtomicU64 = AtomicU64::new(0);
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join(CURRENT_FILE);
        std::os::unix::fs::symlink("/dev/full", &current).unwrap();
        let config = AuditConfig {
            on_write_error: Some(WriteErrorHook::new(|| {
                ERRORS.fetch_add(1, Ordering::Relaxed);
            })),
            ..AuditConfig::new(dir.path())
        };
        let (log, task) = AuditLog::open(config).unwrap();
        let _writer = task.spawn();
        let err = log.record_durable(admin("lost")).await.unwrap_err();
        assert!(matches!(err, AuditError::NotWritten(_)), "{err}");
        assert!(
            err.to_string().contains(&dir.path().display().to_string()),
            "{err}"
        );
        assert!(!log.is_writable());
        assert_eq!(log.stats().write_errors, 1);
        assert_eq!(ERRORS.load(Ordering::Relaxed), 1);
        // A queued (not durable) record is lost and counted too.
        log.record(admin("queued")).await.unwrap();
        log.flush().await.unwrap();
        assert_eq!(log.stats().write_errors, 2);
        std::fs::remove_file(&current).unwrap();
        assert!(log.check().await);
        assert!(log.is_writable());
        log.record_durable(admin("kept")).await.unwrap();
        let text = std::fs::read_to_string(&current).unwrap();
        assert!(
            text.contains("\"target\":\"kept\"") && !text.contains("lost"),
            "{text}"
        );
    }
}
