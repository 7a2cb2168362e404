//! What a devnet's genesis mints, charges and asks of its farmers. These are
//! a devnet's choices, not the network's: a real network's genesis sets its
//! own, and nodes and clients read them from the ledger's params.

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
