//! Offer evaluation: may this node take this job, and at what price?

use peercloud_types::job::Constraints;
use peercloud_types::{AccountId, Amount, JobSpec, Limits, Resources};

use crate::pricing::{PricePolicy, quote};

/// What a job asks of a node: the parts of a [`JobSpec`] a provider judges it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobAsk {
    /// Resources the node must have free.
    pub resources: Resources,
    /// Sandbox limits (they bound the work, so they bound the price).
    pub limits: Limits,
    /// Most the user pays one node.
    pub max_price: Amount,
    /// Who may run it.
    pub constraints: Constraints,
}

impl From<&JobSpec> for JobAsk {
    fn from(spec: &JobSpec) -> Self {
        JobAsk {
            resources: spec.resources,
            limits: spec.limits,
            max_price: spec.max_price,
            constraints: spec.constraints.clone(),
        }
    }
}

/// What a provider knows about itself when it judges an ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeProfile {
    /// The owner account (the farmer).
    pub owner: AccountId,
    /// ISO country code.
    pub location: String,
    /// Reputation on the ledger, 0–10000.
    pub reputation: u32,
    /// Resources free now.
    pub free: Resources,
    /// Utilisation now, in basis points.
    pub utilisation_bps: u32,
    /// Pricing policy.
    pub policy: PricePolicy,
}

/// Why a node declines an ask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Decline {
    /// The node does not have the resources free.
    #[error("not enough free {}", shortfall(asked, free))]
    Capacity {
        /// Asked.
        asked: Resources,
        /// Free.
        free: Resources,
    },
    /// The node is not where the user wants it.
    #[error("node is in {location}, the job wants one of {wanted:?}")]
    Location {
        /// Node location.
        location: String,
        /// Allowed locations.
        wanted: Vec<String>,
    },
    /// The node's owner is not on the user's list.
    #[error("farmer {owner} is not among the farmers the job allows")]
    Farmer {
        /// The node's owner.
        owner: AccountId,
    },
    /// The node's reputation is too low.
    #[error("reputation {reputation} is below the job's minimum {minimum}")]
    Reputation {
        /// Node reputation.
        reputation: u32,
        /// Minimum asked.
        minimum: u32,
    },
    /// The node's price is above the user's maximum.
    #[error("price {price} is above the job's maximum {max_price}")]
    Price {
        /// Node's quote.
        price: Amount,
        /// User's maximum.
        max_price: Amount,
    },
    /// The price computation overflowed: the sheet is absurd.
    #[error("price overflows")]
    PriceOverflow,
}

/// `memory: asked 64 GiB, 4 GiB free; …` for each resource asked beyond what is free.
fn shortfall(asked: &Resources, free: &Resources) -> String {
    fn bytes(n: u64) -> String {
        const GIB: u64 = 1 << 30;
        const MIB: u64 = 1 << 20;
        if n >= GIB {
            format!("{:.1} GiB", n as f64 / GIB as f64)
        } else {
            format!("{:.1} MiB", n as f64 / MIB as f64)
        }
    }
    let rows = [
        (
            "cpu",
            asked.cpu_millicores > free.cpu_millicores,
            format!("{} millicores", asked.cpu_millicores),
            format!("{} millicores", free.cpu_millicores),
        ),
        (
            "memory",
            asked.memory_bytes > free.memory_bytes,
            bytes(asked.memory_bytes),
            bytes(free.memory_bytes),
        ),
        (
            "storage",
            asked.storage_bytes > free.storage_bytes,
            bytes(asked.storage_bytes),
            bytes(free.storage_bytes),
        ),
        (
            "bandwidth",
            asked.bandwidth_bytes_per_sec > free.bandwidth_bytes_per_sec,
            format!("{}/s", bytes(asked.bandwidth_bytes_per_sec)),
            format!("{}/s", bytes(free.bandwidth_bytes_per_sec)),
        ),
        (
            "gpus",
            asked.gpus > free.gpus,
            asked.gpus.to_string(),
            free.gpus.to_string(),
        ),
    ];
    let short: Vec<String> = rows
        .into_iter()
        .filter(|(_, over, _, _)| *over)
        .map(|(name, _, a, f)| format!("{name}: asked {a}, {f} free"))
        .collect();
    short.join("; ")
}

/// Judges `ask` for `node`: the price to offer, or why not.
pub fn evaluate(ask: &JobAsk, node: &NodeProfile) -> Result<Amount, Decline> {
    if !ask.resources.fits_within(&node.free) {
        return Err(Decline::Capacity {
            asked: ask.resources,
            free: node.free,
        });
    }
    let c = &ask.constraints;
    if !c.locations.is_empty() && !c.locations.contains(&node.location) {
        return Err(Decline::Location {
            location: node.location.clone(),
            wanted: c.locations.clone(),
        });
    }
    if !c.farmers.is_empty() && !c.farmers.contains(&node.owner) {
        return Err(Decline::Farmer { owner: node.owner });
    }
    if node.reputation < c.min_reputation {
        return Err(Decline::Reputation {
            reputation: node.reputation,
            minimum: c.min_reputation,
        });
    }
    let price = quote(
        &node.policy,
        &ask.resources,
        &ask.limits,
        node.utilisation_bps,
    )
    .ok_or(Decline::PriceOverflow)?;
    if price > ask.max_price {
        return Err(Decline::Price {
            price,
            max_price: ask.max_price,
        });
    }
    Ok(price)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Keypair, PriceSheet};

    fn node() -> NodeProfile {
        NodeProfile {
            owner: Keypair::from_seed(&[3; 32]).account_id(),
            location: "DE".into(),
            reputation: 6_000,
            free: Resources {
                cpu_millicores: 4_000,
                memory_bytes: 8 << 30,
                ..Resources::default()
            },
            utilisation_bps: 0,
            policy: PricePolicy::new(PriceSheet {
                job_base: Amount::from_base_units(1_000),
                ..PriceSheet::default()
            }),
        }
    }

    fn ask() -> JobAsk {
        JobAsk {
            resources: Resources {
                cpu_millicores: 1_000,
                ..Resources::default()
            },
            limits: Limits::default(),
            max_price: Amount::from_base_units(5_000),
            constraints: Constraints::default(),
        }
    }

    #[test]
    fn accepts_and_declines_for_each_reason() {
        assert_eq!(
            evaluate(&ask(), &node()),
            Ok(Amount::from_base_units(1_000))
        );
        let mut big = ask();
        big.resources.gpus = 1;
        let declined = evaluate(&big, &node()).unwrap_err();
        assert!(matches!(declined, Decline::Capacity { .. }));
        assert!(
            declined.to_string().contains("gpus: asked 1, 0 free"),
            "{declined}"
        );
        let mut fr = ask();
        fr.constraints.locations = vec!["FR".into()];
        assert!(matches!(
            evaluate(&fr, &node()),
            Err(Decline::Location { .. })
        ));
        let mut picky = ask();
        picky.constraints.farmers = vec![Keypair::from_seed(&[4; 32]).account_id()];
        assert!(matches!(
            evaluate(&picky, &node()),
            Err(Decline::Farmer { .. })
        ));
        let mut strict = ask();
        strict.constraints.min_reputation = 9_000;
        assert!(matches!(
            evaluate(&strict, &node()),
            Err(Decline::Reputation { .. })
        ));
        let mut cheap = ask();
        cheap.max_price = Amount::from_base_units(999);
        assert!(matches!(
            evaluate(&cheap, &node()),
            Err(Decline::Price { .. })
        ));
    }
}
