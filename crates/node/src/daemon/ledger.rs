//! The node's ledger agent: transactions in, blocks out.
//!
//! - Submitting: a transaction is checked against this node's tip first (a
//!   refusal names the ledger's reason at once), then handed to the
//!   validator — its mempool when this node is the validator, the
//!   transactions topic otherwise.
//! - Validating: the validator makes a block as soon as transactions wait
//!   (no fixed block time), commits it with an fsync and gossips it.
//! - Following: every other node applies blocks in order, buffering a few
//!   that arrive early and asking a peer for the ones it missed; a periodic
//!   sync catches a node up after a restart or a partition.
//! - Recording: each block this node commits has this node's storage
//!   payments recorded (`earnings.rs`) under the chain lock, before waiters
//!   hear of it.

use std::sync::Arc;
use std::time::Duration;

use peercloud_api::ErrorCode;
use peercloud_ledger::block::BLOCK_TXS_MAX;
use peercloud_ledger::{Block, State, TxError, TxKind, registration_proof};
use peercloud_net::{GossipTopic, PeerId, Protocol, peer_id_of};
use peercloud_types::{Amount, Keypair, NodeId, Signed};
use tokio::sync::{broadcast, mpsc};

use super::held::Held;
use super::{Inner, now_ms};
use crate::chain::{Committed, Refused};
use crate::wire::{Message, SYNC_BLOCKS_MAX};

/// Candidate transactions the validator queues; a full queue drops gossiped
/// transactions (never stalls the event loop) and makes local submitters
/// wait, never grows.
pub(crate) const MEMPOOL_TXS_MAX: usize = 8_192;
/// Pending sync triggers.
pub(crate) const SYNC_TRIGGERS: usize = 64;
/// How often a node asks for blocks it may have missed.
const SYNC_INTERVAL: Duration = Duration::from_secs(2);
/// Blocks that arrived ahead of the tip (each signed by the validator, see
/// the gossip check), kept until the gap is filled: 64 blocks of at most
/// 8 MiB; past that the sync fetches them in order.
const EARLY_BLOCKS_MAX: usize = 64;
/// How long a submitter waits for its transaction to be in a block.
pub const INCLUSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting submitter publishes its transaction again: blocks
/// come within milliseconds when the validator is reachable, so a few
/// seconds without one means the gossip was lost.
const TX_RESEND_INTERVAL: Duration = Duration::from_secs(3);

/// Why a transaction was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The ledger would refuse it.
    #[error("transaction refused: {0}")]
    Refused(#[from] TxError),
    /// It could not reach the validator.
    #[error("cannot reach the validator: {0}")]
    Net(String),
    /// It was not in a block in time.
    #[error("transaction {hash} was not in a block within {timeout_s} s")]
    Timeout {
        /// Its hash.
        hash: String,
        /// How long was waited.
        timeout_s: u64,
    },
}

/// Why the sync task should look for blocks now.
#[derive(Debug)]
pub(crate) enum SyncTrigger {
    /// A peer showed a block beyond our tip, or just connected.
    From(PeerId),
}

impl Inner {
    /// Checks and forwards `tx`; with `wait`, returns the block that holds it.
    pub async fn submit(
        &self,
        tx: Signed<peercloud_ledger::Tx>,
        wait: bool,
    ) -> Result<Option<Arc<Committed>>, SubmitError> {
        {
            let mut chain = self.chain();
            match chain.check(&tx, now_ms()) {
                Ok(_) => {}
                // A nonce ahead of the tip: an earlier transaction of the same
                // signer is still on its way. The validator holds it until
                // then, if the signer can pay its fee.
                Err(TxError::BadNonce { expected, got }) if got > expected => {
                    super::held::can_pay_fee(chain.state(), &tx)?;
                }
                Err(e) => return Err(SubmitError::Refused(e)),
            }
        }
        let hash = tx.hash();
        let mut blocks = self.committed.subscribe();
        let gossip = Message::Tx(tx.clone());
        if let Some(mempool) = &self.mempool {
            mempool
                .send(tx)
                .await
                .map_err(|_| SubmitError::Net("the validator loop stopped".into()))?;
        } else {
            self.publish(GossipTopic::Transactions, &gossip)
                .await
                .map_err(|e| SubmitError::Net(e.to_string()))?;
        }
        if !wait {
            return Ok(None);
        }
        // Gossip is not a log: a transaction published while the validator
        // was unreachable is gone. Publish it again until it is in a block
        // (each publication is a new gossip message; the ledger's nonce
        // makes a second copy harmless).
        let deadline = tokio::time::Instant::now() + INCLUSION_TIMEOUT;
        let mut resend = tokio::time::Instant::now() + TX_RESEND_INTERVAL;
        loop {
            let wake = if self.mempool.is_some() {
                deadline
            } else {
                resend.min(deadline)
            };
            match tokio::time::timeout_at(wake, blocks.recv()).await {
                Ok(Ok(committed)) if committed.tx_hashes.contains(&hash) => {
                    return Ok(Some(committed));
                }
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%hash, "transaction not in a block yet; publishing it again");
                    if let Err(e) = self.publish(GossipTopic::Transactions, &gossip).await {
                        tracing::debug!(%hash, %e, "republish failed");
                    }
                    resend = tokio::time::Instant::now() + TX_RESEND_INTERVAL;
                }
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                    return Err(SubmitError::Timeout {
                        hash: hash.to_string(),
                        timeout_s: INCLUSION_TIMEOUT.as_secs(),
                    });
                }
            }
        }
    }

    /// Signs `kind` with one of this node's keys at its next nonce and submits it.
    pub async fn sign_and_submit(
        &self,
        key: &Keypair,
        kind: TxKind,
        wait: bool,
    ) -> Result<Option<Arc<Committed>>, SubmitError> {
        let signer = key.public();
        // The node pays the ledger's minimum fee, read from its params.
        let (chain, fee) = {
            let chain = self.chain();
            let state = chain.state();
            (state.chain_id(), state.params().min_fee)
        };
        let nonce = {
            let chain_next = self.chain().state().next_nonce(&signer);
            #[allow(clippy::expect_used)]
            let mut nonces = self.nonces.lock().expect("nonce lock poisoned");
            let next = nonces.entry(signer).or_insert(chain_next);
            *next = (*next).max(chain_next);
            let nonce = *next;
            *next += 1;
            nonce
        };
        let tx = Signed::new(
            peercloud_ledger::Tx {
                chain,
                nonce,
                fee,
                kind,
            },
            key,
        );
        let outcome = self.submit(tx, wait).await;
        if outcome.is_err() {
            // Forget the local count: the next transaction re-reads the chain.
            #[allow(clippy::expect_used)]
            self.nonces
                .lock()
                .expect("nonce lock poisoned")
                .remove(&signer);
        }
        outcome
    }

    /// Broadcasts a block this node committed to local waiters.
    fn announce(&self, committed: Committed) {
        let me = self.node_id();
        let won = committed.events.iter().any(|e| {
            matches!(e, peercloud_ledger::Event::JobAwarded { nodes, .. } if nodes.contains(&me))
        });
        if won {
            #[allow(clippy::expect_used)]
            self.recent_load
                .lock()
                .expect("load lock poisoned")
                .add(super::LOAD_PER_AWARD_BPS, now_ms());
        }
        let _ = self.committed.send(Arc::new(committed));
    }
}

/// The validator's gossip handler: queue the transaction.
pub(crate) fn on_gossip_tx(inner: &Inner, tx: Signed<peercloud_ledger::Tx>) {
    if let Some(mempool) = &inner.mempool {
        offer_to_mempool(mempool, tx, &inner.mempool_dropped);
    }
}

/// What became of a gossiped transaction offered to the mempool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered {
    /// Queued for the next block.
    Queued,
    /// The mempool was full: dropped (its submitter publishes it again
    /// every [`TX_RESEND_INTERVAL`] until it is in a block).
    Dropped,
    /// The validator loop has stopped.
    Closed,
}

/// Queues `tx` for the validator without waiting: the node's one event loop
/// serves every protocol, so a full mempool drops the gossiped transaction
/// (counted in `dropped`; logged on the 1st, 2nd, 4th, 8th… drop) rather
/// than stalling blocks, offers and chunk requests behind it.
pub(crate) fn offer_to_mempool(
    mempool: &mpsc::Sender<Signed<peercloud_ledger::Tx>>,
    tx: Signed<peercloud_ledger::Tx>,
    dropped: &std::sync::atomic::AtomicU64,
) -> Offered {
    match mempool.try_send(tx) {
        Ok(()) => Offered::Queued,
        Err(mpsc::error::TrySendError::Full(_)) => {
            let count = dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if count.is_power_of_two() {
                tracing::warn!(
                    dropped = count,
                    capacity = MEMPOOL_TXS_MAX,
                    "mempool full: gossiped transaction dropped (its submitter resends it)"
                );
            }
            Offered::Dropped
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::error!("validator loop stopped; transaction dropped");
            Offered::Closed
        }
    }
}

/// Makes blocks as soon as transactions wait, commits and gossips them. A
/// batch in which nothing passes makes no block; transactions ahead of their
/// signer's nonce wait in the [`Held`] queue until their turn.
pub(crate) async fn validator_loop(
    inner: Arc<Inner>,
    mut mempool: mpsc::Receiver<Signed<peercloud_ledger::Tx>>,
) {
    let mut held = Held::default();
    loop {
        let Some(first) = mempool.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < BLOCK_TXS_MAX {
            match mempool.try_recv() {
                Ok(tx) => batch.push(tx),
                Err(_) => break,
            }
        }
        loop {
            let now = now_ms();
            let outcome = {
                let mut chain = inner.chain();
                let room = BLOCK_TXS_MAX - batch.len();
                batch.extend(held.take_ready(chain.state(), now, room));
                let outcome = chain.propose(std::mem::take(&mut batch), now, &inner.node_key);
                if let Ok((committed, rejected)) = &outcome {
                    if let Some(committed) = committed {
                        inner.record_earnings(committed);
                    }
                    hold_or_log(&mut held, chain.state(), rejected, now);
                }
                outcome
            };
            let committed = match outcome {
                Ok((Some(committed), _)) => committed,
                Ok((None, _)) => break,
                Err(e) => {
                    tracing::error!(%e, "cannot make a block");
                    break;
                }
            };
            let block = committed.block.clone();
            tracing::debug!(
                height = block.height(),
                txs = block.txs.len(),
                held = held.len(),
                "block committed"
            );
            inner.announce(committed);
            if let Err(e) = inner
                .publish(GossipTopic::Blocks, &Message::Block(block))
                .await
            {
                tracing::warn!(%e, "block not gossiped (followers will sync)");
            }
            // Held transactions whose turn has come go into the next block.
            if held.is_empty() {
                break;
            }
        }
    }
}

/// Holds the refused transactions whose only fault is a nonce ahead of the
/// signer's; logs the others.
fn hold_or_log(held: &mut Held, state: &State, refused: &Refused, now: u64) {
    for (tx, why) in refused {
        let signer = peercloud_types::AccountId(tx.signer);
        match why {
            TxError::BadNonce { expected, got } if got > expected => {
                if let Err(e) = held.hold(state, tx.clone(), now) {
                    tracing::info!(%signer, nonce = got, %e, "transaction not held");
                }
            }
            why => tracing::info!(%signer, %why, "transaction refused"),
        }
    }
}

/// A block from gossip: apply it if it is next, keep it if early.
pub(crate) async fn on_block(
    inner: &Arc<Inner>,
    block: Block,
    source: Option<PeerId>,
    sync: &mpsc::Sender<SyncTrigger>,
) {
    if inner.is_validator() {
        return;
    }
    let next = inner.chain().next_height();
    if block.height() < next {
        return;
    }
    if block.height() > next {
        early_blocks(inner, Some(block));
        if let Some(peer) = source {
            let _ = sync.try_send(SyncTrigger::From(peer));
        }
        return;
    }
    apply_in_order(inner, vec![block]);
    early_blocks(inner, None);
}

/// Keeps `block` (if any) and applies every kept block that is now next.
fn early_blocks(inner: &Arc<Inner>, block: Option<Block>) {
    #[allow(clippy::expect_used)]
    let mut early = inner.early.lock().expect("early block lock poisoned");
    if let Some(block) = block
        && early.len() < EARLY_BLOCKS_MAX
    {
        // The first block kept at a height stays: both are the validator's.
        early.entry(block.height()).or_insert(block);
    }
    let next = inner.chain().next_height();
    early.retain(|h, _| *h >= next);
    let mut ready = Vec::new();
    let mut want = next;
    while let Some(block) = early.remove(&want) {
        ready.push(block);
        want += 1;
    }
    drop(early);
    apply_in_order(inner, ready);
}

/// Applies consecutive blocks; stops at the first refused one.
fn apply_in_order(inner: &Inner, blocks: Vec<Block>) -> usize {
    let mut applied = 0;
    for block in blocks {
        let height = block.height();
        let outcome = {
            let mut chain = inner.chain();
            if height != chain.next_height() {
                continue;
            }
            let outcome = chain.apply(&block);
            if let Ok(committed) = &outcome {
                inner.record_earnings(committed);
            }
            outcome
        };
        match outcome {
            Ok(committed) => {
                applied += 1;
                inner.announce(committed);
            }
            Err(e) => {
                tracing::error!(height, %e, "block refused");
                break;
            }
        }
    }
    applied
}

/// Answers a peer's sync request from the block log.
pub(crate) fn on_sync_request(inner: &Inner, from: u64, max: u32) -> Message {
    let max = max.min(SYNC_BLOCKS_MAX);
    // Leave room for the message's own framing.
    let budget = Protocol::BlockSync.response_bytes_max() - 1024;
    match inner.chain().blocks_from(from, max, budget) {
        Ok(blocks) => Message::Blocks(blocks),
        Err(e) => Message::error(ErrorCode::Internal, e.to_string()),
    }
}

/// Asks peers for blocks past the tip: on start, when triggered, and every
/// [`SYNC_INTERVAL`].
pub(crate) async fn sync_loop(inner: Arc<Inner>, mut triggers: mpsc::Receiver<SyncTrigger>) {
    if inner.is_validator() {
        return;
    }
    let validator = NodeId(inner.chain().state().params().validator);
    loop {
        let hint = match tokio::time::timeout(SYNC_INTERVAL, triggers.recv()).await {
            Ok(Some(SyncTrigger::From(peer))) => Some(peer),
            Ok(None) => return,
            Err(_) => None,
        };
        let mut peers = vec![peer_id_of(&validator)];
        if let Some(peer) = hint
            && peer != peers[0]
        {
            peers.push(peer);
        }
        for peer in peers {
            if sync_from(&inner, peer).await {
                break;
            }
        }
    }
}

/// Pulls blocks from `peer` until it has no more; whether it answered.
async fn sync_from(inner: &Arc<Inner>, peer: PeerId) -> bool {
    loop {
        let from = inner.chain().next_height();
        let request = Message::SyncRequest {
            from,
            max: SYNC_BLOCKS_MAX,
        };
        let answer = inner
            .net
            .request(peer, Protocol::BlockSync, request.to_bytes())
            .await;
        let blocks = match answer.map(|bytes| Message::from_bytes(&bytes)) {
            Ok(Ok(Message::Blocks(blocks))) => blocks,
            Ok(other) => {
                tracing::debug!(%peer, ?other, "sync answer not blocks");
                return false;
            }
            Err(e) => {
                tracing::debug!(%peer, %e, "sync request failed");
                return false;
            }
        };
        if blocks.is_empty() {
            return true;
        }
        let count = blocks.len();
        let applied = apply_in_order(inner, blocks);
        if applied == 0 || applied < count {
            return true;
        }
    }
}

/// Registers this node under its owner and stakes behind it, unless the
/// ledger already has it; retried until it lands.
pub(crate) async fn register(inner: Arc<Inner>) {
    let mut attempt = 0u32;
    while !inner.registered() {
        attempt += 1;
        let owner = inner.owner_key.clone();
        let kind = TxKind::RegisterNode {
            node: inner.node_id(),
            proof: registration_proof(&inner.node_key, &owner.account_id()),
            resources: inner.config.resources,
            location: inner.config.location.clone(),
            prices: inner.config.prices,
        };
        let registered = inner.sign_and_submit(&owner, kind, false).await;
        let staked = {
            let (stake, min) = {
                let chain = inner.chain();
                let state = chain.state();
                (
                    state.stake(&owner.account_id()),
                    state.params().stake_min_to_serve,
                )
            };
            if stake < min {
                // What the farmer chose (never less than the network asks);
                // by default the minimum, so the rest stays the farmer's to move.
                let wanted = inner.config.stake.unwrap_or(min).max(min);
                let amount = wanted.checked_sub(stake).unwrap_or(Amount::ZERO);
                inner
                    .sign_and_submit(&owner, TxKind::Stake { amount }, true)
                    .await
                    .map(|_| ())
            } else {
                Ok(())
            }
        };
        match (registered, staked) {
            (Ok(_), Ok(())) if inner.registered() => break,
            (r, s) => {
                if attempt % 10 == 1 {
                    tracing::info!(?r, ?s, "registration not on the ledger yet; retrying");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    tracing::info!(node = %inner.node_id(), "registered on the ledger");
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use peercloud_ledger::Tx;
    use peercloud_types::Hash32;

    use super::*;

    fn transfer(nonce: u64) -> Signed<Tx> {
        let key = Keypair::from_seed(&[7; 32]);
        let tx = Tx {
            chain: Hash32::of(b"test chain"),
            nonce,
            fee: Amount::ZERO,
            kind: TxKind::Transfer {
                to: Keypair::from_seed(&[8; 32]).account_id(),
                amount: Amount::ZERO,
            },
        };
        Signed::new(tx, &key)
    }

    #[tokio::test]
    async fn a_full_mempool_drops_gossip_at_once_and_never_waits() {
        let (mempool, mut queued) = mpsc::channel(2);
        let dropped = AtomicU64::new(0);
        assert_eq!(
            offer_to_mempool(&mempool, transfer(1), &dropped),
            Offered::Queued
        );
        assert_eq!(
            offer_to_mempool(&mempool, transfer(2), &dropped),
            Offered::Queued
        );
        // Full: an awaiting send would stall the caller (the event loop)
        // until the validator drained it; the offer returns at once.
        assert_eq!(
            offer_to_mempool(&mempool, transfer(3), &dropped),
            Offered::Dropped
        );
        assert_eq!(dropped.load(Ordering::Relaxed), 1);
        assert_eq!(queued.recv().await.map(|tx| tx.body.nonce), Some(1));
        assert_eq!(
            offer_to_mempool(&mempool, transfer(4), &dropped),
            Offered::Queued,
            "room again once the validator takes one"
        );
        drop(queued);
        assert_eq!(
            offer_to_mempool(&mempool, transfer(5), &dropped),
            Offered::Closed
        );
    }
}
