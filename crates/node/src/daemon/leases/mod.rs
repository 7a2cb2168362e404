//! Leases on a node: every side of the flow the ledger's lease rules
//! (`peercloud_ledger::leases`) settle.
//!
//! ```text
//!  user's node                       provider (won the award)            other nodes (probers)
//!  gather_lease_offers ─gossip─► on_lease_request: bid ─► LeaseOffer ─► collector
//!  (CLI signs OpenLease)          Opened event ─► create the space
//!  run_space_command ─Space─►     on_command: the user's signed command ─► exec
//!  (CLI verifies, activates)      upkeep: bill ended periods with the     upkeep: probe each active
//!                                 probes reported, settle, stop/remove    lease's space each period,
//!                                 ended spaces after the grace     ◄───── report signed probes
//! ```
//!
//! `offers.rs` is the auction's two sides, `space.rs` the provider's
//! spaces and the commands and probes they answer, `upkeep.rs` the loop
//! that probes others, bills and ends.

mod offers;
mod space;
mod upkeep;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use peercloud_space::{ContainerEngine, Space, lease_of_space};
use peercloud_types::{Hash32, LeaseId, LeaseOffer, LeaseProbe, Signed};
use tokio::sync::mpsc;

pub use offers::LeaseOfferError;
pub(crate) use offers::{on_lease_offer, on_lease_request};
pub(crate) use space::on_space_command as run_space_command;
pub(crate) use space::{on_probe, on_probe_report, on_space_command};
pub(crate) use upkeep::upkeep_loop;

/// A space is stopped when its lease ends and removed this long after, so
/// its user can still copy files out (the grace).
pub const SPACE_GRACE_MS: u64 = 30_000;

/// The probes reported for one lease, by period.
pub(crate) type Reported = BTreeMap<u64, Vec<Signed<LeaseProbe>>>;

/// What a node keeps about leases between blocks.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    /// The container engine, when this node has one (else it offers no
    /// container spaces).
    pub(crate) engine: Option<ContainerEngine>,
    /// This node's spaces, by lease.
    spaces: Mutex<HashMap<LeaseId, Space>>,
    /// Probes others reported for this node's leases, by period.
    probes: Mutex<HashMap<LeaseId, Reported>>,
    /// Bid collectors of the requests this node gathers for, by digest.
    collectors: Mutex<HashMap<Hash32, mpsc::Sender<Signed<LeaseOffer>>>>,
    /// Commands run lately, (lease, nonce) → valid until: each runs once.
    commands: Mutex<HashMap<(LeaseId, u64), u64>>,
    /// Leases whose space is being made, stopped or removed right now.
    busy: Mutex<std::collections::HashSet<LeaseId>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Leases {
    /// Leases with the engine `engine` (or none), taking back the spaces it
    /// holds from before a restart (the upkeep keeps, stops or removes each
    /// as its lease on the ledger says; spaces of other chains' leases are
    /// never touched).
    pub(crate) async fn new(engine: Option<ContainerEngine>) -> Leases {
        let mut spaces = HashMap::new();
        if let Some(engine) = &engine {
            match engine.list().await {
                Ok(found) => {
                    for space in found {
                        if let Some(lease) = lease_of_space(&space.name) {
                            spaces.insert(lease, space);
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "spaces from before not listed"),
            }
        }
        Leases {
            engine,
            spaces: Mutex::new(spaces),
            ..Leases::default()
        }
    }
}
