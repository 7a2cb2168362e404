//! The audit part of the earnings record: how this node's storage is
//! audited, seen from the node itself, so a farmer can explain every move
//! of its reputation and stake.
//!
//! Two sources, written two ways:
//!
//! ```text
//!  on_audit (answer path) ─try_send─► [AUDIT_LOG_QUEUE] ─► "audit-log" thread
//!        batches of ≤ AUDIT_LOG_BATCH, one commit each, Durability::None:
//!        answered (seq → time, piece, auditor, outcome), counts by outcome
//!  Earnings::record (chain lock held) ─► the block's commit, durable:
//!        reports (seq → AuditReported of this node), judgements (AuditFailed)
//! ```
//!
//! Answers. Answering an audit must stay fast, so the node never writes on
//! the answer path: it queues the answer (bounded; a full queue drops the
//! line and says so in the log) and one thread writes batches without an
//! fsync. Such a commit becomes durable with the next durable commit of the
//! same database, which is the next block the node records (every few
//! seconds): a crash loses at most the answers since then, which is
//! acceptable for a log the farmer reads, and the ledger's own record of
//! audits (reports, judgements) is never lost that way.
//!
//! Reports and judgements come from the blocks, as payments do, in the same
//! commit (a replay of the block log rebuilds them).
//!
//! Bounded: the last [`AUDITS_KEPT`] answers, reports and judgements each in
//! detail; the counts by outcome, of reports and of judgements forever.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use peercloud_ledger::{ClusterId, Event, StorageEvent};
use peercloud_types::{Amount, ContentId, Hash32, NodeId, PublicKey};
use redb::{
    Database, Durability, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction,
};

use super::{EarningsError, db_error};

/// Audits kept in detail, of each list (answers, reports, judgements):
/// at one audit of each piece per repair round, days of a busy holder's
/// answers, about 1 MiB on disk; the counts keep counting past it.
pub const AUDITS_KEPT: u64 = 10_000;
/// Answers waiting for the writer: a few seconds of a busy holder's audits.
/// A full queue drops the newest line rather than slow an answer down.
pub const AUDIT_LOG_QUEUE: usize = 4_096;
/// Answers the writer commits at once: a commit per batch, so a burst of
/// audits costs a few commits, not one each.
const AUDIT_LOG_BATCH: usize = 512;

/// A row of [`ANSWERED`]: time ms, piece, auditor, outcome code.
type AnswerRow = (u64, [u8; 32], Option<[u8; 32]>, u8);
/// A row of [`REPORTS`]: height, block time ms, cluster, auditor, epoch, piece.
type ReportRow = (u64, u64, [u8; 32], [u8; 32], u64, [u8; 32]);
/// A row of [`JUDGEMENTS`]: height, block time ms, cluster, epoch,
/// slashed and returned in base units.
type JudgementRow = (u64, u64, [u8; 32], u64, u128, u128);

/// Answers in detail, by number.
pub(super) const ANSWERED: TableDefinition<'_, u64, AnswerRow> =
    TableDefinition::new("audits_answered");
/// Answers counted ever, by outcome word ([`AuditAnswer::word`]).
pub(super) const ANSWER_COUNTS: TableDefinition<'_, &str, u64> =
    TableDefinition::new("audit_answer_counts");
/// Reports of this node, by number.
pub(super) const REPORTS: TableDefinition<'_, u64, ReportRow> =
    TableDefinition::new("audit_reports");
/// Judgements of this node, by number.
pub(super) const JUDGEMENTS: TableDefinition<'_, u64, JudgementRow> =
    TableDefinition::new("audit_judgements");
/// Audit counters of the `meta` table.
const NEXT_ANSWER: &str = "next_answer";
const NEXT_REPORT: &str = "next_report";
const NEXT_JUDGEMENT: &str = "next_judgement";

/// How this node answered an audit, from its own side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAnswer {
    /// It sent a proof (the auditor checks it against the CID).
    Proved,
    /// It does not have the piece.
    Missing,
    /// Its copy fails its own verification.
    Corrupt,
    /// Anything else: the store or the proof failed.
    Error,
}

impl AuditAnswer {
    /// Every outcome, in the order counts are listed.
    pub const ALL: [AuditAnswer; 4] = [
        AuditAnswer::Proved,
        AuditAnswer::Missing,
        AuditAnswer::Corrupt,
        AuditAnswer::Error,
    ];

    /// The word the record keys its count by.
    pub fn word(self) -> &'static str {
        match self {
            AuditAnswer::Proved => "proved",
            AuditAnswer::Missing => "missing",
            AuditAnswer::Corrupt => "corrupt",
            AuditAnswer::Error => "error",
        }
    }

    fn code(self) -> u8 {
        match self {
            AuditAnswer::Proved => 0,
            AuditAnswer::Missing => 1,
            AuditAnswer::Corrupt => 2,
            AuditAnswer::Error => 3,
        }
    }

    /// An unknown code reads as `Error`: the record writes only these four.
    fn from_code(code: u8) -> AuditAnswer {
        match code {
            0 => AuditAnswer::Proved,
            1 => AuditAnswer::Missing,
            2 => AuditAnswer::Corrupt,
            _ => AuditAnswer::Error,
        }
    }
}

/// One audit this node answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnsweredAudit {
    /// When, ms since the Unix epoch (this node's clock).
    pub time_ms: u64,
    /// The piece it was asked to prove.
    pub cid: ContentId,
    /// Who asked (`None`: a peer whose id names no node key).
    pub auditor: Option<NodeId>,
    /// How it answered.
    pub outcome: AuditAnswer,
}

/// A member reported this node's failed audit on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReport {
    /// Height of the block that took the report.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The cluster.
    pub cluster: ClusterId,
    /// The member that reported.
    pub auditor: NodeId,
    /// The audit epoch.
    pub epoch: u64,
    /// The piece.
    pub cid: ContentId,
}

/// The ledger judged this node on its reports: slashed and removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditJudgement {
    /// Height of the block that judged it.
    pub height: u64,
    /// That block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The cluster it was removed from.
    pub cluster: ClusterId,
    /// The epoch of the reports.
    pub epoch: u64,
    /// Member stake taken to the treasury.
    pub slashed: Amount,
    /// Member stake given back to the owner.
    pub returned: Amount,
}

/// How many audits this node answered, by outcome, ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerCounts {
    /// Proofs sent.
    pub proved: u64,
    /// Pieces it did not have.
    pub missing: u64,
    /// Pieces whose copy was corrupt.
    pub corrupt: u64,
    /// Other failures.
    pub error: u64,
}

impl AnswerCounts {
    fn slot(&mut self, outcome: AuditAnswer) -> &mut u64 {
        match outcome {
            AuditAnswer::Proved => &mut self.proved,
            AuditAnswer::Missing => &mut self.missing,
            AuditAnswer::Corrupt => &mut self.corrupt,
            AuditAnswer::Error => &mut self.error,
        }
    }
}

/// The audit part of a [`super::Summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSummary {
    /// Answers by outcome, ever (lines the queue dropped are not counted).
    pub answered: AnswerCounts,
    /// The newest answers, newest first.
    pub recent: Vec<AnsweredAudit>,
    /// Reports of this node, ever.
    pub reports_total: u64,
    /// The newest reports, newest first.
    pub reports: Vec<AuditReport>,
    /// Judgements of this node, ever.
    pub judgements_total: u64,
    /// The newest judgements, newest first.
    pub judgements: Vec<AuditJudgement>,
}

/// What a block holds about audits of `node`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BlockAudits {
    pub reports: Vec<AuditReport>,
    pub judgements: Vec<AuditJudgement>,
}

impl BlockAudits {
    /// The reports and judgements of `node` among a block's `events`.
    pub fn of(node: &NodeId, height: u64, time_ms: u64, events: &[Event]) -> BlockAudits {
        let mut audits = BlockAudits::default();
        for event in events {
            match event {
                Event::Storage(StorageEvent::AuditReported {
                    cluster,
                    auditor,
                    node: reported,
                    epoch,
                    cid,
                }) if reported == node => audits.reports.push(AuditReport {
                    height,
                    time_ms,
                    cluster: *cluster,
                    auditor: *auditor,
                    epoch: *epoch,
                    cid: *cid,
                }),
                Event::Storage(StorageEvent::AuditFailed {
                    cluster,
                    node: judged,
                    epoch,
                    slashed,
                    returned,
                }) if judged == node => audits.judgements.push(AuditJudgement {
                    height,
                    time_ms,
                    cluster: *cluster,
                    epoch: *epoch,
                    slashed: *slashed,
                    returned: *returned,
                }),
                _ => {}
            }
        }
        audits
    }
}

/// Creates the audit tables in `txn` (the record's open).
pub(super) fn create_tables(txn: &WriteTransaction, path: &Path) -> Result<(), EarningsError> {
    let err = |e: redb::TableError| db_error(path, e);
    txn.open_table(ANSWERED).map_err(err)?;
    txn.open_table(ANSWER_COUNTS).map_err(err)?;
    txn.open_table(REPORTS).map_err(err)?;
    txn.open_table(JUDGEMENTS).map_err(err)?;
    Ok(())
}

/// Reads `key` of `meta` (0 when absent).
fn counter(meta: &redb::Table<'_, &str, u64>, key: &str) -> Result<u64, redb::StorageError> {
    Ok(meta.get(key)?.map_or(0, |v| v.value()))
}

/// Writes the reports and judgements of `blocks` into `txn` (the block
/// commit), keeping the last `kept` of each in detail.
pub(super) fn write_block_audits<'a>(
    txn: &WriteTransaction,
    blocks: impl Iterator<Item = &'a BlockAudits>,
    kept: u64,
) -> Result<(), redb::Error> {
    let mut meta = txn.open_table(super::META)?;
    let mut reports = txn.open_table(REPORTS)?;
    let mut judgements = txn.open_table(JUDGEMENTS)?;
    let mut report_seq = counter(&meta, NEXT_REPORT)?;
    let mut judgement_seq = counter(&meta, NEXT_JUDGEMENT)?;
    for block in blocks {
        for r in &block.reports {
            let row = (
                r.height,
                r.time_ms,
                r.cluster.0.0,
                r.auditor.0.0,
                r.epoch,
                *r.cid.digest(),
            );
            reports.insert(report_seq, row)?;
            report_seq += 1;
        }
        for j in &block.judgements {
            let row = (
                j.height,
                j.time_ms,
                j.cluster.0.0,
                j.epoch,
                j.slashed.base_units(),
                j.returned.base_units(),
            );
            judgements.insert(judgement_seq, row)?;
            judgement_seq += 1;
        }
    }
    reports.retain_in(..report_seq.saturating_sub(kept), |_, _| false)?;
    judgements.retain_in(..judgement_seq.saturating_sub(kept), |_, _| false)?;
    meta.insert(NEXT_REPORT, report_seq)?;
    meta.insert(NEXT_JUDGEMENT, judgement_seq)?;
    Ok(())
}

/// Writes `answers` in one commit without an fsync (see the module doc),
/// keeping the last `kept` in detail and counting every one.
pub(super) fn write_answers(
    db: &Database,
    answers: &[AnsweredAudit],
    kept: u64,
) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::None)?;
    {
        let mut meta = txn.open_table(super::META)?;
        let mut answered = txn.open_table(ANSWERED)?;
        let mut counts = txn.open_table(ANSWER_COUNTS)?;
        let mut seq = counter(&meta, NEXT_ANSWER)?;
        for answer in answers {
            let row = (
                answer.time_ms,
                *answer.cid.digest(),
                answer.auditor.map(|n| n.0.0),
                answer.outcome.code(),
            );
            answered.insert(seq, row)?;
            seq += 1;
            let word = answer.outcome.word();
            let count = counts.get(word)?.map_or(0, |v| v.value());
            counts.insert(word, count + 1)?;
        }
        answered.retain_in(..seq.saturating_sub(kept), |_, _| false)?;
        meta.insert(NEXT_ANSWER, seq)?;
    }
    txn.commit()?;
    Ok(())
}

/// The audit part of the summary, the newest `limit` of each list.
pub(super) fn summary(txn: &ReadTransaction, limit: usize) -> Result<AuditSummary, redb::Error> {
    let meta = txn.open_table(super::META)?;
    let total =
        |key: &str| -> Result<u64, redb::Error> { Ok(meta.get(key)?.map_or(0, |v| v.value())) };
    let mut out = AuditSummary::default();
    let counts = txn.open_table(ANSWER_COUNTS)?;
    for outcome in AuditAnswer::ALL {
        *out.answered.slot(outcome) = counts.get(outcome.word())?.map_or(0, |v| v.value());
    }
    let answered = txn.open_table(ANSWERED)?;
    for row in answered.iter()?.rev().take(limit) {
        let (time_ms, cid, auditor, code) = row?.1.value();
        out.recent.push(AnsweredAudit {
            time_ms,
            cid: ContentId::from_digest(cid),
            auditor: auditor.map(|key| NodeId(PublicKey(key))),
            outcome: AuditAnswer::from_code(code),
        });
    }
    out.reports_total = total(NEXT_REPORT)?;
    let reports = txn.open_table(REPORTS)?;
    for row in reports.iter()?.rev().take(limit) {
        let (height, time_ms, cluster, auditor, epoch, cid) = row?.1.value();
        out.reports.push(AuditReport {
            height,
            time_ms,
            cluster: ClusterId(Hash32(cluster)),
            auditor: NodeId(PublicKey(auditor)),
            epoch,
            cid: ContentId::from_digest(cid),
        });
    }
    out.judgements_total = total(NEXT_JUDGEMENT)?;
    let judgements = txn.open_table(JUDGEMENTS)?;
    for row in judgements.iter()?.rev().take(limit) {
        let (height, time_ms, cluster, epoch, slashed, returned) = row?.1.value();
        out.judgements.push(AuditJudgement {
            height,
            time_ms,
            cluster: ClusterId(Hash32(cluster)),
            epoch,
            slashed: Amount::from_base_units(slashed),
            returned: Amount::from_base_units(returned),
        });
    }
    Ok(out)
}

/// The writer of answered audits: a bounded queue and the thread that
/// drains it. Dropping it closes the queue and waits for the thread to
/// write what was queued, so a record dropped then reopened holds every
/// answer that was queued.
#[derive(Debug)]
pub(super) struct AuditLog {
    queue: Option<SyncSender<AnsweredAudit>>,
    writer: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// Starts the writer of `db` at `path`, keeping `kept` answers.
    pub fn start(db: Arc<Database>, path: &Path, kept: u64) -> std::io::Result<AuditLog> {
        let (queue, answers) = std::sync::mpsc::sync_channel(AUDIT_LOG_QUEUE);
        let path = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("audit-log".to_owned())
            .spawn(move || write_loop(&db, &path, &answers, kept))?;
        Ok(AuditLog {
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// Queues `answer` without waiting; a full queue drops it (logged).
    pub fn push(&self, answer: AnsweredAudit) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(answer) {
            Ok(()) => {}
            Err(TrySendError::Full(answer)) => tracing::warn!(
                cid = %answer.cid,
                queued = AUDIT_LOG_QUEUE,
                "audit log queue full: an answered audit is not recorded"
            ),
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("audit log writer stopped: an answered audit is not recorded");
            }
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the audit log writer panicked");
        }
    }
}

/// The writer thread: a batch at a time until the queue closes.
fn write_loop(db: &Database, path: &Path, answers: &Receiver<AnsweredAudit>, kept: u64) {
    let mut batch = Vec::with_capacity(AUDIT_LOG_BATCH);
    while let Ok(first) = answers.recv() {
        batch.push(first);
        while batch.len() < AUDIT_LOG_BATCH {
            match answers.try_recv() {
                Ok(answer) => batch.push(answer),
                Err(_) => break,
            }
        }
        if let Err(e) = write_answers(db, &batch, kept) {
            let e = db_error(path, e);
            tracing::warn!(%e, lines = batch.len(), "answered audits not recorded");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EARNINGS_FILE, Earnings, META};
    use super::*;
    use peercloud_types::Keypair;
    use redb::ReadableDatabase;

    fn node(seed: u8) -> NodeId {
        Keypair::from_seed(&[seed; 32]).node_id()
    }

    fn answer(i: u8, outcome: AuditAnswer) -> AnsweredAudit {
        AnsweredAudit {
            time_ms: 1_000 + u64::from(i),
            cid: ContentId::of(&[i]),
            auditor: Some(node(i)),
            outcome,
        }
    }

    fn reported(auditor: u8, of: u8, epoch: u64) -> Event {
        Event::Storage(StorageEvent::AuditReported {
            cluster: ClusterId(Hash32([7; 32])),
            auditor: node(auditor),
            node: node(of),
            epoch,
            cid: ContentId::of(&[auditor, of]),
        })
    }

    fn judged(of: u8, slashed: u128) -> Event {
        Event::Storage(StorageEvent::AuditFailed {
            cluster: ClusterId(Hash32([7; 32])),
            node: node(of),
            epoch: 3,
            slashed: Amount::from_base_units(slashed),
            returned: Amount::from_base_units(900),
        })
    }

    #[test]
    fn keeps_the_last_answers_and_counts_every_one_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(EARNINGS_FILE);
        let earnings = Earnings::open_keeping(&path, node(1), 3).expect("open");
        let outcomes = [
            AuditAnswer::Proved,
            AuditAnswer::Proved,
            AuditAnswer::Missing,
            AuditAnswer::Proved,
            AuditAnswer::Corrupt,
            AuditAnswer::Error,
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            earnings.record_answer(answer(i as u8, outcome));
        }
        // Dropping the record flushes the queue: a reopen sees every line.
        drop(earnings);
        let earnings = Earnings::open_keeping(&path, node(1), 3).expect("reopen");
        let audits = earnings.summary(100).expect("summary").audits;
        assert_eq!(
            audits.answered,
            AnswerCounts {
                proved: 3,
                missing: 1,
                corrupt: 1,
                error: 1,
            }
        );
        // The last three, newest first, as they were answered.
        assert_eq!(
            audits.recent,
            vec![
                answer(5, AuditAnswer::Error),
                answer(4, AuditAnswer::Corrupt),
                answer(3, AuditAnswer::Proved),
            ]
        );
        assert_eq!(earnings.summary(1).expect("summary").audits.recent.len(), 1);
        // More answers after the reopen keep counting and keep the bound.
        earnings.record_answer(answer(6, AuditAnswer::Proved));
        drop(earnings);
        let earnings = Earnings::open(&path, node(1)).expect("reopen");
        let audits = earnings.summary(100).expect("summary").audits;
        assert_eq!(audits.answered.proved, 4);
        let times: Vec<u64> = audits.recent.iter().map(|a| a.time_ms).collect();
        assert_eq!(times, [1_006, 1_005, 1_004]);
    }

    #[test]
    fn records_the_reports_and_judgements_of_this_node_only_bounded_across_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(EARNINGS_FILE);
        let me = 1;
        let earnings = Earnings::open_keeping(&path, node(me), 2).expect("open");
        earnings.record(0, 100, &[]).expect("genesis");
        let block = [reported(2, me, 3), reported(2, 9, 3), reported(3, me, 3)];
        earnings.record(1, 200, &block).expect("reports");
        let block = [reported(4, me, 3), judged(9, 5), judged(me, 100)];
        earnings.record(2, 300, &block).expect("judged");
        drop(earnings);

        let earnings = Earnings::open_keeping(&path, node(me), 2).expect("reopen");
        let audits = earnings.summary(100).expect("summary").audits;
        assert_eq!(audits.reports_total, 3);
        // The last two, newest first; the other node's are not here.
        let reports: Vec<(u64, u64, NodeId)> = audits
            .reports
            .iter()
            .map(|r| (r.height, r.time_ms, r.auditor))
            .collect();
        assert_eq!(reports, [(2, 300, node(4)), (1, 200, node(3))]);
        assert!(audits.reports.iter().all(|r| r.epoch == 3));
        assert_eq!(audits.reports[0].cid, ContentId::of(&[4, me]));
        assert_eq!(audits.judgements_total, 1);
        assert_eq!(
            audits.judgements,
            vec![AuditJudgement {
                height: 2,
                time_ms: 300,
                cluster: ClusterId(Hash32([7; 32])),
                epoch: 3,
                slashed: Amount::from_base_units(100),
                returned: Amount::from_base_units(900),
            }]
        );
        // Answers are apart from the ledger's reports.
        assert_eq!(audits.answered, AnswerCounts::default());
        let none = earnings.summary(0).expect("summary").audits;
        assert!(none.reports.is_empty() && none.judgements.is_empty());
        assert_eq!(none.reports_total, 3);
    }

    #[test]
    fn a_format_1_record_is_emptied_and_rebuilt_from_the_block_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(EARNINGS_FILE);
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            {
                let mut meta = txn.open_table(META).expect("meta");
                meta.insert("format", 1).expect("format");
                meta.insert("next_height", 5).expect("height");
                meta.insert("next_seq", 1).expect("seq");
                // Format 1's payments table (a bool for bandwidth).
                let old: redb::TableDefinition<'_, u64, (u64, u64, [u8; 32], u128, bool)> =
                    redb::TableDefinition::new("payments");
                let mut payments = txn.open_table(old).expect("payments");
                payments
                    .insert(0, (4, 400, [5; 32], 10, false))
                    .expect("a payment");
            }
            txn.commit().expect("commit");
        }
        let earnings = Earnings::open(&path, node(1)).expect("a format 1 record opens");
        // Empty: the next catch-up replays the whole log, reports included.
        assert_eq!(earnings.next_height().expect("height"), 0);
        let summary = earnings.summary(10).expect("summary");
        assert_eq!(summary.recorded_height, None);
        assert!(summary.recent.is_empty() && summary.buckets.is_empty());
        drop(earnings);
        let db = Database::open(&path).expect("reopen");
        let txn = db.begin_read().expect("read");
        let format = txn
            .open_table(META)
            .expect("meta")
            .get("format")
            .expect("get")
            .map(|v| v.value());
        assert_eq!(format, Some(super::super::EARNINGS_FORMAT_VERSION));
    }
}
