//! The lease auction on the network: a provider's sealed bid, and the
//! user's node gathering them.
//!
//! A bid goes to the requesting node only (never gossiped): it is the
//! node's floor for the request's resources and period (its price sheet)
//! times its utilisation surge, and only when it is at most the reserve.

use std::sync::Arc;
use std::time::Duration;

use peercloud_api::ErrorCode;
use peercloud_market::{PricePolicy, lease_quote};
use peercloud_net::{GossipTopic, Protocol};
use peercloud_space::SpaceLimits;
use peercloud_types::{LeaseOffer, LeaseRequest, NodeId, Resources, Signed, SpaceKind};
use tokio::sync::mpsc;

use super::lock;
use crate::daemon::requester::OFFER_WINDOW_MS_MAX;
use crate::daemon::{Inner, now_ms, utilisation_bps};
use crate::wire::Message;

/// A bid is good this long after the request's offer window closes: time
/// for the user to sign and the award to land.
const BID_VALID_MS: u64 = 60_000;
/// Bids buffered per request.
const BIDS_CHANNEL: usize = 256;

/// Why the user's node could not gather bids.
#[derive(Debug, thiserror::Error)]
pub enum LeaseOfferError {
    /// The offer window is too long or already over.
    #[error("the offer window ends at {until_ms} ms: it must be in the next {max_ms} ms")]
    Window {
        /// When it ends.
        until_ms: u64,
        /// The longest allowed.
        max_ms: u64,
    },
    /// The request could not be broadcast.
    #[error("the request could not be broadcast: {0}")]
    Net(String),
}

/// What this node has free for a new lease: its configured resources less
/// what its leases not yet over hold.
fn free_for_leases(inner: &Inner) -> Resources {
    let node = inner.node_id();
    let total = inner.config.resources;
    let chain = inner.chain();
    chain
        .state()
        .leases()
        .filter(|(_, l)| l.node == node && !l.status.is_final())
        .filter(|(_, l)| !matches!(l.status, peercloud_ledger::LeaseStatus::Closed { .. }))
        .fold(total, |free, (_, l)| {
            free.checked_sub(&l.resources).unwrap_or_default()
        })
}

/// This node's bid for `request`, or why it makes none.
fn bid_for(inner: &Inner, request: &LeaseRequest) -> Result<LeaseOffer, String> {
    match request.kind {
        SpaceKind::Container if inner.leases.engine.is_none() => {
            return Err("this node has no container engine".into());
        }
        SpaceKind::Container => {}
        SpaceKind::WasmService => return Err("this node offers no Wasm services yet".into()),
    }
    SpaceLimits::from_resources(&request.resources).map_err(|e| e.to_string())?;
    let (location, owner, reputation) = {
        let chain = inner.chain();
        let record = chain
            .state()
            .node(&inner.node_id())
            .ok_or("this node is not registered")?
            .clone();
        (record.location, record.owner, record.reputation)
    };
    if !request.admits(&location, &owner, reputation) {
        return Err("the request's filters exclude this node".into());
    }
    if !request.resources.fits_within(&free_for_leases(inner)) {
        return Err("not enough free capacity".into());
    }
    let policy = PricePolicy::new(inner.config.lease_prices);
    let bid = lease_quote(
        &policy,
        &request.resources,
        request.period_ms,
        utilisation_bps(inner),
    )
    .ok_or("the bid overflows")?;
    if bid > request.max_price_per_period {
        return Err(format!(
            "the bid {bid} is above the reserve {}",
            request.max_price_per_period
        ));
    }
    Ok(LeaseOffer {
        request: request.digest(),
        node: inner.node_id(),
        price_per_period: bid,
        valid_until_ms: request.offers_until_ms.saturating_add(BID_VALID_MS),
    })
}

/// A provider's answer to a gossiped lease request: a sealed bid to the
/// requester, or nothing.
pub(crate) async fn on_lease_request(inner: Arc<Inner>, request: LeaseRequest, requester: NodeId) {
    let offer = match bid_for(&inner, &request) {
        Ok(offer) => offer,
        Err(reason) => {
            tracing::debug!(%reason, "no bid for a lease request");
            return;
        }
    };
    let signed = Signed::new(offer, &inner.node_key);
    if requester == inner.node_id() {
        on_lease_offer(&inner, signed);
        return;
    }
    if let Err(error) = inner
        .ask(&requester, Protocol::Offer, &Message::LeaseOffer(signed))
        .await
    {
        tracing::debug!(%error, "lease bid not delivered");
    }
}

/// A bid reaching the node that gathers for its request.
pub(crate) fn on_lease_offer(inner: &Inner, offer: Signed<LeaseOffer>) -> Message {
    if offer.signer != *offer.body.node.key() || offer.verify().is_err() {
        return Message::error(
            ErrorCode::BadSignature,
            "a lease bid not signed by its node",
        );
    }
    // Only bids the ledger could take: a registered node whose owner has
    // the stake to serve (one it refuses would refuse the whole award).
    let bidder_ok = {
        let chain = inner.chain();
        let state = chain.state();
        state
            .node(&offer.body.node)
            .is_some_and(|n| state.stake(&n.owner) >= state.params().stake_min_to_serve)
    };
    if !bidder_ok {
        return Message::error(
            ErrorCode::NotRegistered,
            "a lease bid from a node that is not registered and staked",
        );
    }
    let sender = lock(&inner.leases.collectors)
        .get(&offer.body.request)
        .cloned();
    match sender.map(|s| s.try_send(offer).is_ok()) {
        Some(true) => Message::Ack,
        _ => Message::error(
            ErrorCode::NotFound,
            "no bids are being gathered for that request",
        ),
    }
}

impl Inner {
    /// Broadcasts `request` and gathers the bids that come until its offer
    /// window closes (or every other registered node answered).
    pub async fn gather_lease_offers(
        self: &Arc<Self>,
        request: &LeaseRequest,
    ) -> Result<Vec<Signed<LeaseOffer>>, LeaseOfferError> {
        let now = now_ms();
        if request.offers_until_ms <= now || request.offers_until_ms > now + OFFER_WINDOW_MS_MAX {
            return Err(LeaseOfferError::Window {
                until_ms: request.offers_until_ms,
                max_ms: OFFER_WINDOW_MS_MAX,
            });
        }
        let digest = request.digest();
        let providers = self.chain().state().nodes().count();
        let (tx, mut rx) = mpsc::channel(BIDS_CHANNEL);
        lock(&self.leases.collectors).insert(digest, tx);
        let message = Message::LeaseRequest {
            request: request.clone(),
            requester: self.node_id(),
        };
        let published = self.publish(GossipTopic::CapacityRequests, &message).await;
        if !self.is_validator() {
            tokio::spawn(on_lease_request(
                self.clone(),
                request.clone(),
                self.node_id(),
            ));
        }
        if let Err(e) = published
            && providers <= 1
        {
            lock(&self.leases.collectors).remove(&digest);
            return Err(LeaseOfferError::Net(e.to_string()));
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(request.offers_until_ms - now);
        let mut offers: Vec<Signed<LeaseOffer>> = Vec::new();
        while let Ok(Some(offer)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            if !offers.iter().any(|o| o.body.node == offer.body.node) {
                offers.push(offer);
            }
            if offers.len() >= providers {
                break;
            }
        }
        lock(&self.leases.collectors).remove(&digest);
        Ok(offers)
    }
}
