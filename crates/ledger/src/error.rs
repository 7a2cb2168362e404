//! Why a transaction was refused. A refused transaction leaves the state
//! untouched (the journal rolls it back), so every variant is safe to report
//! to the sender and retry after fixing what it names.

use peercloud_types::{AccountId, Amount, Hash32, JobId, NodeId, PublicKey};

use crate::lease_error::LeaseError;
use crate::records::JobState;
use crate::storage_error::StorageError;

/// A transaction the ledger refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The envelope's signature does not verify under its signer's key.
    #[error("bad signature: the transaction is not signed by {signer:?}")]
    BadSignature {
        /// The claimed signer.
        signer: PublicKey,
    },
    /// The transaction was signed for another chain (another network's params).
    #[error("the transaction is for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: Hash32,
        /// The one the transaction names.
        got: Hash32,
    },
    /// The nonce is not the signer's last nonce plus one (a replay or a gap).
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// The nonce that would be accepted.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The fee is under the chain's minimum.
    #[error("fee {fee:?} is below the minimum fee {min_fee:?}")]
    FeeTooLow {
        /// The fee given.
        fee: Amount,
        /// The minimum.
        min_fee: Amount,
    },
    /// The genesis transaction carries a fee; it is fee-free.
    #[error("the genesis transaction must carry no fee, it carries {fee:?}")]
    GenesisFee {
        /// The fee given.
        fee: Amount,
    },
    /// An account's balance is too small.
    #[error("insufficient funds in {account}: {needed:?} needed, {available:?} available")]
    InsufficientFunds {
        /// The account.
        account: AccountId,
        /// What the transaction needs.
        needed: Amount,
        /// What the account holds.
        available: Amount,
    },
    /// An account's stake is smaller than the amount to unstake.
    #[error("insufficient stake in {account}: {needed:?} needed, {available:?} staked")]
    InsufficientStake {
        /// The account.
        account: AccountId,
        /// What the transaction needs.
        needed: Amount,
        /// What the account has staked.
        available: Amount,
    },
    /// A transfer, stake or unstake of nothing.
    #[error("the {what} amount is zero")]
    ZeroAmount {
        /// Which amount.
        what: &'static str,
    },
    /// Tokens sent to a key no one can sign for would be burned.
    #[error(
        "{account} is not a usable account key (off the curve or of small order): \
         tokens sent to it could never be spent"
    )]
    UnusableAccount {
        /// The receiver named.
        account: AccountId,
    },
    /// Arithmetic overflowed (amounts beyond the minted supply).
    #[error("arithmetic overflow computing {what}")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// A genesis transaction outside the genesis block.
    #[error("genesis is only valid at height 0, this block is at height {height}")]
    GenesisNotAtHeightZero {
        /// The block's height.
        height: u64,
    },
    /// A genesis transaction signed by someone else than the genesis authority.
    #[error("genesis must be signed by the genesis authority {authority}, not {signer:?}")]
    NotGenesisAuthority {
        /// The authority in params.
        authority: AccountId,
        /// Who signed.
        signer: PublicKey,
    },
    /// A second genesis transaction.
    #[error("genesis was already applied; the supply is minted once")]
    GenesisAlreadyApplied,
    /// Too many genesis allocations.
    #[error("genesis has {count} allocations, at most {max} are allowed")]
    TooManyAllocations {
        /// Allocations given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The node is already registered.
    #[error("node {node} is already registered")]
    NodeAlreadyRegistered {
        /// The node.
        node: NodeId,
    },
    /// The registration proof is not the node key's signature naming the signer.
    #[error("registration proof for node {node} is not its signature naming owner {owner}")]
    BadRegistrationProof {
        /// The node.
        node: NodeId,
        /// The would-be owner (the signer).
        owner: AccountId,
    },
    /// A location string over the limit.
    #[error("location is {bytes} bytes, at most {max} are allowed")]
    LocationTooLong {
        /// Bytes given.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// No such node.
    #[error("node {node} is not registered")]
    UnknownNode {
        /// The node.
        node: NodeId,
    },
    /// Only a node's owner may do this.
    #[error("node {node} is owned by {owner}, not by the signer {signer}")]
    NotOwner {
        /// The node.
        node: NodeId,
        /// Its owner.
        owner: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// Stake backs awarded work that is not closed yet.
    #[error("{account} cannot unstake: its nodes hold {awards} awards in unsettled jobs")]
    StakeBound {
        /// The account.
        account: AccountId,
        /// Open awards of its nodes.
        awards: u32,
    },
    /// No such job.
    #[error("job {job} does not exist")]
    UnknownJob {
        /// The job.
        job: JobId,
    },
    /// A job with this id exists already.
    #[error("job {job} exists already")]
    JobExists {
        /// The job.
        job: JobId,
    },
    /// Only the job's poster may do this.
    #[error("job {job} was posted by {poster}, not by the signer {signer}")]
    NotPoster {
        /// The job.
        job: JobId,
        /// Its poster.
        poster: AccountId,
        /// Who signed.
        signer: AccountId,
    },
    /// The job is not in the state this action needs.
    #[error("job {job} is {state}, this needs it {expected}")]
    WrongJobState {
        /// The job.
        job: JobId,
        /// Its state.
        state: JobState,
        /// What the action needs.
        expected: &'static str,
    },
    /// Redundancy outside 1..=max.
    #[error("redundancy {redundancy} is outside 1..={max}")]
    BadRedundancy {
        /// Given.
        redundancy: u8,
        /// The limit.
        max: u8,
    },
    /// A deadline not after the block's time.
    #[error("deadline {deadline_ms} ms is not after the block time {time_ms} ms")]
    DeadlineNotInFuture {
        /// Given.
        deadline_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A deadline further out than allowed.
    #[error("deadline {deadline_ms} ms is more than {max_ms} ms after the block time {time_ms} ms")]
    DeadlineTooFar {
        /// Given.
        deadline_ms: u64,
        /// The block's time.
        time_ms: u64,
        /// The longest allowed lead.
        max_ms: u64,
    },
    /// The job's deadline has passed: it can no longer be awarded or receive results.
    #[error("job {job}'s deadline {deadline_ms} ms has passed (block time {time_ms} ms)")]
    DeadlinePassed {
        /// The job.
        job: JobId,
        /// Its deadline.
        deadline_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// The award does not carry exactly `redundancy` offers.
    #[error("job {job} needs exactly {expected} offers, the award carries {got}")]
    WrongOfferCount {
        /// The job.
        job: JobId,
        /// Its redundancy.
        expected: usize,
        /// Offers given.
        got: usize,
    },
    /// An offer's signature is bad or not by the offering node's key.
    #[error("offer {index} from node {node} is not signed by that node")]
    BadOfferSignature {
        /// Position in the award.
        index: usize,
        /// The node named in the offer.
        node: NodeId,
    },
    /// An offer for another job.
    #[error("offer {index} is for job {offered}, not job {job}")]
    OfferForOtherJob {
        /// Position in the award.
        index: usize,
        /// The job awarded.
        job: JobId,
        /// The job named in the offer.
        offered: JobId,
    },
    /// Two offers from the same node.
    #[error("node {node} appears twice in the award; the k nodes must be distinct")]
    DuplicateOfferNode {
        /// The node.
        node: NodeId,
    },
    /// An offer above the job's maximum price per node.
    #[error("node {node} offered {price:?}, above the job's maximum {max:?} per node")]
    OfferPriceTooHigh {
        /// The node.
        node: NodeId,
        /// Its price.
        price: Amount,
        /// The job's maximum.
        max: Amount,
    },
    /// An offer that lapsed before the award.
    #[error(
        "node {node}'s offer lapsed at {valid_until_ms} ms, before the block time {time_ms} ms"
    )]
    OfferExpired {
        /// The node.
        node: NodeId,
        /// When it lapsed.
        valid_until_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A node's owner holds too little stake to serve.
    #[error("node {node}'s owner {owner} has {stake:?} staked, {required:?} is needed to serve")]
    OwnerStakeTooLow {
        /// The node.
        node: NodeId,
        /// Its owner.
        owner: AccountId,
        /// The owner's stake.
        stake: Amount,
        /// The minimum.
        required: Amount,
    },
    /// The signer is not one of the job's awarded nodes.
    #[error("node {node} is not awarded job {job}")]
    NotAwarded {
        /// The job.
        job: JobId,
        /// The signer as a node.
        node: NodeId,
    },
    /// The node has submitted its result already.
    #[error("node {node} already submitted a result for job {job}")]
    AlreadySubmitted {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
    },
    /// Settling needs all results, or the deadline past with a majority.
    #[error(
        "job {job} cannot be settled yet: {results} of {redundancy} results are in and {reason}"
    )]
    NotSettleable {
        /// The job.
        job: JobId,
        /// Results in.
        results: usize,
        /// Results needed.
        redundancy: u8,
        /// What is missing.
        reason: &'static str,
    },
    /// Expiry of a job never awarded needs the deadline past.
    #[error(
        "job {job} cannot expire before its deadline {deadline_ms} ms (block time {time_ms} ms)"
    )]
    DeadlineNotPassed {
        /// The job.
        job: JobId,
        /// Its deadline.
        deadline_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// Expiry of a job that can be settled instead.
    #[error("job {job} can be settled (its results decide it), so it cannot expire")]
    JobSettleable {
        /// The job.
        job: JobId,
    },
    /// The node has withdrawn from the job already: it can neither submit
    /// nor withdraw again.
    #[error("node {node} already withdrew from job {job}")]
    AlreadyWithdrawn {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
    },
    /// Expiry before the deadline of a job whose results may still reach a
    /// majority.
    #[error(
        "job {job} cannot expire before its deadline {deadline_ms} ms (block time {time_ms} ms): \
         {pending} awarded nodes have not answered and a majority is still possible"
    )]
    MajorityStillPossible {
        /// The job.
        job: JobId,
        /// Awards with neither a result nor a withdrawal.
        pending: usize,
        /// Its deadline.
        deadline_ms: u64,
        /// The block's time.
        time_ms: u64,
    },
    /// A cluster, bucket or billing transaction refused (see [`StorageError`]).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A lease transaction refused (see [`LeaseError`]).
    #[error(transparent)]
    Lease(#[from] LeaseError),
}
