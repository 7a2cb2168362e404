//! What can stop a simulation: bad parameters, a price list that does not
//! read, a ledger that refused what the fast path did or disagrees with it,
//! and output files that cannot be written.

use std::path::PathBuf;

use peercloud_ledger::{InvariantError, TxError};

/// Why a simulation, a sweep or writing their outputs failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A parameter out of its range.
    #[error("parameter {name} is {value}: {reason}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Its value, as text.
        value: String,
        /// What it must be.
        reason: &'static str,
    },
    /// A price list that could not be read or makes no sense.
    #[error("price list {path}: {reason}")]
    PriceList {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {path}: {reason}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What plotters said.
        reason: String,
    },
    /// The ledger refused a transaction of a sampled lease: the fast path
    /// did something the ledger's rules do not allow.
    #[error("the ledger refused {action} of sampled lease #{lease}: {source}")]
    LedgerRefused {
        /// The lease's sequence number in the simulation.
        lease: u64,
        /// The transaction's kind.
        action: &'static str,
        /// The ledger's reason (boxed: it is large, and errors are rare).
        #[source]
        source: Box<TxError>,
    },
    /// The ledger's invariants failed after the run.
    #[error("the ledger's invariants failed: {source}")]
    LedgerInvariant {
        /// Which one (boxed: it is large, and errors are rare).
        #[source]
        source: Box<InvariantError>,
    },
    /// A sampled lease's money on the ledger differs from the fast path's.
    #[error("sampled lease #{lease}: the ledger has {field} = {ledger}, the fast path {fast}")]
    LedgerMismatch {
        /// The lease's sequence number in the simulation.
        lease: u64,
        /// The field that differs.
        field: &'static str,
        /// The ledger's value.
        ledger: String,
        /// The fast path's value.
        fast: String,
    },
    /// The ledger thread stopped before the run did.
    #[error("the ledger thread stopped unexpectedly")]
    LedgerThread,
    /// A sweep's worker thread stopped before its runs were done.
    #[error("a sweep worker thread stopped unexpectedly")]
    SweepWorker,
    /// Money arithmetic overflowed (absurd prices).
    #[error("arithmetic overflow in {what}")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
}
