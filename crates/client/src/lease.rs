//! The user's side of a lease, written once over [`NodeApi`]: ask for
//! capacity, take the sealed bids, sign the award, wait for the space, verify
//! access for real (a command echoing a fresh secret through the space), and
//! only then activate, which starts payment. Then commands, extensions and
//! the close.
//!
//! ```text
//!  LeaseAsk ─► lease_offers (node gossips, bids come sealed to it) ─► award (lowest bid,
//!  first losing bid's price) ─► OpenLease (deposit locked) ─► echo a secret through the
//!  space until it answers ─► ActivateLease ─► LeaseOpened
//! ```

use std::time::{Duration, Instant};

use peercloud_api::{SpaceCommandResponse, TxReceipt};
use peercloud_ledger::TxKind;
use peercloud_types::{
    Amount, Keypair, LeaseFilters, LeaseId, LeaseOffer, LeaseRequest, NodeId, Resources, Signed,
    SpaceCommand, SpaceKind, clock::now_ms, lease_award,
};

use crate::{ClientError, NodeApi};

/// A signed command is valid this long.
const COMMAND_VALID_MS: u64 = 60_000;
/// Between two tries of the access check while the space is being made.
const READY_POLL: Duration = Duration::from_millis(200);

/// What a user asks for.
#[derive(Debug, Clone)]
pub struct LeaseAsk {
    /// The kind of space.
    pub kind: SpaceKind,
    /// What it gets.
    pub resources: Resources,
    /// The billing period, ms.
    pub period_ms: u64,
    /// How many periods; `None` is open-ended.
    pub periods: Option<u64>,
    /// The most paid per period (the auction's reserve).
    pub max_price_per_period: Amount,
    /// Which nodes may bid.
    pub filters: LeaseFilters,
    /// How long bids are gathered, ms.
    pub offer_window_ms: u64,
    /// How long the node has to make the space (and the user to verify it).
    pub activate_within_ms: u64,
    /// Periods an open-ended lease is funded for at first.
    pub fund_periods: u64,
}

/// How long each step of opening took.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeaseTimings {
    /// Gathering the bids.
    pub offers: Duration,
    /// The award on the ledger.
    pub award: Duration,
    /// From the award to the space answering the access check.
    pub ready: Duration,
    /// The activation on the ledger.
    pub activate: Duration,
}

impl LeaseTimings {
    /// Request to verified access and activation.
    pub fn total(&self) -> Duration {
        self.offers + self.award + self.ready + self.activate
    }
}

/// A lease opened, verified and activated.
#[derive(Debug, Clone)]
pub struct LeaseOpened {
    /// The lease.
    pub lease: LeaseId,
    /// The node that won it.
    pub node: NodeId,
    /// The clearing price per period.
    pub price_per_period: Amount,
    /// Locked at the award.
    pub deposit: Amount,
    /// Bids the auction weighed.
    pub bids: usize,
    /// How long each step took.
    pub timings: LeaseTimings,
}

/// Why a lease could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LeaseFlowError {
    /// No node bid at or under the reserve.
    #[error(
        "no node bid for this {kind} lease at or under {reserve} per period ({received} bids \
         came; raise --max-price, ask for less, or widen the filters; no node offers \
         wasm-service spaces yet)"
    )]
    NoOffers {
        /// The kind of space asked for.
        kind: SpaceKind,
        /// The reserve.
        reserve: Amount,
        /// Bids received (before checking them).
        received: usize,
    },
    /// The space never answered the access check before the window closed;
    /// the lease stays pending and its deposit comes back when it is cancelled.
    #[error("{lease}: the space did not answer the access check within {waited:?} ({last})")]
    NotReady {
        /// The lease.
        lease: LeaseId,
        /// How long it was tried.
        waited: Duration,
        /// The last answer.
        last: String,
    },
    /// The node or the ledger refused a step.
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // A failing system RNG leaves the clock's nanoseconds: unique enough
    // for a salt or a command nonce, which need no secrecy.
    if getrandom::fill(&mut bytes).is_err() {
        return u64::from(
            std::time::SystemTime::now()
                .elapsed()
                .map_or(0, |d| d.subsec_nanos()),
        ) ^ now_ms();
    }
    u64::from_le_bytes(bytes)
}

/// Signs `kind` with the wallet's next nonce and submits it, waiting for
/// its block; returns the receipt and the nonce used.
fn submit(
    node: &impl NodeApi,
    wallet: &Keypair,
    kind: TxKind,
) -> Result<(TxReceipt, u64), ClientError> {
    crate::tx::submit_signed_at(node, wallet, kind, true)
}

/// The request `ask` makes for `wallet`'s account.
pub fn request_of(wallet: &Keypair, ask: &LeaseAsk) -> LeaseRequest {
    LeaseRequest {
        user: wallet.account_id(),
        salt: random_u64(),
        kind: ask.kind,
        resources: ask.resources,
        period_ms: ask.period_ms,
        periods: ask.periods,
        max_price_per_period: ask.max_price_per_period,
        filters: ask.filters.clone(),
        offers_until_ms: now_ms() + ask.offer_window_ms,
        activate_within_ms: ask.activate_within_ms,
    }
}

/// Opens a lease: bids, award, the space's access check, activation.
pub fn open_lease(
    node: &impl NodeApi,
    wallet: &Keypair,
    ask: &LeaseAsk,
) -> Result<LeaseOpened, LeaseFlowError> {
    let started = Instant::now();
    let request = request_of(wallet, ask);
    let answered = node.lease_offers(&request)?;
    let received = answered.offers.len();
    let digest = request.digest();
    let offers: Vec<Signed<LeaseOffer>> = answered
        .offers
        .into_iter()
        .map(|o| o.offer.0)
        .filter(|o| {
            o.body.request == digest
                && o.body.price_per_period <= ask.max_price_per_period
                && o.signer == *o.body.node.key()
                && o.verify().is_ok()
        })
        .collect();
    let bids: Vec<(NodeId, Amount)> = offers
        .iter()
        .map(|o| (o.body.node, o.body.price_per_period))
        .collect();
    let (winner, price) =
        lease_award(&bids, ask.max_price_per_period).ok_or(LeaseFlowError::NoOffers {
            kind: ask.kind,
            reserve: ask.max_price_per_period,
            received,
        })?;
    let winner = bids[winner].0;
    let funded = ask.periods.unwrap_or(ask.fund_periods.max(1));
    let deposit = price
        .checked_mul(u128::from(funded))
        .unwrap_or(Amount::ZERO)
        .max(Amount::from_base_units(1));
    let offers_done = started.elapsed();
    let kind = TxKind::OpenLease {
        request,
        offers,
        deposit,
    };
    let (_, nonce) = submit(node, wallet, kind)?;
    let lease = LeaseId::derive(&wallet.account_id(), nonce);
    let awarded = started.elapsed();
    let deadline = Instant::now() + Duration::from_millis(ask.activate_within_ms);
    let mut last;
    loop {
        let secret = random_u64().to_string();
        match run(
            node,
            wallet,
            lease,
            vec!["echo".into(), secret.clone()],
            Vec::new(),
        ) {
            Ok(out)
                if out.exit_code == 0
                    && String::from_utf8_lossy(&out.stdout.0).trim() == secret =>
            {
                break;
            }
            Ok(out) => last = format!("the check exited {}", out.exit_code),
            Err(error) => last = error.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(LeaseFlowError::NotReady {
                lease,
                waited: Duration::from_millis(ask.activate_within_ms),
                last,
            });
        }
        std::thread::sleep(READY_POLL);
    }
    let ready = started.elapsed();
    submit(node, wallet, TxKind::ActivateLease { lease })?;
    let done = started.elapsed();
    Ok(LeaseOpened {
        lease,
        node: winner,
        price_per_period: price,
        deposit,
        bids: bids.len(),
        timings: LeaseTimings {
            offers: offers_done,
            award: awarded - offers_done,
            ready: ready - awarded,
            activate: done - ready,
        },
    })
}

/// Runs `command` in `lease`'s space, signed by its user.
pub fn run(
    node: &impl NodeApi,
    wallet: &Keypair,
    lease: LeaseId,
    command: Vec<String>,
    stdin: Vec<u8>,
) -> Result<SpaceCommandResponse, ClientError> {
    let signed = Signed::new(
        SpaceCommand {
            lease,
            command,
            stdin,
            nonce: random_u64(),
            valid_until_ms: now_ms() + COMMAND_VALID_MS,
        },
        wallet,
    );
    node.space_command(&signed)
}

/// Closes `lease` now: the unused part of the deposit comes back at once.
pub fn close(
    node: &impl NodeApi,
    wallet: &Keypair,
    lease: LeaseId,
) -> Result<TxReceipt, ClientError> {
    submit(node, wallet, TxKind::CloseLease { lease }).map(|(receipt, _)| receipt)
}

/// Adds `amount` to `lease`'s deposit.
pub fn extend(
    node: &impl NodeApi,
    wallet: &Keypair,
    lease: LeaseId,
    amount: Amount,
) -> Result<TxReceipt, ClientError> {
    submit(node, wallet, TxKind::ExtendLease { lease, amount }).map(|(receipt, _)| receipt)
}

/// Cancels a lease never activated: its whole deposit comes back.
pub fn cancel(
    node: &impl NodeApi,
    wallet: &Keypair,
    lease: LeaseId,
) -> Result<TxReceipt, ClientError> {
    submit(node, wallet, TxKind::CancelLease { lease }).map(|(receipt, _)| receipt)
}
