//! Repair: every object of a bucket back to full redundancy without anyone
//! asking. Every member of a bucket's cluster audits it every
//! [`REPAIR_INTERVAL`], and the first of its index replicas that is up
//! also rebuilds (`routine.rs`): for each live object they read its
//! manifest and check every piece where the cluster placed it, with an
//! audit (a proof of a few KiB that the holder has the piece intact,
//! [`Inner::audit`]), not a download.
//!
//! - A replicated chunk (the manifest, or an object kept in copies) wants
//!   [`REPLICAS_DEFAULT`] holders among its candidates in the cluster; when
//!   it has fewer, a good copy is read from a holder and put on the next
//!   candidates that do not hold it.
//! - An erasure group wants each of its `k + m` pieces on a node of its own;
//!   a missing piece is rebuilt from any `k` others (the data chunks are
//!   recovered, the parity encoded again) and put on a member the group does
//!   not use yet.
//!
//! A holder that cannot be reached counts as lost only once it has been
//! unreachable for [`HOLDER_GRACE`] (a restart is not a loss); a holder that
//! answers without the piece, or with it corrupt, is lost at once.
//!
//! A rebuilt piece goes to its new holder as a repair put, and the holder
//! signs a receipt for its bytes that pays the repairer (`receipts.rs`).
//!
//! These audits are also the cluster's proof of storage: a holder that had
//! proved a piece and then fails it (answers without it, with it corrupt,
//! or with a bad proof), or a member that does not answer at all past the
//! grace, is reported on the ledger
//! (`ReportAudit`); the reports of two members in one audit epoch get it
//! slashed and removed from the cluster, and its pieces are rebuilt
//! elsewhere.
//!
//! ```text
//!  every REPAIR_INTERVAL, for each bucket this node keeps the index of:
//!   index_list ─► manifests ─► audit each piece's holders
//!     replicated: < 3 good ─► get a good copy ─► put_chunk_to the next candidates
//!     group:      missing pieces ─► recover_group + encode parity ─► put on unused members
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use peercloud_ledger::{BucketId, ClusterId};
use peercloud_store::erasure::{self};
use peercloud_store::{
    ChunkGroup, GROUP_PIECES_MAX, Manifest, PlacementNode, REPLICAS_DEFAULT, StoreError,
    group_candidate, rank, window,
};
use peercloud_types::{ContentId, Hash32, NodeId};

use super::index::cluster_nodes;
use super::{AskError, AuditOutcome, Inner, NetStore};

mod receipts;
mod routine;
use receipts::RepairOf;
pub use receipts::RepairReceipts;
pub(crate) use routine::repair_loop;

/// How often a bucket's index replicas look for lost pieces.
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(3);
/// Most live objects one audit or repair pass over a bucket checks; the
/// next pass goes on from there, so a large bucket is covered over several
/// passes and the background load stays bounded.
pub const OBJECTS_PER_PASS: usize = 64;
/// How long a holder may be unreachable before its pieces are rebuilt
/// elsewhere (a devnet's restarts take about a second).
pub const HOLDER_GRACE: Duration = Duration::from_secs(5);

/// What one repair pass over a bucket did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Live objects scanned.
    pub objects: usize,
    /// Pieces (chunks, manifest included) checked.
    pub pieces: usize,
    /// Pieces found lost (missing, corrupt, or on a node gone past its grace).
    pub lost: usize,
    /// Copies or pieces written to new holders.
    pub rebuilt: usize,
    /// Bytes written to new holders.
    pub bytes_written: u64,
    /// Bytes read to rebuild them.
    pub bytes_read: u64,
    /// Pieces that could not be rebuilt now, and why.
    pub unrepaired: Vec<String>,
}

impl RepairReport {
    /// Whether every piece checked is at full redundancy now.
    pub fn whole(&self) -> bool {
        self.lost == self.rebuilt && self.unrepaired.is_empty()
    }
}

/// What a node's background repairs did since it started (its passes'
/// reports added up): what an operator or a benchmark reads.
#[derive(Debug, Default)]
pub struct RepairTotals {
    /// Pieces written to new holders.
    pub rebuilt: AtomicU64,
    /// Bytes written to new holders.
    pub bytes_written: AtomicU64,
    /// Bytes read to rebuild them.
    pub bytes_read: AtomicU64,
}

impl RepairTotals {
    fn add(&self, report: &RepairReport) {
        self.rebuilt
            .fetch_add(report.rebuilt as u64, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(report.bytes_written, Ordering::Relaxed);
        self.bytes_read
            .fetch_add(report.bytes_read, Ordering::Relaxed);
    }
}

/// Most pieces a repairer remembers a holder of (a bound on its memory;
/// past it, the pieces first seen are forgotten and audited anew).
pub const PROVED_PIECES_MAX: usize = 1 << 20;

/// What a repairer remembers from pass to pass: which nodes were
/// unreachable since when, and which node proved which piece (so a holder
/// that held a piece and lost it is told apart from one that never had it).
#[derive(Debug, Default)]
pub struct RepairMemory {
    since: HashMap<NodeId, Instant>,
    proved: HashMap<ContentId, BTreeSet<NodeId>>,
    /// Holders that failed a piece they had proved, found by the last pass.
    failed: Vec<(NodeId, ContentId)>,
    /// Where the next pass over each bucket starts (after this key).
    cursor: HashMap<BucketId, String>,
    /// The receipts of the pieces this node rebuilt onto others.
    receipts: RepairReceipts,
    /// Index replicas ranked before this node that did not answer its
    /// probes, since when (`routine.rs`; apart from `since`, which is
    /// about holders answering audits).
    leaders_down: HashMap<NodeId, Instant>,
}

impl RepairMemory {
    /// Whether `node` has been unreachable past the grace.
    fn gone(&self, node: &NodeId) -> bool {
        self.since
            .get(node)
            .is_some_and(|since| since.elapsed() >= HOLDER_GRACE)
    }

    /// Records that `node` proved `cid`.
    fn proved(&mut self, node: NodeId, cid: ContentId) {
        if self.proved.len() >= PROVED_PIECES_MAX && !self.proved.contains_key(&cid) {
            self.proved.clear();
        }
        self.proved.entry(cid).or_default().insert(node);
    }

    /// `node` answered without `cid` (or with it bad): a failure to report
    /// when it had proved it (a node ranked ahead of a piece's holder
    /// answers "missing" too, and never had it).
    fn failed(&mut self, node: NodeId, cid: ContentId) {
        if let Some(nodes) = self.proved.get_mut(&cid)
            && nodes.remove(&node)
        {
            self.failed.push((node, cid));
        }
    }

    /// The failures found since the last call: holders that had proved a
    /// piece and then answered without it, with it bad, or not at all past
    /// the grace.
    pub fn take_failures(&mut self) -> Vec<(NodeId, ContentId)> {
        std::mem::take(&mut self.failed)
    }
}

/// Whether a pass only counts lost pieces, audits, or also rebuilds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairMode {
    /// Count: a holder that cannot be reached counts as lost now (what a
    /// user asking about the bucket's health wants to know).
    Check,
    /// Audit and remember (an unreachable holder is lost only past
    /// [`HOLDER_GRACE`]); failures are reported, nothing is rebuilt: every
    /// member of the cluster audits, so a holder is judged even when the
    /// bucket's index replicas are among the lost.
    Audit,
    /// Audit and rebuild: the bucket's index replicas.
    Repair,
}

/// What a check of one holder found.
enum Held {
    /// It proved the piece.
    Good,
    /// It answered without it, or with it bad.
    Lost,
    /// It could not be asked: lost only past the grace.
    Unreachable,
}

/// One pass over a bucket: its cluster's members, what it does, what it found.
struct Pass<'a> {
    cluster: ClusterId,
    bucket: BucketId,
    nodes: Vec<PlacementNode>,
    down: &'a mut RepairMemory,
    mode: RepairMode,
    report: &'a mut RepairReport,
}

impl Pass<'_> {
    /// Whether an unreachable holder counts as lost now.
    fn lost_if_unreachable(&self, node: &NodeId) -> bool {
        self.mode == RepairMode::Check || self.down.gone(node)
    }
}

impl Inner {
    /// The seed this node's challenges are drawn from: the hash of the
    /// latest block and this node's id, so a holder cannot know its leaves
    /// before the block, and two auditors ask for different ones.
    fn audit_seed(&self) -> Hash32 {
        let tip = self.chain().state().tip().map_or(Hash32::ZERO, |t| t.hash);
        let mut input = b"peercloud audit seed v1".to_vec();
        input.extend_from_slice(&tip.0);
        input.extend_from_slice(&self.node_id().key().0);
        Hash32::of(&input)
    }

    /// Checks one holder of `cid` (of `len` bytes) with an audit.
    async fn check_piece(
        &self,
        node: &NodeId,
        cid: ContentId,
        len: u64,
        down: &mut RepairMemory,
    ) -> Held {
        let seed = self.audit_seed();
        match self.audit(node, cid, len, &seed).await {
            Ok(AuditOutcome::Passed { .. }) => {
                down.since.remove(node);
                down.proved(*node, cid);
                Held::Good
            }
            Ok(AuditOutcome::Failed(_)) | Err(AskError::Refused { .. }) => {
                down.since.remove(node);
                down.failed(*node, cid);
                Held::Lost
            }
            Err(AskError::Net { .. }) => {
                down.since.entry(*node).or_insert_with(Instant::now);
                if down.gone(node) {
                    // Gone past the grace: no answer is a failed audit,
                    // whether or not it had proved this piece before.
                    down.failed.push((*node, cid));
                }
                Held::Unreachable
            }
        }
    }

    /// One pass over `bucket`'s live objects: counts the pieces lost and,
    /// in [`RepairMode::Repair`], rebuilds them.
    pub async fn repair_bucket(
        self: &Arc<Self>,
        bucket: BucketId,
        down: &mut RepairMemory,
        mode: RepairMode,
    ) -> Result<RepairReport, super::IndexError> {
        let (cluster, nodes) = {
            let chain = self.chain();
            let state = chain.state();
            let record = state
                .bucket(&bucket)
                .ok_or(super::IndexError::UnknownBucket { bucket })?;
            (record.cluster, cluster_nodes(state, &record.cluster))
        };
        let mut report = RepairReport::default();
        let mut pass = Pass {
            cluster,
            bucket,
            nodes,
            down,
            mode,
            report: &mut report,
        };
        // A check covers the whole bucket; an audit or repair pass goes on
        // from where the last one stopped, at most OBJECTS_PER_PASS objects.
        let budget = match mode {
            RepairMode::Check => usize::MAX,
            RepairMode::Audit | RepairMode::Repair => OBJECTS_PER_PASS,
        };
        let mut after = match mode {
            RepairMode::Check => None,
            RepairMode::Audit | RepairMode::Repair => pass.down.cursor.remove(&bucket),
        };
        let page_size = (budget.min(super::INDEX_PAGE_MAX as usize)) as u32;
        loop {
            let page = self
                .index_list(bucket, String::new(), after.clone(), page_size)
                .await?;
            for entry in &page.entries {
                if let Some(object) = entry.body.object {
                    pass.report.objects += 1;
                    if object.inline {
                        // Kept by the index replicas with the entry, and
                        // replicated with it (read repair, the index pull).
                        continue;
                    }
                    self.repair_object(object.manifest, &mut pass).await;
                    // Filed as they come, not at the pass's end: a long
                    // pass would otherwise file them after the bill of
                    // their period ran, and they would pay nothing.
                    self.file_repair_receipts(&bucket, &mut pass.down.receipts)
                        .await;
                }
            }
            after = match (page.more, page.entries.last()) {
                (true, Some(last)) => Some(last.body.key.clone()),
                _ => None,
            };
            if after.is_none() || pass.report.objects >= budget {
                break;
            }
        }
        if let Some(key) = after
            && mode != RepairMode::Check
        {
            pass.down.cursor.insert(bucket, key);
        }
        Ok(report)
    }

    /// Checks and repairs one object: its manifest chunk, then its pieces.
    async fn repair_object(self: &Arc<Self>, manifest_cid: ContentId, pass: &mut Pass<'_>) {
        let bytes = match self.get_chunk(manifest_cid).await {
            Ok(bytes) => bytes,
            Err(err) => {
                pass.report
                    .unrepaired
                    .push(format!("manifest {manifest_cid}: {err}"));
                return;
            }
        };
        let Ok(manifest) = Manifest::decode(&bytes) else {
            pass.report
                .unrepaired
                .push(format!("manifest {manifest_cid} does not decode"));
            return;
        };
        self.repair_copies(manifest_cid, bytes.len() as u64, pass)
            .await;
        if manifest.parity_chunks.is_empty() {
            for (cid, size) in manifest.chunks.iter().zip(&manifest.chunk_sizes) {
                let len = manifest.stored_len(*size) as u64;
                self.repair_copies(*cid, len, pass).await;
            }
        } else {
            for index in 0..manifest.group_count() {
                if let Some(group) = manifest.group(index) {
                    self.repair_group(&manifest_cid, &manifest, &group, pass)
                        .await;
                }
            }
        }
    }

    /// A replicated chunk back to [`REPLICAS_DEFAULT`] good holders among
    /// its candidates in the cluster.
    async fn repair_copies(self: &Arc<Self>, cid: ContentId, len: u64, pass: &mut Pass<'_>) {
        pass.report.pieces += 1;
        let wanted = (REPLICAS_DEFAULT as usize).min(pass.nodes.len());
        let known = pass.down.proved.get(&cid).cloned().unwrap_or_default();
        let mut ranked: Vec<NodeId> = rank(&cid, &pass.nodes)
            .into_iter()
            .take(window(REPLICAS_DEFAULT as usize))
            .map(|n| n.node)
            .collect();
        // Its known holders first (stable: the ranking after them).
        ranked.sort_by_key(|n| !known.contains(n));
        let (mut good, mut free) = (Vec::new(), Vec::new());
        let mut waiting = 0;
        for node in &ranked {
            if good.len() >= wanted {
                break;
            }
            match self.check_piece(node, cid, len, pass.down).await {
                Held::Good => good.push(*node),
                Held::Unreachable if !pass.lost_if_unreachable(node) => waiting += 1,
                Held::Unreachable => {}
                Held::Lost => free.push(*node),
            }
        }
        // A holder within its grace still counts: nothing is rebuilt for it yet.
        let missing = wanted.saturating_sub(good.len() + waiting);
        if missing == 0 {
            return;
        }
        pass.report.lost += missing;
        if pass.mode != RepairMode::Repair {
            return;
        }
        let Some(source) = good.first() else {
            pass.report
                .unrepaired
                .push(format!("chunk {cid}: no good copy left to copy from"));
            return;
        };
        let bytes = match self.get_chunk(cid).await {
            Ok(bytes) => bytes,
            Err(err) => {
                pass.report
                    .unrepaired
                    .push(format!("chunk {cid} (good on {source}): {err}"));
                return;
            }
        };
        pass.report.bytes_read += bytes.len() as u64;
        // Candidates that lost it first, then those never asked.
        let targets: Vec<NodeId> = free
            .into_iter()
            .chain(
                ranked
                    .iter()
                    .copied()
                    .filter(|n| !good.contains(n) && !pass.down.since.contains_key(n)),
            )
            .collect();
        let mut placed = 0;
        let mut tried = BTreeSet::new();
        for target in targets {
            if placed == missing {
                break;
            }
            if !tried.insert(target) {
                continue;
            }
            let of = RepairOf {
                cluster: &pass.cluster,
                bucket: &pass.bucket,
            };
            match self
                .repair_put(&target, cid, bytes.clone(), &of, &mut pass.down.receipts)
                .await
            {
                Ok(()) => {
                    placed += 1;
                    pass.report.rebuilt += 1;
                    pass.report.bytes_written += bytes.len() as u64;
                }
                Err(err) => tracing::debug!(%cid, %target, %err, "repair put refused"),
            }
        }
        if placed < missing {
            pass.report.unrepaired.push(format!(
                "chunk {cid}: {placed} of {missing} lost copies placed again"
            ));
        }
    }

    /// Where each piece of a group is (its good holder), and which are lost.
    async fn locate_pieces(
        &self,
        pieces: &[(ContentId, usize)],
        pass: &mut Pass<'_>,
    ) -> (Vec<PlacementNode>, Vec<usize>) {
        let mut used: Vec<PlacementNode> = Vec::new();
        let mut lost: Vec<usize> = Vec::new();
        for (index, (cid, len)) in pieces.iter().enumerate() {
            pass.report.pieces += 1;
            let mut found = None;
            let mut waiting = false;
            // Where it was proved before first (no needless "missing" answers
            // from nodes ranked ahead of its holder), then the ranking.
            let known = pass.down.proved.get(cid).cloned().unwrap_or_default();
            let mut ranked = rank(cid, &pass.nodes);
            ranked.truncate(GROUP_PIECES_MAX);
            ranked.sort_by_key(|n| !known.contains(&n.node));
            for node in ranked {
                match self
                    .check_piece(&node.node, *cid, *len as u64, pass.down)
                    .await
                {
                    Held::Good => {
                        found = Some(node);
                        break;
                    }
                    Held::Unreachable if !pass.lost_if_unreachable(&node.node) => waiting = true,
                    Held::Unreachable | Held::Lost => {}
                }
            }
            match found {
                Some(node) => used.push(node),
                None if waiting => {}
                None => lost.push(index),
            }
        }
        (used, lost)
    }

    /// An erasure group's lost pieces rebuilt and put on members it does not use.
    async fn repair_group(
        self: &Arc<Self>,
        object: &ContentId,
        manifest: &Manifest,
        group: &ChunkGroup,
        pass: &mut Pass<'_>,
    ) {
        let lens = manifest.group_lens(group);
        let shard = erasure::shard_bytes(&lens);
        let pieces: Vec<(ContentId, usize)> = manifest.chunks[group.data.clone()]
            .iter()
            .copied()
            .zip(lens.iter().copied())
            .chain(
                manifest.parity_chunks[group.parity.clone()]
                    .iter()
                    .map(|cid| (*cid, shard)),
            )
            .collect();
        let (mut used, lost) = self.locate_pieces(&pieces, pass).await;
        if lost.is_empty() {
            return;
        }
        pass.report.lost += lost.len();
        if pass.mode != RepairMode::Repair {
            return;
        }
        let store = NetStore::in_cluster(
            self.clone(),
            tokio::runtime::Handle::current(),
            pass.cluster,
        );
        let failed: Vec<(usize, StoreError)> = lost
            .iter()
            .filter(|&&i| i < lens.len())
            .map(|&i| {
                (
                    group.data.start + i,
                    StoreError::NotFound { cid: pieces[i].0 },
                )
            })
            .collect();
        let (object, owned_manifest, owned_group) = (*object, manifest.clone(), group.clone());
        let recovered = tokio::task::spawn_blocking(move || {
            erasure::recover_group(&store, &object, &owned_manifest, &owned_group, &failed)
        })
        .await;
        let data = match recovered {
            Ok(Ok(data)) => data,
            Ok(Err(err)) => {
                pass.report.unrepaired.push(err.to_string());
                return;
            }
            Err(err) => {
                pass.report
                    .unrepaired
                    .push(format!("recovery task failed: {err}"));
                return;
            }
        };
        pass.report.bytes_read += (lens.len() * shard) as u64;
        let slices: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let parity = match erasure::encode(&slices, pieces.len() - lens.len()) {
            Ok(parity) => parity,
            Err(err) => {
                pass.report.unrepaired.push(err.to_string());
                return;
            }
        };
        let rebuilt: Vec<Vec<u8>> = data.into_iter().chain(parity).collect();
        for index in lost {
            let (cid, _) = pieces[index];
            let bytes = &rebuilt[index];
            if ContentId::of(bytes) != cid {
                pass.report
                    .unrepaired
                    .push(format!("piece {index} ({cid}) rebuilt to other bytes"));
                continue;
            }
            match self.place_piece(cid, bytes, &mut used, pass).await {
                true => {
                    pass.report.rebuilt += 1;
                    pass.report.bytes_written += bytes.len() as u64;
                }
                false => pass.report.unrepaired.push(format!(
                    "piece {index} of group {} ({cid}): no member the group does not use took it",
                    group.index
                )),
            }
        }
    }

    /// Puts a rebuilt piece on the best member the group does not use
    /// (falling through refusals); records it in `used`. When every live
    /// member already holds a piece of the group (a cluster shrunk below the
    /// group's width), it goes on the best-ranked live member anyway: the
    /// group is whole again against lost pieces, though a lost node may now
    /// cost it two.
    async fn place_piece(
        &self,
        cid: ContentId,
        bytes: &[u8],
        used: &mut Vec<PlacementNode>,
        pass: &mut Pass<'_>,
    ) -> bool {
        let mut excluded = used.clone();
        let mut targets = Vec::new();
        while let Some(target) = group_candidate(&cid, &pass.nodes, &excluded) {
            excluded.push(target);
            targets.push(target);
        }
        targets.extend(rank(&cid, &pass.nodes).into_iter().take(GROUP_PIECES_MAX));
        let mut tried = BTreeSet::new();
        for target in targets {
            if pass.down.since.contains_key(&target.node) || !tried.insert(target.node) {
                continue;
            }
            let of = RepairOf {
                cluster: &pass.cluster,
                bucket: &pass.bucket,
            };
            match self
                .repair_put(
                    &target.node,
                    cid,
                    bytes.to_vec(),
                    &of,
                    &mut pass.down.receipts,
                )
                .await
            {
                Ok(()) => {
                    used.push(target);
                    return true;
                }
                Err(err) => {
                    tracing::debug!(%cid, target = %target.node, %err, "repair put refused")
                }
            }
        }
        false
    }
}
