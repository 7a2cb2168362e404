//! Leases through the API: gathering sealed bids for a request, running a
//! signed command in a leased space, and what the ledger says of a lease.

use peercloud_ledger::LeaseRecord;
use peercloud_types::{
    AccountId, Amount, LeaseId, LeaseOffer, LeaseRequest, NodeId, Resources, Signed, SpaceCommand,
    SpaceKind,
};
use serde::{Deserialize, Serialize};

use crate::canonical::{Canonical, HexBytes};

/// `POST /v1/leases/offers`: broadcast the request and gather the bids that
/// come before its offer window closes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseOffersRequest {
    /// The request (the user signs the award that carries it).
    pub request: Canonical<LeaseRequest>,
}

/// The bids gathered, each with what the ledger says of its node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseOffersResponse {
    /// The bids, cheapest first.
    pub offers: Vec<LeaseOfferView>,
}

/// One sealed bid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseOfferView {
    /// The node's signed bid.
    pub offer: Canonical<Signed<LeaseOffer>>,
    /// The node's reputation on the ledger.
    pub reputation: u32,
    /// The node's location.
    pub location: String,
    /// The node's owner (the farmer).
    pub owner: AccountId,
}

/// `POST /v1/leases/command`: run the user's signed command in its lease's
/// space (on whichever node holds it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpaceCommandRequest {
    /// The command, signed by the lease's user.
    pub command: Canonical<Signed<SpaceCommand>>,
}

/// What the command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceCommandResponse {
    /// Its exit code (137: killed, e.g. by the memory limit).
    pub exit_code: i64,
    /// Its standard output (at most 1 MiB kept).
    pub stdout: HexBytes,
    /// Its standard error (at most 1 MiB kept).
    pub stderr: HexBytes,
}

/// `GET /v1/leases/{id}` and `GET /v1/leases?user=`: a lease as the ledger has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseView {
    /// The lease.
    pub id: LeaseId,
    /// The renter.
    pub user: AccountId,
    /// The node that runs its space.
    pub node: NodeId,
    /// The kind of space.
    pub kind: SpaceKind,
    /// What the space gets.
    pub resources: Resources,
    /// The awarded price per period.
    pub price_per_period: Amount,
    /// The billing period, ms.
    pub period_ms: u64,
    /// Periods of a fixed-length lease; `None` is open-ended.
    pub max_periods: Option<u64>,
    /// `pending`, `active`, `closed`, `settled` or `cancelled`.
    pub status: String,
    /// When the user must activate by (a pending lease).
    pub activate_by_ms: u64,
    /// When billing started (activated).
    pub since_ms: Option<u64>,
    /// When it ends or ended.
    pub end_ms: Option<u64>,
    /// When anyone may settle it (its end plus the bill window).
    pub settles_at_ms: Option<u64>,
    /// Deposited, ever.
    pub deposited: Amount,
    /// Paid to the node's owner.
    pub paid: Amount,
    /// Given back to the user.
    pub refunded: Amount,
    /// Still held.
    pub held: Amount,
    /// Periods billed.
    pub periods_billed: u64,
    /// Periods paid (probes proved them up).
    pub periods_up: u64,
    /// Periods credited back (nobody proved them up).
    pub periods_down: u64,
}

impl LeaseView {
    /// The view of `record`; `settles_at_ms` is the ledger's rule's answer
    /// (`None` unless the lease is active or closed).
    pub fn of(id: LeaseId, record: &LeaseRecord, settles_at_ms: Option<u64>) -> LeaseView {
        LeaseView {
            id,
            user: record.user,
            node: record.node,
            kind: record.kind,
            resources: record.resources,
            price_per_period: record.price_per_period,
            period_ms: record.period_ms,
            max_periods: record.max_periods,
            status: record.status.name().to_owned(),
            activate_by_ms: record.activate_by_ms,
            since_ms: record.since_ms(),
            end_ms: record.end_ms(),
            settles_at_ms,
            deposited: record.deposited,
            paid: record.paid,
            refunded: record.refunded,
            held: record.held().unwrap_or(Amount::ZERO),
            periods_billed: record.next_period,
            periods_up: record.periods_up,
            periods_down: record.periods_down,
        }
    }
}

/// `GET /v1/leases?user=`: a user's leases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeasesQuery {
    /// The user (`pc1…`).
    pub user: AccountId,
}
