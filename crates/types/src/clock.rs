//! The wall clock, for the agents at the edges (a node's proposer, a user's
//! client). The ledger and the market never call it: they take the time as
//! an input, so replaying a block log gives the same state on any machine.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
