//! Why a lease transaction was refused. Carried in [`crate::TxError::Lease`];
//! like every refusal, it leaves the state untouched.

use peercloud_types::{AccountId, Amount, LeaseId, NodeId};

/// A refused lease transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// No lease has this id.
    #[error("{lease} does not exist")]
    UnknownLease {
        /// The lease.
        lease: LeaseId,
    },
    /// The id is taken (the same signer and nonce opened one).
    #[error("{lease} exists already")]
    LeaseExists {
        /// The lease.
        lease: LeaseId,
    },
    /// The lease is in the wrong state for this.
    #[error("{lease} is {status}, this needs it {expected}")]
    WrongStatus {
        /// The lease.
        lease: LeaseId,
        /// Its status.
        status: &'static str,
        /// What the transaction needs.
        expected: &'static str,
    },
    /// Only the lease's user may do this.
    #[error("the lease belongs to {user}, not to the signer {signer}")]
    NotUser {
        /// Its user.
        user: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// Only the user or the owner of the lease's node may do this.
    #[error("the lease is between {user} and its node's owner; the signer {signer} is neither")]
    NotAParty {
        /// Its user.
        user: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// Only the owner of the lease's node may bill it.
    #[error("the lease's node is owned by {owner}, not by the signer {signer}")]
    NotNodeOwner {
        /// The node's owner.
        owner: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// The request names another user than the signer.
    #[error("the request is for user {user}, the transaction is signed by {signer}")]
    RequestNotSigners {
        /// The request's user.
        user: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// A request field outside its bounds.
    #[error("the request's {what} is {value}, it must be in {min}..={max}")]
    OutOfBounds {
        /// Which field.
        what: &'static str,
        /// Given.
        value: u128,
        /// Least allowed.
        min: u128,
        /// Most allowed.
        max: u128,
    },
    /// An award needs offers, and not too many.
    #[error("an award carries {count} offers, it needs 1..={max}")]
    OfferCount {
        /// Offers given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An offer is not its node's signature.
    #[error("offer {index} from node {node} is not signed by that node")]
    BadOfferSignature {
        /// Its place in the award.
        index: usize,
        /// The node it names.
        node: NodeId,
    },
    /// An offer bids on another request.
    #[error("offer {index} from node {node} is for another request")]
    OfferForOtherRequest {
        /// Its place in the award.
        index: usize,
        /// The node.
        node: NodeId,
    },
    /// An offer lapsed before the award.
    #[error(
        "offer {index} from node {node} lapsed at {valid_until_ms} ms (block time {time_ms} ms)"
    )]
    OfferExpired {
        /// Its place in the award.
        index: usize,
        /// The node.
        node: NodeId,
        /// When it lapsed.
        valid_until_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// An offer is above the request's reserve.
    #[error("node {node} bid {price:?} per period, above the reserve {max:?}")]
    AboveReserve {
        /// The node.
        node: NodeId,
        /// Its bid.
        price: Amount,
        /// The reserve.
        max: Amount,
    },
    /// Two offers from one node.
    #[error("node {node} bids twice; an award's offers come from distinct nodes")]
    DuplicateOffer {
        /// The node.
        node: NodeId,
    },
    /// A node the request's filters exclude.
    #[error("node {node} does not pass the request's filters (location, farmer or reputation)")]
    Filtered {
        /// The node.
        node: NodeId,
    },
    /// The winning node is the user's own: a lease with oneself would buy
    /// reputation for fees.
    #[error("node {node} is the user's own; a lease is rented from another farmer")]
    OwnNode {
        /// The node.
        node: NodeId,
    },
    /// The deposit does not cover what the lease needs up front.
    #[error("a deposit of {deposit:?} is short: the lease needs {needed:?} up front")]
    DepositTooSmall {
        /// Given.
        deposit: Amount,
        /// Needed (every period of a fixed lease, one of an open-ended one).
        needed: Amount,
    },
    /// Activation after the user's window.
    #[error("{lease} had to be activated by {activate_by_ms} ms (block time {time_ms} ms)")]
    ActivationOver {
        /// The lease.
        lease: LeaseId,
        /// The deadline.
        activate_by_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A cancel by someone else than the user while the user may still activate.
    #[error(
        "{lease} may be activated until {activate_by_ms} ms (block time {time_ms} ms); only its user may cancel it before"
    )]
    ActivationOpen {
        /// The lease.
        lease: LeaseId,
        /// The deadline.
        activate_by_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A bill of no periods or of too many.
    #[error("a bill covers {periods} periods, it must cover 1..={max}")]
    BillLength {
        /// Periods asked.
        periods: u64,
        /// The limit.
        max: u64,
    },
    /// A billed period has not ended.
    #[error("{lease}'s period {period} ends at {ends_ms} ms (block time {time_ms} ms)")]
    PeriodNotEnded {
        /// The lease.
        lease: LeaseId,
        /// The period.
        period: u64,
        /// When it ends.
        ends_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A billed period lies after the lease's end.
    #[error("{lease} has {periods} periods; period {period} is past its end")]
    PeriodPastEnd {
        /// The lease.
        lease: LeaseId,
        /// The period.
        period: u64,
        /// Periods it has.
        periods: u64,
    },
    /// A probe that proves nothing for this bill.
    #[error("probe {index} (by node {prober}) {reason}")]
    BadProbe {
        /// Its place in the bill.
        index: usize,
        /// The node it names.
        prober: NodeId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two probes of one period by one node.
    #[error("node {prober} probed period {period} twice")]
    DuplicateProbe {
        /// The prober.
        prober: NodeId,
        /// The period.
        period: u64,
    },
    /// Settlement before the bill window after the end has passed.
    #[error(
        "{lease} can be billed until {settles_at_ms} ms (block time {time_ms} ms); it settles after"
    )]
    BillWindowOpen {
        /// The lease.
        lease: LeaseId,
        /// When it may settle.
        settles_at_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A close or extension after the lease ran out.
    #[error("{lease} ended at {end_ms} ms (block time {time_ms} ms)")]
    Ended {
        /// The lease.
        lease: LeaseId,
        /// Its end.
        end_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
}
