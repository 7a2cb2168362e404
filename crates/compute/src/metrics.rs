//! Counters of the executor, for the node's metrics endpoint and for tests
//! (a cached module must not be compiled again).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The live counters, updated by runs on any thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    compilations: AtomicU64,
    cache_hits: AtomicU64,
    cache_evictions: AtomicU64,
    runs_completed: AtomicU64,
    runs_failed: AtomicU64,
    fuel_consumed: AtomicU64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Compilations,
    CacheHits,
    CacheEvictions,
    RunsCompleted,
    RunsFailed,
}

impl Counters {
    pub(crate) fn bump(&self, counter: Counter) {
        let cell = match counter {
            Counter::Compilations => &self.compilations,
            Counter::CacheHits => &self.cache_hits,
            Counter::CacheEvictions => &self.cache_evictions,
            Counter::RunsCompleted => &self.runs_completed,
            Counter::RunsFailed => &self.runs_failed,
        };
        cell.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_fuel(&self, fuel: u64) {
        self.fuel_consumed.fetch_add(fuel, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, cached_modules: usize) -> ComputeMetrics {
        let read = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        ComputeMetrics {
            compilations: read(&self.compilations),
            cache_hits: read(&self.cache_hits),
            cache_evictions: read(&self.cache_evictions),
            cached_modules: cached_modules as u64,
            runs_completed: read(&self.runs_completed),
            runs_failed: read(&self.runs_failed),
            fuel_consumed: read(&self.fuel_consumed),
        }
    }
}

/// A snapshot of the executor's counters since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ComputeMetrics {
    /// Modules compiled (cache misses that compiled successfully or not).
    pub compilations: u64,
    /// Runs that found their module compiled already.
    pub cache_hits: u64,
    /// Compiled modules dropped to make room for others.
    pub cache_evictions: u64,
    /// Compiled modules in the cache now.
    pub cached_modules: u64,
    /// Runs that ended with an outcome (any exit code).
    pub runs_completed: u64,
    /// Runs that ended with an error.
    pub runs_failed: u64,
    /// Fuel used by all runs that reached the module, completed or not. A run
    /// stopped by the wall clock counts the fuel wasmtime had written back
    /// at its last call, which can be less than it burned.
    pub fuel_consumed: u64,
}
