//! The durable-write helpers of [`super::FsChunkStore`]: fsyncs run on
//! helper threads a bounded number at a time ([`Syncer`]), and the files of
//! one batch on their way to disk ([`Batch`]), removed again if the batch
//! fails.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::thread;

use crate::error::StoreError;

/// fsyncs in flight at once: enough for the device to see a queue and for
/// ext4 to merge the journal commits of concurrent fsyncs (one fsync at a time
/// measured 2-5x slower for 1 MiB files here); bounded so a large batch does
/// not start a thread per chunk at once.
pub(super) const FSYNCS_IN_FLIGHT_MAX: usize = 16;

/// Runs fsyncs on scoped helper threads, at most [`FSYNCS_IN_FLIGHT_MAX`] at a time.
/// The last fsync started runs on the caller's thread when it finishes (a
/// batch of one chunk, a holder's usual put, starts no thread at all: a
/// thread per fsync was ~5% of a holder's CPU in the put profile).
pub(super) struct Syncer<'scope, 'env> {
    scope: &'scope thread::Scope<'scope, 'env>,
    in_flight: VecDeque<InFlight<'scope>>,
    /// The latest fsync asked for, not started yet.
    last: Option<Job>,
}

/// An fsync to run.
struct Job {
    path: PathBuf,
    action: &'static str,
    file: File,
    data_only: bool,
}

impl Job {
    fn run(&self) -> io::Result<()> {
        if self.data_only {
            self.file.sync_data()
        } else {
            self.file.sync_all()
        }
    }
}

/// One fsync under way: the path and action name its error.
struct InFlight<'scope> {
    path: PathBuf,
    action: &'static str,
    handle: thread::ScopedJoinHandle<'scope, io::Result<()>>,
}

impl<'scope, 'env> Syncer<'scope, 'env> {
    pub(super) fn new(scope: &'scope thread::Scope<'scope, 'env>) -> Self {
        Syncer {
            scope,
            in_flight: VecDeque::with_capacity(FSYNCS_IN_FLIGHT_MAX),
            last: None,
        }
    }

    /// Asks for `file` to be synced (its data only, or data and metadata):
    /// the one asked for before starts now on a helper thread.
    pub(super) fn start(
        &mut self,
        path: PathBuf,
        action: &'static str,
        file: File,
        data_only: bool,
    ) -> Result<(), StoreError> {
        let job = Job {
            path,
            action,
            file,
            data_only,
        };
        if let Some(previous) = self.last.replace(job) {
            self.spawn(previous)?;
        }
        Ok(())
    }

    fn spawn(&mut self, job: Job) -> Result<(), StoreError> {
        if self.in_flight.len() >= FSYNCS_IN_FLIGHT_MAX {
            self.wait_oldest()?;
        }
        let (path, action) = (job.path.clone(), job.action);
        let handle = self.scope.spawn(move || job.run());
        self.in_flight.push_back(InFlight {
            path,
            action,
            handle,
        });
        Ok(())
    }

    fn wait_oldest(&mut self) -> Result<(), StoreError> {
        if let Some(InFlight {
            path,
            action,
            handle,
        }) = self.in_flight.pop_front()
        {
            handle
                .join()
                .map_err(|_| StoreError::ThreadPanicked { thread: "fsync" })?
                .map_err(|e| StoreError::io(action, path, e))?;
        }
        Ok(())
    }

    /// Runs the last fsync here and waits for every other one; the first
    /// failure is the error.
    pub(super) fn finish(mut self) -> Result<(), StoreError> {
        let here = self.last.take().map(|job| {
            job.run()
                .map_err(|e| StoreError::io(job.action, job.path, e))
        });
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        here.unwrap_or(Ok(()))
    }
}

/// One chunk of a batch on its way to disk.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) temp: PathBuf,
    pub(super) target: PathBuf,
    pub(super) digest: [u8; 32],
    pub(super) size_bytes: u64,
    /// The chunk is recorded; its file was missing or cut short.
    pub(super) repair: bool,
    pub(super) renamed: bool,
}

/// The files of one batch. Dropped before [`Batch::committed`], it removes
/// every temp file and every file it renamed into place, so a failed batch
/// leaves nothing behind; after, it removes only the temp files it did not
/// need (chunks another writer committed meanwhile).
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) pending: Vec<Pending>,
    pub(super) committed: bool,
}

impl Batch {
    pub(super) fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for p in &self.pending {
            // Best effort: the operation has already failed (or the file is
            // redundant) and its error is what the caller sees.
            if !p.renamed {
                let _ = fs::remove_file(&p.temp);
            } else if !self.committed {
                let _ = fs::remove_file(&p.target);
            }
        }
    }
}
