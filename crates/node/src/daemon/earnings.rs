//! What this node earned from storage: every `StoragePaid` of a bill (or a
//! close) that names this node, storage or bandwidth, with the block that
//! paid it, and the totals, overall and per bucket. A redb database in the
//! data directory ([`EARNINGS_FILE`]), format-checked on open.
//!
//! Where the payments come from. The ledger keeps blocks, not their events,
//! and a block's events depend on the state before it, of which only the
//! tip's survives. So the node records a block's payments where it applies
//! the block (`daemon/ledger.rs`: the validator's proposal, a follower's
//! apply), right after the block is on disk and while it still holds the
//! chain lock: blocks are recorded in chain order, each once (a height
//! already recorded is skipped, a gap refused), and an API read under the
//! same lock sees the record and the ledger at the same block. A crash
//! between the two writes, or a failed write of this record, leaves the
//! record behind the chain; at start [`Earnings::catch_up`] replays the
//! block log from genesis into a scratch state (the only way to get a past
//! block's events back) and records the blocks it missed. The same path
//! fills a new record on a node that already has a chain. A replay re-checks
//! every block, so it costs one pass over the log, and only at a start that
//! finds the record behind.
//!
//! ```text
//!  Chain::apply / propose ─(chain lock held)─► Earnings::record(height, time, events)
//!        one durable commit: payments (seq → payment), totals, per bucket, next height
//!  Node::start ─► Earnings::catch_up(chain): replay from genesis, record heights ≥ next
//!  GET /v1/earnings ─(chain lock held)─► Earnings::summary(limit) + the ledger's standing
//! ```
//!
//! Bounded: the last [`PAYMENTS_KEPT`] payments in detail (older ones are
//! dropped as new ones come), the totals forever (one row per bucket that
//! ever paid this node).
//!
//! Audits (`audits.rs`): the same record keeps the audits this node
//! answered (off the answer path, through a small batching writer) and the
//! ledger's reports and judgements of this node (with each block's
//! payments), so a farmer can see each audit and what it cost.

mod audits;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use peercloud_ledger::billing::PaidFor;
use peercloud_ledger::{
    Block, BlockError, BucketId, Event, ParamsError, State, StorageEvent, apply_block,
};
use peercloud_types::{Amount, Hash32, NodeId};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::Inner;
use crate::chain::{Chain, ChainError, Committed};
pub use audits::{
    AUDITS_KEPT, AnswerCounts, AnsweredAudit, AuditAnswer, AuditJudgement, AuditReport,
    AuditSummary,
};
use audits::{AuditLog, BlockAudits};

/// File name of the earnings record in a node's data directory.
pub const EARNINGS_FILE: &str = "earnings.redb";
/// Format of the earnings record; another is refused by name.
///
/// 2: the audit tables (answers, reports, judgements of this node). A
/// format 1 record is migrated by emptying it: the block log gives back
/// its payments and the reports it never recorded (the next
/// [`Earnings::catch_up`] replays it from genesis). 3: payments for
/// repair (a format 2 record goes with a ledger of format 5, which this
/// node refuses too).
pub const EARNINGS_FORMAT_VERSION: u64 = 3;
/// The format before the audit tables, migrated on open.
const EARNINGS_FORMAT_NO_AUDITS: u64 = 1;
/// Payments kept in detail: years of a node's bills at a few buckets a
/// month, about 1 MiB on disk; the totals keep counting past it.
pub const PAYMENTS_KEPT: u64 = 10_000;
/// Blocks read from the log at once during a catch-up (and recorded in one
/// commit): as many as a block sync answers.
const REPLAY_BLOCKS_PER_READ: u32 = 256;
/// Bytes of blocks read at once during a catch-up: a sync answer's bound.
const REPLAY_BYTES_PER_READ: usize = 8 << 20;

/// Meta: `format`, `next_height` (the next block to record), `next_seq`
/// (the next payment's number), `payments` (counted ever).
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Totals ever, in base units: `storage`, `bandwidth`, `repair`.
const TOTALS: TableDefinition<'_, &str, u128> = TableDefinition::new("totals");
/// Per bucket: id → (storage, bandwidth, repair in base units, payments).
const BUCKETS: TableDefinition<'_, [u8; 32], (u128, u128, u128, u64)> =
    TableDefinition::new("buckets");
/// Payments in detail: number → (height, block time ms, bucket id, amount
/// in base units, what for: [`kind_byte`]).
const PAYMENTS: TableDefinition<'_, u64, (u64, u64, [u8; 32], u128, u8)> =
    TableDefinition::new("payments");

/// The byte a payment's kind is stored as.
fn kind_byte(paid_for: PaidFor) -> u8 {
    match paid_for {
        PaidFor::Storage => 0,
        PaidFor::Bandwidth => 1,
        PaidFor::Repair => 2,
    }
}

/// The kind a stored byte names (an unknown byte reads as storage: only
/// this module writes the table).
fn kind_of(byte: u8) -> PaidFor {
    match byte {
        1 => PaidFor::Bandwidth,
        2 => PaidFor::Repair,
        _ => PaidFor::Storage,
    }
}

/// The [`TOTALS`] key of a payment's kind.
fn total_key(paid_for: PaidFor) -> &'static str {
    match paid_for {
        PaidFor::Storage => "storage",
        PaidFor::Bandwidth => "bandwidth",
        PaidFor::Repair => "repair",
    }
}

/// The earnings record failed.
#[derive(Debug, thiserror::Error)]
pub enum EarningsError {
    /// redb failed.
    #[error("earnings record {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        source: Box<redb::Error>,
    },
    /// The database was written by another format.
    #[error(
        "earnings record {path} is format {found}; this node reads format {EARNINGS_FORMAT_VERSION} \
         (move the file away: the node rebuilds it from its block log)"
    )]
    Format {
        /// The database file.
        path: PathBuf,
        /// The format found.
        found: u64,
    },
    /// A block out of order: the record takes blocks one after the other.
    #[error("earnings record {path} is at block {expected}, was given block {got}")]
    Gap {
        /// The database file.
        path: PathBuf,
        /// The next block it records.
        expected: u64,
        /// The block it was given.
        got: u64,
    },
    /// The chain's params cannot start a replay.
    #[error("replaying the block log for the earnings record: {0}")]
    Params(#[from] ParamsError),
    /// The block log could not be read.
    #[error("reading the block log for the earnings record: {0}")]
    Chain(Box<ChainError>),
    /// A block of the log is missing.
    #[error("the block log has no block {height} (its tip is past it): cannot replay it")]
    MissingBlock {
        /// The height.
        height: u64,
    },
    /// The audit log's writer thread could not start.
    #[error("earnings record {path}: starting the audit log writer: {source}")]
    Writer {
        /// The database file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A block of the log did not replay.
    #[error("replaying block {height} for the earnings record: {source}")]
    Replay {
        /// The height.
        height: u64,
        /// Why the ledger refused it.
        source: Box<BlockError>,
    },
}

/// One payment for this node's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    /// Height of the block that paid it.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The bucket that paid.
    pub bucket: BucketId,
    /// How much.
    pub amount: Amount,
    /// What for.
    pub paid_for: PaidFor,
}

/// What was earned: storage, bandwidth and repair, and how many payments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// For bytes stored.
    pub storage: Amount,
    /// For bytes served.
    pub bandwidth: Amount,
    /// For pieces rebuilt onto other nodes.
    pub repair: Amount,
    /// Payments counted.
    pub payments: u64,
}

/// What the record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The last block recorded (`None`: not even genesis yet).
    pub recorded_height: Option<u64>,
    /// Everything, ever.
    pub totals: Totals,
    /// Per bucket, in bucket id order.
    pub buckets: Vec<(BucketId, Totals)>,
    /// The newest payments, newest first.
    pub recent: Vec<Payment>,
    /// Audits answered, and the ledger's reports and judgements of this node.
    pub audits: AuditSummary,
}

/// What [`Earnings::record`] did with a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The block was recorded, with this many payments for this node.
    Block {
        /// Payments it held for this node.
        payments: usize,
    },
    /// The block was recorded before: nothing changed.
    Already,
}

/// The payments, reports and judgements of one block for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlockPayments {
    height: u64,
    payments: Vec<Payment>,
    audits: BlockAudits,
}

/// This node's earnings record.
#[derive(Debug)]
pub struct Earnings {
    db: Arc<Database>,
    path: PathBuf,
    node: NodeId,
    kept: u64,
    /// The writer of answered audits (stopped and flushed when dropped).
    audit_log: AuditLog,
}

impl Earnings {
    /// Opens (or creates) the record of `node`'s earnings at `path`.
    pub fn open(path: &Path, node: NodeId) -> Result<Earnings, EarningsError> {
        Earnings::open_keeping(path, node, PAYMENTS_KEPT)
    }

    /// [`Earnings::open`] keeping `kept` payments and audits in detail (at
    /// least one).
    fn open_keeping(path: &Path, node: NodeId, kept: u64) -> Result<Earnings, EarningsError> {
        let kept = kept.max(1);
        let db = Arc::new(Database::create(path).map_err(|e| db_error(path, e))?);
        let err = |e: redb::Error| db_error(path, e);
        let txn = db.begin_write().map_err(|e| err(e.into()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
            let found = meta
                .get("format")
                .map_err(|e| err(e.into()))?
                .map(|v| v.value());
            match found {
                None => {}
                Some(EARNINGS_FORMAT_VERSION) => {}
                Some(EARNINGS_FORMAT_NO_AUDITS) => {
                    tracing::info!(
                        path = %path.display(),
                        "earnings record of format 1: emptied, rebuilt from the block log"
                    );
                    meta.retain(|_, _| false).map_err(|e| err(e.into()))?;
                    txn.delete_table(TOTALS).map_err(|e| err(e.into()))?;
                    txn.delete_table(BUCKETS).map_err(|e| err(e.into()))?;
                    txn.delete_table(PAYMENTS).map_err(|e| err(e.into()))?;
                }
                Some(found) => {
                    return Err(EarningsError::Format {
                        path: path.to_path_buf(),
                        found,
                    });
                }
            }
            meta.insert("format", EARNINGS_FORMAT_VERSION)
                .map_err(|e| err(e.into()))?;
            txn.open_table(TOTALS).map_err(|e| err(e.into()))?;
            txn.open_table(BUCKETS).map_err(|e| err(e.into()))?;
            txn.open_table(PAYMENTS).map_err(|e| err(e.into()))?;
            audits::create_tables(&txn, path)?;
        }
        txn.commit().map_err(|e| err(e.into()))?;
        let audit_log =
            AuditLog::start(db.clone(), path, kept).map_err(|source| EarningsError::Writer {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Earnings {
            db,
            path: path.to_path_buf(),
            node,
            kept,
            audit_log,
        })
    }

    /// Records an audit this node answered, off the caller's path: queued
    /// for the audit log's writer, never waiting (a full queue drops it).
    pub fn record_answer(&self, answer: AnsweredAudit) {
        self.audit_log.push(answer);
    }

    fn err(&self, source: impl Into<redb::Error>) -> EarningsError {
        db_error(&self.path, source)
    }

    /// The next block the record takes (0: none recorded yet).
    pub fn next_height(&self) -> Result<u64, EarningsError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let next = meta.get("next_height").map_err(|e| self.err(e))?;
        Ok(next.map_or(0, |v| v.value()))
    }

    /// Records block `height`'s payments for this node from its `events`,
    /// durably: the block must be the next one ([`EarningsError::Gap`]
    /// otherwise); one recorded before is [`Recorded::Already`].
    pub fn record(
        &self,
        height: u64,
        time_ms: u64,
        events: &[Event],
    ) -> Result<Recorded, EarningsError> {
        let next = self.next_height()?;
        if height < next {
            return Ok(Recorded::Already);
        }
        let block = self.payments_of(height, time_ms, events);
        let payments = block.payments.len();
        self.commit(next, &[block])?;
        Ok(Recorded::Block { payments })
    }

    /// This node's payments among `events`.
    fn payments_of(&self, height: u64, time_ms: u64, events: &[Event]) -> BlockPayments {
        let payments = events
            .iter()
            .filter_map(|event| match event {
                Event::Storage(StorageEvent::StoragePaid {
                    bucket,
                    node: Some(node),
                    amount,
                    paid_for,
                    ..
                }) if *node == self.node => Some(Payment {
                    height,
                    time_ms,
                    bucket: *bucket,
                    amount: *amount,
                    paid_for: *paid_for,
                }),
                _ => None,
            })
            .collect();
        let audits = BlockAudits::of(&self.node, height, time_ms, events);
        BlockPayments {
            height,
            payments,
            audits,
        }
    }

    /// Writes consecutive `blocks`, the first of which must be `next`, in
    /// one durable commit, dropping the payments past the last
    /// [`Earnings::kept`].
    fn commit(&self, next: u64, blocks: &[BlockPayments]) -> Result<(), EarningsError> {
        let mut want = next;
        for block in blocks {
            if block.height != want {
                return Err(EarningsError::Gap {
                    path: self.path.clone(),
                    expected: want,
                    got: block.height,
                });
            }
            want += 1;
        }
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let mut totals = txn.open_table(TOTALS).map_err(|e| self.err(e))?;
            let mut buckets = txn.open_table(BUCKETS).map_err(|e| self.err(e))?;
            let mut payments = txn.open_table(PAYMENTS).map_err(|e| self.err(e))?;
            let read = |meta: &redb::Table<'_, &str, u64>, key: &str| {
                meta.get(key)
                    .map(|v| v.map_or(0, |v| v.value()))
                    .map_err(|e| self.err(e))
            };
            let mut seq = read(&meta, "next_seq")?;
            let mut count = read(&meta, "payments")?;
            for payment in blocks.iter().flat_map(|b| &b.payments) {
                let units = payment.amount.base_units();
                let kind = total_key(payment.paid_for);
                let total = totals
                    .get(kind)
                    .map_err(|e| self.err(e))?
                    .map_or(0, |v| v.value());
                // Saturating: a sum of real payments stays far below u128.
                totals
                    .insert(kind, total.saturating_add(units))
                    .map_err(|e| self.err(e))?;
                let key = payment.bucket.0.0;
                let (storage, bandwidth, repair, n) = buckets
                    .get(key)
                    .map_err(|e| self.err(e))?
                    .map_or((0, 0, 0, 0), |v| v.value());
                let row = match payment.paid_for {
                    PaidFor::Storage => (storage.saturating_add(units), bandwidth, repair, n + 1),
                    PaidFor::Bandwidth => (storage, bandwidth.saturating_add(units), repair, n + 1),
                    PaidFor::Repair => (storage, bandwidth, repair.saturating_add(units), n + 1),
                };
                buckets.insert(key, row).map_err(|e| self.err(e))?;
                let detail = (
                    payment.height,
                    payment.time_ms,
                    key,
                    units,
                    kind_byte(payment.paid_for),
                );
                payments.insert(seq, detail).map_err(|e| self.err(e))?;
                seq += 1;
                count += 1;
            }
            let cut = seq.saturating_sub(self.kept);
            payments
                .retain_in(..cut, |_, _| false)
                .map_err(|e| self.err(e))?;
            meta.insert("next_seq", seq).map_err(|e| self.err(e))?;
            meta.insert("payments", count).map_err(|e| self.err(e))?;
            meta.insert("next_height", want).map_err(|e| self.err(e))?;
        }
        audits::write_block_audits(&txn, blocks.iter().map(|b| &b.audits), self.kept)
            .map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// The totals, per bucket, and the newest `limit` payments, newest first.
    pub fn summary(&self, limit: usize) -> Result<Summary, EarningsError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let get = |key: &str| {
            meta.get(key)
                .map(|v| v.map(|v| v.value()))
                .map_err(|e| self.err(e))
        };
        let recorded_height = get("next_height")?.and_then(|next| next.checked_sub(1));
        let payments = get("payments")?.unwrap_or(0);
        let table = txn.open_table(TOTALS).map_err(|e| self.err(e))?;
        let total = |kind: &str| {
            table
                .get(kind)
                .map(|v| Amount::from_base_units(v.map_or(0, |v| v.value())))
                .map_err(|e| self.err(e))
        };
        let totals = Totals {
            storage: total("storage")?,
            bandwidth: total("bandwidth")?,
            repair: total("repair")?,
            payments,
        };
        let table = txn.open_table(BUCKETS).map_err(|e| self.err(e))?;
        let mut buckets = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            let (storage, bandwidth, repair, payments) = value.value();
            buckets.push((
                BucketId(Hash32(key.value())),
                Totals {
                    storage: Amount::from_base_units(storage),
                    bandwidth: Amount::from_base_units(bandwidth),
                    repair: Amount::from_base_units(repair),
                    payments,
                },
            ));
        }
        let table = txn.open_table(PAYMENTS).map_err(|e| self.err(e))?;
        let mut recent = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))?.rev().take(limit) {
            let (_, value) = row.map_err(|e| self.err(e))?;
            let (height, time_ms, bucket, units, kind) = value.value();
            recent.push(Payment {
                height,
                time_ms,
                bucket: BucketId(Hash32(bucket)),
                amount: Amount::from_base_units(units),
                paid_for: kind_of(kind),
            });
        }
        let audits = audits::summary(&txn, limit).map_err(|e| self.err(e))?;
        Ok(Summary {
            recorded_height,
            totals,
            buckets,
            recent,
            audits,
        })
    }

    /// Records the blocks of `chain` past this record's last one, replaying
    /// the block log from genesis to get their events back; answers how many
    /// blocks it recorded (none when the record is at the chain's tip).
    pub fn catch_up(&self, chain: &Chain) -> Result<u64, EarningsError> {
        let from = self.next_height()?;
        let end = chain.next_height();
        if from >= end {
            return Ok(0);
        }
        tracing::info!(
            from,
            tip = end - 1,
            "earnings record behind the chain: replaying the block log"
        );
        let mut state = State::new(chain.state().params().clone())?;
        let mut height = 0;
        let mut next = from;
        while height < end {
            let blocks = chain
                .blocks_from(height, REPLAY_BLOCKS_PER_READ, REPLAY_BYTES_PER_READ)
                .map_err(|e| EarningsError::Chain(Box::new(e)))?;
            if blocks.is_empty() {
                return Err(EarningsError::MissingBlock { height });
            }
            let mut missed = Vec::new();
            for block in blocks.iter().take_while(|b| b.height() < end) {
                let events = replay(&mut state, block, height)?;
                if height >= from {
                    let time_ms = block.header.body.time_ms;
                    missed.push(self.payments_of(height, time_ms, &events));
                }
                height += 1;
            }
            if !missed.is_empty() {
                self.commit(next, &missed)?;
                next = height;
            }
        }
        Ok(end - from)
    }
}

/// Applies `block`, which must be block `height`, to `state`.
fn replay(state: &mut State, block: &Block, height: u64) -> Result<Vec<Event>, EarningsError> {
    if block.height() != height {
        return Err(EarningsError::MissingBlock { height });
    }
    apply_block(state, block).map_err(|source| EarningsError::Replay {
        height,
        source: Box::new(source),
    })
}

fn db_error(path: &Path, source: impl Into<redb::Error>) -> EarningsError {
    EarningsError::Db {
        path: path.to_path_buf(),
        source: Box::new(source.into()),
    }
}

impl Inner {
    /// Records `committed`'s payments for this node. Called right after the
    /// block is on disk, with the chain lock still held, so blocks are
    /// recorded in order; a failure is logged and caught up at the next start.
    pub(crate) fn record_earnings(&self, committed: &Committed) {
        let block = &committed.block;
        let height = block.height();
        match self
            .earnings
            .record(height, block.header.body.time_ms, &committed.events)
        {
            Ok(Recorded::Block { payments }) if payments > 0 => {
                tracing::debug!(height, payments, "storage payments recorded");
            }
            Ok(_) => {}
            // Behind since an earlier failure, logged then.
            Err(e @ EarningsError::Gap { .. }) => tracing::debug!(%e, "earnings not recorded"),
            Err(e) => tracing::error!(
                height,
                %e,
                "earnings not recorded; the record catches up when the node restarts"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
