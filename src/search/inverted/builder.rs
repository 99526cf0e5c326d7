//! [`Builder`]: owns the background thread that builds, catches up or
//! rebuilds the inverted index while the store keeps taking writes.
//!
//! # Why a thread, and why two passes
//!
//! Building the inverted index of a large store takes minutes; the app must
//! be able to search (with the forward scan) and write meanwhile. So the
//! long pass ([`Inverted::catch_up`]) runs beside the writer, reading the
//! store as it is. Batches written during that pass are not in it, so a
//! short second pass runs while holding the writer lock: nothing can be
//! written during it, and the index ends in step with the store, ready to
//! follow the next batch (see `crate::write`).
//!
//! At most one job runs at a time; asking for another while one runs does
//! nothing (the running one, or the next follow, brings the index in step).
//! Dropping the builder cancels the job and waits for it, so the store's
//! lock is released with the index; the job resumes at the next open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::warn;

use super::engine::{CatchUp, Inverted};
use crate::error::{Error, Result};
use crate::store::Store;

/// The background job of one index's inverted index, if any.
#[derive(Default)]
pub(crate) struct Builder {
    job: Mutex<Option<Job>>,
}

struct Job {
    cancel: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Result<CatchUp>>,
}

impl Builder {
    /// Starts a catch-up (or, with `rebuild`, a full rebuild) of `inv` from
    /// `store` unless a job is running. `writer` is the index's writer
    /// lock, held for the second pass.
    pub(crate) fn start(
        &self,
        inv: &Arc<Inverted>,
        store: &Arc<Store>,
        writer: &Arc<Mutex<()>>,
        rebuild: bool,
    ) {
        let mut job = self.lock();
        if job.as_ref().is_some_and(|j| !j.handle.is_finished()) {
            return;
        }
        let (inv, store, writer) = (Arc::clone(inv), Arc::clone(store), Arc::clone(writer));
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        let spawned = std::thread::Builder::new()
            .name("sealdex-inverted".into())
            .spawn(move || {
                let mut r = inv.catch_up(&store, rebuild, &stop);
                if r.is_ok()
                    && !stop.load(Ordering::Acquire)
                    && !inv.is_following(store.generation())
                {
                    let _writer = writer.lock().unwrap_or_else(|p| p.into_inner());
                    r = inv.catch_up(&store, false, &stop);
                }
                if let Err(e) = &r {
                    warn!(error = %e, "building the inverted index failed");
                }
                r
            });
        match spawned {
            Ok(handle) => *job = Some(Job { cancel, handle }),
            Err(e) => warn!(error = %e, "could not start the inverted index's builder"),
        }
    }

    /// Whether a job is running now.
    pub(crate) fn is_running(&self) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|j| !j.handle.is_finished())
    }

    /// Waits for the job, if any, and returns its result.
    pub(crate) fn join(&self) -> Option<Result<CatchUp>> {
        let job = self.lock().take()?;
        Some(
            job.handle
                .join()
                .unwrap_or_else(|_| Err(Error::Inverted("the builder thread panicked".into()))),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Job>> {
        self.job.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Builder {
    /// Cancels the job and waits for it.
    fn drop(&mut self) {
        let job = self.job.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(job) = job {
            job.cancel.store(true, Ordering::Release);
            let _ = job.handle.join();
        }
    }
}
