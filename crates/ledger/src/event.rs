//! Events: what an applied transaction did, in the order it did it.
//!
//! The node daemon feeds them to its agents (a provider learns it was awarded
//! a job, a requester that its job settled) and to the dashboard. Events are
//! derived from the state change; they are not part of the state root.

use peercloud_types::{AccountId, Amount, Hash32, JobId, NodeId};
use serde::{Deserialize, Serialize};

use crate::records::ResultClaim;

/// One thing an applied transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Genesis minted tokens into an account.
    Minted {
        /// Receiver.
        to: AccountId,
        /// Tokens minted.
        amount: Amount,
    },
    /// A transaction's fee went to the treasury.
    FeeCharged {
        /// Who paid.
        payer: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Tokens moved between accounts.
    Transferred {
        /// Sender.
        from: AccountId,
        /// Receiver.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A node was registered.
    NodeRegistered {
        /// The node.
        node: NodeId,
        /// Its owner.
        owner: AccountId,
    },
    /// A node's resources, location or prices changed.
    NodeUpdated {
        /// The node.
        node: NodeId,
    },
    /// Balance moved into stake.
    Staked {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Stake moved back into balance.
    Unstaked {
        /// The account.
        account: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A job was posted and its escrow locked.
    JobPosted {
        /// The job.
        job: JobId,
        /// Its poster.
        poster: AccountId,
        /// Tokens locked.
        escrow: Amount,
    },
    /// Offers were bound to a job.
    JobAwarded {
        /// The job.
        job: JobId,
        /// The awarded nodes, in offer order.
        nodes: Vec<NodeId>,
    },
    /// An awarded node submitted its result.
    ResultSubmitted {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
        /// What it claims.
        claim: ResultClaim,
    },
    /// A node's owner was paid out of a job's escrow.
    Paid {
        /// The job.
        job: JobId,
        /// The node that did the work.
        node: NodeId,
        /// Who received the tokens.
        owner: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Escrow went back to the poster.
    Refunded {
        /// The job.
        job: JobId,
        /// The poster.
        to: AccountId,
        /// How much.
        amount: Amount,
    },
    /// Stake was slashed to the treasury because a node disagreed with the majority.
    Slashed {
        /// The job.
        job: JobId,
        /// The node that disagreed.
        node: NodeId,
        /// Whose stake.
        owner: AccountId,
        /// How much.
        amount: Amount,
    },
    /// A node's reputation moved.
    ReputationChanged {
        /// The node.
        node: NodeId,
        /// Before.
        before: u32,
        /// After.
        after: u32,
    },
    /// A job was settled.
    JobSettled {
        /// The job.
        job: JobId,
        /// The majority's result, or `None` when all results were in without one.
        agreed: Option<ResultClaim>,
    },
    /// A job expired and its escrow was refunded.
    JobExpired {
        /// The job.
        job: JobId,
    },
    /// A posted job was withdrawn by its poster and its escrow refunded.
    JobCancelled {
        /// The job.
        job: JobId,
    },
    /// Emitted alongside [`Event::ResultSubmitted`] when a job first has all its results.
    AllResultsIn {
        /// The job.
        job: JobId,
        /// The digest of the spec the results are for.
        spec_digest: Hash32,
    },
    /// An awarded node said it will not deliver a result.
    ResultWithdrawn {
        /// The job.
        job: JobId,
        /// The node.
        node: NodeId,
    },
}
