//! What a devnet's genesis mints, charges and asks of its farmers, and the
//! terms of the storage cluster every devnet comes with. These are a
//! devnet's choices, not the network's: a real network's genesis sets its
//! own, and nodes and clients read them from the ledger's params.

use peercloud_ledger::{ClusterTerms, Redundancy};
use peercloud_types::Amount;

/// Tokens the user's wallet starts with.
pub const USER_TOKENS: u64 = 1_000;
/// Tokens each farmer starts with.
pub const FARMER_TOKENS: u64 = 100;
/// Tokens each farmer's node stakes (the node's `stake` setting).
pub const FARMER_STAKE_TOKENS: u64 = 50;
/// Stake a node's owner must hold for the node to be awarded work.
pub const STAKE_MIN_TO_SERVE_TOKENS: u64 = 10;
/// Share of a disagreeing node's stake slashed, in basis points.
pub const SLASH_BPS: u32 = 1_000;
/// The fee every transaction pays: 0.0001 PCL.
pub const TX_FEE: Amount = Amount::from_base_units(100_000);
/// Countries the devnet's providers sit in, in turn.
pub const LOCATIONS: [&str; 5] = ["DE", "FR", "NL", "SE", "PT"];

/// Tokens the devnet's cluster manager starts with: it pays one fee to
/// create the cluster and one per admitted provider, a fraction of a PCL.
pub const MANAGER_TOKENS: u64 = 10;
/// Stake each provider locks to join the devnet's cluster: a farmer keeps
/// `FARMER_TOKENS - FARMER_STAKE_TOKENS` (50 PCL) after staking, so it can
/// lock this and still pay its fees.
pub const CLUSTER_NODE_STAKE_TOKENS: u64 = 10;
// A farmer locks the cluster stake from what staking left it, fees aside.
const _: () = assert!(CLUSTER_NODE_STAKE_TOKENS < FARMER_TOKENS - FARMER_STAKE_TOKENS);

/// What the devnet's cluster charges for a GiB stored for a month: 1 PCL,
/// so the user's 1,000 PCL keep a few GiB for a long while.
pub const CLUSTER_PRICE_PER_GIB_MONTH: Amount = Amount::from_tokens(1);
/// What the devnet's cluster charges for a GiB served: 0.01 PCL.
pub const CLUSTER_PRICE_PER_GIB_SERVED: Amount = Amount::from_base_units(10_000_000);
/// The devnet's managers' fee on every bill: 5%.
pub const CLUSTER_MANAGER_FEE_BPS: u32 = 500;
/// The devnet cluster's billing period: one minute, so a user trying
/// buckets out sees periods end and bills come (a real cluster bills monthly).
pub const CLUSTER_BILLING_PERIOD_MS: u64 = 60_000;
/// How long a devnet bucket that ran out stays read-only before it may
/// expire: ten periods.
pub const CLUSTER_GRACE_MS: u64 = 10 * CLUSTER_BILLING_PERIOD_MS;
/// The erasure code of a devnet with at least `data + parity` providers:
/// RS(4+2), every piece on its own node, survives two lost nodes.
pub const CLUSTER_ERASURE: Redundancy = Redundancy::ReedSolomon { data: 4, parity: 2 };
/// Copies a smaller devnet keeps (fewer when it has fewer providers).
pub const CLUSTER_REPLICAS: u8 = 3;

/// How a devnet of `providers` providers keeps its data: [`CLUSTER_ERASURE`]
/// when every piece of a segment can go to its own provider, else
/// [`CLUSTER_REPLICAS`] copies (at most one per provider).
pub fn cluster_redundancy(providers: usize) -> Redundancy {
    let Redundancy::ReedSolomon { data, parity } = CLUSTER_ERASURE else {
        return CLUSTER_ERASURE;
    };
    if providers >= usize::from(data) + usize::from(parity) {
        return CLUSTER_ERASURE;
    }
    let copies = u8::try_from(providers).unwrap_or(u8::MAX);
    Redundancy::Replicas(copies.clamp(1, CLUSTER_REPLICAS))
}

/// The terms of the devnet's cluster for `providers` providers.
pub fn cluster_terms(providers: usize) -> ClusterTerms {
    ClusterTerms {
        redundancy: cluster_redundancy(providers),
        price_per_gib_month: CLUSTER_PRICE_PER_GIB_MONTH,
        price_per_gib_served: CLUSTER_PRICE_PER_GIB_SERVED,
        manager_fee_bps: CLUSTER_MANAGER_FEE_BPS,
        node_stake: Amount::from_tokens(CLUSTER_NODE_STAKE_TOKENS),
        billing_period_ms: CLUSTER_BILLING_PERIOD_MS,
        grace_ms: CLUSTER_GRACE_MS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_providers_or_more_erasure_code_fewer_keep_up_to_three_copies() {
        assert_eq!(cluster_redundancy(1), Redundancy::Replicas(1));
        assert_eq!(cluster_redundancy(2), Redundancy::Replicas(2));
        assert_eq!(cluster_redundancy(3), Redundancy::Replicas(3));
        assert_eq!(cluster_redundancy(5), Redundancy::Replicas(3));
        assert_eq!(cluster_redundancy(6), CLUSTER_ERASURE);
        assert_eq!(cluster_redundancy(32), CLUSTER_ERASURE);
    }
}
