//! Peercloud's ledger: a pure, deterministic state machine over accounts, stake,
//! nodes and jobs, the blocks that order its transactions, and their redb
//! persistence.
//!
//! How the pieces connect:
//!
//! ```text
//!   Signed<Tx> ──► apply(state, tx, ctx) ──► Vec<Event>        (apply.rs, jobs.rs)
//!                     │  begin / commit / rollback journal      (table.rs, state.rs)
//!                     ▼
//!                  State ── incremental LtHash state root       (root.rs)
//!                     ▲
//!   build_block / apply_block: batch signatures, tx_root,       (block.rs)
//!                     │        state root in the signed header
//!                     ▼
//!                  LedgerDb: one fsync'd redb commit per block  (db.rs)
//! ```
//!
//! Module dependencies point one way, down: a module uses only modules on
//! lower lines, never one on its own line or above (no two modules use each
//! other).
//!
//! ```text
//!   db       ─► block, params, records, state
//!   genesis  ─► block, context, params, state, tx        (GenesisConfig, block 0)
//!   block    ─► apply, context, error, event, params, state, tx
//!   apply    ─► audits, buckets, clusters, jobs, leases, funds, context, error,
//!               event, params, records, state, tx
//!   audits   ─► clusters, funds, reputation, context, error, event, params, state,
//!               storage_error, storage_records          (failed audits, judgement)
//!   buckets  ─► billing, clusters, funds, context, error, event, params, state,
//!               storage_error, storage_records
//!   clusters ─► funds, context, error, event, params, state, storage_error,
//!               storage_records
//!   jobs     ─► funds, reputation, context, error, event, params, records, state
//!   leases   ─► funds, reputation, context, error, event, lease_error, lease_records,
//!               params, state                          (the lease life, billing)
//!   reputation ─► event, records, state                 (a change, its reason tallied)
//!   funds    ─► error, params, records, state            (debit, credit, slash_share)
//!   context  ─► state                                    (BlockContext)
//!   invariants ─► lease_records, params, records, state, storage_records
//!   state    ─► lease_records, params, records, root, storage_records, table
//!   error    ─► lease_error, records, storage_error
//!   event    ─► records, storage_records
//!   lease_records ─► table                               (LeaseRecord, period arithmetic)
//!   tx       ─► storage_records
//!   storage_error ─► storage_records
//!   storage_records ─► table                             (ClusterId, BucketId)
//!   billing  ─► params                                   (exact bill arithmetic)
//!   records  ─► params                                   (reputation weights)
//!   params, root, table: nothing in the crate (Params, constants)
//! ```
//!
//! `apply` reads no clock, no random source and iterates only `BTreeMap`s: the
//! block's height, time and seed come in a [`BlockContext`]. Any node that
//! replays the block log reaches the same state root.

pub mod apply;
mod audits;
pub mod billing;
pub mod block;
mod buckets;
mod clusters;
pub mod context;
pub mod db;
pub mod error;
pub mod event;
mod funds;
pub mod genesis;
mod invariants;
mod jobs;
pub mod lease_error;
pub mod lease_records;
mod leases;
pub mod object_entry;
pub mod params;
pub mod records;
pub mod repairs;
mod reputation;
pub mod root;
pub mod state;
pub mod storage_error;
pub mod storage_records;
mod table;
pub mod tx;

pub use apply::{apply, dry_run};
pub use block::{
    BLOCK_TXS_MAX, Block, BlockError, BlockHeader, BuiltBlock, apply_block, build_block, tx_root,
    verify_tx_signatures,
};
pub use context::BlockContext;
pub use db::{DbError, LedgerDb, StoredTip};
pub use error::TxError;
pub use event::Event;
pub use event::{LeaseEvent, StorageEvent};
pub use genesis::GenesisConfig;
pub use invariants::InvariantError;
pub use lease_error::LeaseError;
pub use lease_records::{LeaseRecord, LeaseStatus};
pub use leases::{check_lease_offer, settles_at_ms as lease_settles_at_ms};
pub use object_entry::{InlineIndex, InlineObject, ObjectEntry, ObjectRef};
pub use params::{Params, ParamsError};
pub use records::{
    Account, Award, JobRecord, JobState, NodeRecord, ReputationReason, ReputationTally, ResultClaim,
};
pub use state::{Checkpoint, EntryError, State, Tip};
pub use storage_error::StorageError;
pub use storage_records::{
    BandwidthReceipt, BucketId, BucketRecord, BucketStatus, BucketUsage, ClusterAction, ClusterId,
    ClusterRecord, ClusterTerms, EpochReports, Member, MemberStatus, Proposal, Redundancy,
    RepairReceipt,
};
pub use tx::{Tx, TxKind, registration_proof, verify_registration_proof};
