//! The lease half of the model: awards from random sealed bids, activations
//! (some late), cancels (some by strangers, some early), extensions, bills
//! with probes from zero to all other nodes (some forged, some from the
//! leasing node itself), closes and settlements, at random times.

use peercloud_ledger::{LeaseStatus, State, Tx};
use peercloud_types::{
    Amount, LeaseFilters, LeaseId, LeaseOffer, LeaseProbe, LeaseRequest, Resources, Signed,
    SpaceKind,
};
use proptest::prelude::*;

use super::{Model, NODES, USERS};
use peercloud_ledger::TxKind;

#[derive(Debug, Clone)]
pub(crate) enum LeaseOp {
    Open {
        who: usize,
        /// Bids as a percent of the reserve, one per node (`None`: no bid).
        bids: Vec<Option<u128>>,
        fixed: Option<u64>,
        period_s: u64,
        deposit_periods: u128,
        activate_s: u64,
        late_offers: bool,
    },
    Activate {
        lease: usize,
        stranger: bool,
    },
    Cancel {
        lease: usize,
        by: usize,
    },
    Extend {
        lease: usize,
        who: usize,
        periods: u128,
    },
    Bill {
        lease: usize,
        periods: u64,
        /// How many other nodes saw each period up (0..=2).
        up: usize,
        /// A probe by the leasing node itself rides along (refused).
        own_probe: bool,
        /// Signed by some other owner than the node's (refused).
        stranger: bool,
    },
    Close {
        lease: usize,
        by: usize,
    },
    Settle {
        lease: usize,
        by: usize,
    },
}

/// The reserve per period every model request uses.
const RESERVE: Amount = Amount::from_base_units(1_000_000_000);

pub(crate) fn lease_op() -> impl Strategy<Value = LeaseOp> {
    let user = 0..USERS;
    let bid = prop::option::weighted(0.7, 0u128..104);
    prop_oneof![
        2 => (user.clone(), prop::collection::vec(bid, NODES), prop::option::of(1u64..6), 1u64..4, 0u128..8, 5u64..60, prop::bool::weighted(0.05))
            .prop_map(|(who, bids, fixed, period_s, deposit_periods, activate_s, late_offers)| LeaseOp::Open { who, bids, fixed, period_s, deposit_periods, activate_s, late_offers }),
        6 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(lease, stranger)| LeaseOp::Activate { lease, stranger }),
        1 => (any::<usize>(), 0..USERS + 1).prop_map(|(lease, by)| LeaseOp::Cancel { lease, by }),
        2 => (any::<usize>(), user.clone(), 0u128..4).prop_map(|(lease, who, periods)| LeaseOp::Extend { lease, who, periods }),
        5 => (any::<usize>(), 1u64..4, prop::sample::select(vec![0usize, 1, 2, 2, 2]), prop::bool::weighted(0.05), prop::bool::weighted(0.05))
            .prop_map(|(lease, periods, up, own_probe, stranger)| LeaseOp::Bill { lease, periods, up, own_probe, stranger }),
        2 => (any::<usize>(), 0..USERS + 1).prop_map(|(lease, by)| LeaseOp::Close { lease, by }),
        2 => (any::<usize>(), user).prop_map(|(lease, by)| LeaseOp::Settle { lease, by }),
    ]
}

impl Model {
    /// Mostly a lease whose status is `wanted`, one time in eight any lease.
    fn lease(
        &self,
        shadow: &State,
        pick: usize,
        wanted: fn(LeaseStatus) -> bool,
    ) -> Option<LeaseId> {
        let live: Vec<LeaseId> = self
            .leases
            .iter()
            .copied()
            .filter(|l| shadow.lease(l).is_some_and(|r| wanted(r.status)))
            .collect();
        let pool = if live.is_empty() || pick.is_multiple_of(8) {
            &self.leases
        } else {
            &live
        };
        (!pool.is_empty()).then(|| pool[(pick / 8) % pool.len()])
    }

    /// `by` picks a user; `USERS` picks the owner of the lease's node.
    fn lease_party(
        &self,
        shadow: &State,
        lease: &LeaseId,
        by: usize,
    ) -> Option<&peercloud_types::Keypair> {
        if by < USERS {
            return Some(&self.users[by]);
        }
        let node = shadow.lease(lease)?.node;
        let index = self.nodes.iter().position(|n| n.node_id() == node)?;
        // Users 1..=3 own nodes 0..=2.
        Some(&self.users[index + 1])
    }

    /// The transaction for a lease op at block time `time_ms`, if it applies.
    pub(crate) fn lease_tx(
        &self,
        shadow: &State,
        op: &LeaseOp,
        time_ms: u64,
    ) -> Option<Signed<Tx>> {
        Some(match op {
            LeaseOp::Open {
                who,
                bids,
                fixed,
                period_s,
                deposit_periods,
                activate_s,
                late_offers,
            } => {
                let user = &self.users[*who];
                let request = LeaseRequest {
                    user: user.account_id(),
                    salt: time_ms,
                    kind: SpaceKind::Container,
                    resources: Resources::default(),
                    period_ms: period_s * 1_000,
                    periods: *fixed,
                    max_price_per_period: RESERVE,
                    filters: LeaseFilters::default(),
                    offers_until_ms: time_ms + 5_000,
                    activate_within_ms: activate_s * 1_000,
                };
                let digest = request.digest();
                let offers: Vec<_> = bids
                    .iter()
                    .enumerate()
                    .filter_map(|(i, bid)| {
                        let percent = (*bid)?;
                        let node = &self.nodes[i];
                        let offer = LeaseOffer {
                            request: digest,
                            node: node.node_id(),
                            price_per_period: RESERVE.checked_mul_div(percent, 100)?,
                            valid_until_ms: if *late_offers {
                                time_ms - 1
                            } else {
                                time_ms + 5_000
                            },
                        };
                        Some(Signed::new(offer, node))
                    })
                    .collect();
                let deposit = RESERVE.checked_mul(*deposit_periods)?;
                let kind = TxKind::OpenLease {
                    request,
                    offers,
                    deposit,
                };
                self.sign(shadow, user, kind)
            }
            LeaseOp::Activate { lease, stranger } => {
                let lease = self.lease(shadow, *lease, |s| s == LeaseStatus::Pending)?;
                let record = shadow.lease(&lease)?;
                let signer = if *stranger {
                    &self.users[0]
                } else {
                    self.users.iter().find(|u| u.account_id() == record.user)?
                };
                self.sign(shadow, signer, TxKind::ActivateLease { lease })
            }
            LeaseOp::Cancel { lease, by } => {
                let lease = self.lease(shadow, *lease, |s| s == LeaseStatus::Pending)?;
                let signer = self.lease_party(shadow, &lease, *by)?;
                self.sign(shadow, signer, TxKind::CancelLease { lease })
            }
            LeaseOp::Extend {
                lease,
                who,
                periods,
            } => {
                let lease = self.lease(shadow, *lease, |s| {
                    matches!(s, LeaseStatus::Pending | LeaseStatus::Active { .. })
                })?;
                let amount = shadow
                    .lease(&lease)?
                    .price_per_period
                    .checked_mul(*periods)?;
                self.sign(
                    shadow,
                    &self.users[*who],
                    TxKind::ExtendLease { lease, amount },
                )
            }
            LeaseOp::Bill {
                lease,
                periods,
                up,
                own_probe,
                stranger,
            } => {
                let lease = self.lease(shadow, *lease, |s| s.billable())?;
                let record = shadow.lease(&lease)?;
                let index = self.nodes.iter().position(|n| n.node_id() == record.node)?;
                let probers: Vec<_> = (1..NODES)
                    .map(|step| &self.nodes[(index + step) % NODES])
                    .take(*up)
                    .collect();
                let mut probes = Vec::new();
                for period in record.next_period..record.next_period + periods {
                    for prober in &probers {
                        let probe = LeaseProbe {
                            lease,
                            period,
                            prober: prober.node_id(),
                            up: true,
                        };
                        probes.push(Signed::new(probe, prober));
                    }
                    if *own_probe {
                        let node = &self.nodes[index];
                        let probe = LeaseProbe {
                            lease,
                            period,
                            prober: node.node_id(),
                            up: true,
                        };
                        probes.push(Signed::new(probe, node));
                    }
                }
                let signer = if *stranger {
                    &self.users[(index + 2) % USERS]
                } else {
                    &self.users[index + 1]
                };
                let kind = TxKind::BillLease {
                    lease,
                    periods: *periods,
                    probes,
                };
                self.sign(shadow, signer, kind)
            }
            LeaseOp::Close { lease, by } => {
                let lease =
                    self.lease(shadow, *lease, |s| matches!(s, LeaseStatus::Active { .. }))?;
                let signer = self.lease_party(shadow, &lease, *by)?;
                self.sign(shadow, signer, TxKind::CloseLease { lease })
            }
            LeaseOp::Settle { lease, by } => {
                let lease = self.lease(shadow, *lease, |s| s.billable())?;
                self.sign(shadow, &self.users[*by], TxKind::SettleLease { lease })
            }
        })
    }
}

/// Every lease's books: paid and refunded never above deposited, a final
/// lease holds nothing, and a settled lease's deposit went exactly to its
/// node and its user.
pub(crate) fn check_leases(state: &State) -> Result<(), TestCaseError> {
    for (lease, record) in state.leases() {
        let out = record.paid.checked_add(record.refunded);
        prop_assert!(
            out.is_some_and(|o| o <= record.deposited),
            "{} over-released",
            lease
        );
        if record.status.is_final() {
            prop_assert_eq!(
                out,
                Some(record.deposited),
                "{} did not give back all",
                lease
            );
        }
        if record.status == LeaseStatus::Cancelled {
            prop_assert!(
                record.paid.is_zero(),
                "{} paid its node without activation",
                lease
            );
        }
    }
    Ok(())
}
