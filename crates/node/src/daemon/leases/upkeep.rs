//! The lease upkeep loop, after each block and every tick:
//!
//! - as a provider: make the spaces of leases this node won, stop those
//!   whose lease ended and remove them after the grace; bill each ended
//!   period with the probes reported for it; cancel an award nobody
//!   activated; settle a lease whose bill window is over;
//! - as a prober: once per period, echo a nonce through the space of each
//!   active lease this node is a prober of (the three nodes of other owners
//!   that rank first for the lease by rendezvous hashing), and hand the
//!   signed result to the leasing node; as the first prober, settle a lease
//!   its node left unsettled (a node that died: its user gets the rest back).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use peercloud_ledger::params::LEASE_BILL_PERIODS_MAX;
use peercloud_ledger::{LeaseRecord, LeaseStatus, TxKind, lease_settles_at_ms};
use peercloud_net::Protocol;
use peercloud_types::{AccountId, LeaseId, LeaseProbe, NodeId, Signed};
use tokio::sync::broadcast::error::RecvError;

use super::lock;
use super::space::{create, removal_ms, retire, should_run};
use crate::daemon::{Inner, now_ms};
use crate::wire::Message;

/// How often the loop runs when no block came.
const TICK: Duration = Duration::from_millis(500);
/// A period is billed this long after it ends: time for the last probes.
const PROBES_LATE_MS: u64 = 1_000;
/// How long after a lease could settle its first prober settles it (its
/// own node settles it first when it is up); the next prober waits twice
/// that, and so on.
const SETTLE_LATE_MS: u64 = 5_000;
/// Every this many rounds the spaces that should run are checked.
const CHECK_EVERY: u64 = 4;
/// Probers per lease.
pub const PROBERS: usize = 3;

/// What one round found to do.
#[derive(Debug, Default)]
struct Work {
    create: Vec<(LeaseId, LeaseRecord)>,
    stop: Vec<LeaseId>,
    remove: Vec<LeaseId>,
    /// Spaces that should run: checked now and then, started again when
    /// they stopped (a crash, a reboot, a lease extended after its stop).
    check: Vec<LeaseId>,
    txs: Vec<TxKind>,
    probe: Vec<(LeaseId, NodeId, u64)>,
}

/// The nodes that probe `lease` on `node`: of the registered nodes whose
/// owner is not `node`'s, the [`PROBERS`] that rank first by
/// BLAKE3(lease ‖ prober).
pub fn probers_of(
    nodes: impl Iterator<Item = (NodeId, AccountId)>,
    lease: &LeaseId,
    node_owner: &AccountId,
) -> Vec<NodeId> {
    let mut ranked: Vec<([u8; 32], NodeId)> = nodes
        .filter(|(_, owner)| owner != node_owner)
        .map(|(node, _)| {
            let mut hasher = blake3::Hasher::new_derive_key("peercloud lease prober v1");
            hasher.update(&lease.0.0);
            hasher.update(&node.key().0);
            (*hasher.finalize().as_bytes(), node)
        })
        .collect();
    ranked.sort();
    ranked.into_iter().take(PROBERS).map(|(_, n)| n).collect()
}

/// The probers of `lease` on a node owned by `node_owner`, as the state has
/// them: of the registered nodes whose owner has the stake to serve and is
/// not `node_owner`, the [`PROBERS`] that rank first.
pub(super) fn lease_probers(
    state: &peercloud_ledger::State,
    lease: &LeaseId,
    node_owner: &AccountId,
) -> Vec<NodeId> {
    let stake_min = state.params().stake_min_to_serve;
    let nodes = state
        .nodes()
        .filter(|(_, n)| state.stake(&n.owner) >= stake_min)
        .map(|(id, n)| (*id, n.owner));
    probers_of(nodes, lease, node_owner)
}

fn plan(inner: &Inner, probed: &HashSet<(LeaseId, u64)>, stopped: &HashSet<LeaseId>) -> Work {
    let me = inner.node_id();
    let my_owner = inner.owner_key.account_id();
    let spaces: HashSet<LeaseId> = lock(&inner.leases.spaces).keys().copied().collect();
    let busy: HashSet<LeaseId> = lock(&inner.leases.busy).clone();
    let chain = inner.chain();
    let state = chain.state();
    let now = state.tip().map_or(0, |t| t.time_ms).max(now_ms());
    let reported = lock(&inner.leases.probes);
    let mut work = Work::default();
    for (lease, record) in state.leases() {
        if record.node == me {
            let runs = should_run(record, now) && !busy.contains(lease);
            if runs && !spaces.contains(lease) && inner.leases.engine.is_some() {
                work.create.push((*lease, record.clone()));
            }
            if runs && spaces.contains(lease) {
                work.check.push(*lease);
            }
            if !should_run(record, now) && spaces.contains(lease) && !busy.contains(lease) {
                if now >= removal_ms(record) {
                    work.remove.push(*lease);
                } else if !stopped.contains(lease) {
                    work.stop.push(*lease);
                }
            }
            match record.status {
                LeaseStatus::Pending if now > record.activate_by_ms => {
                    work.txs.push(TxKind::CancelLease { lease: *lease });
                }
                LeaseStatus::Active { .. } | LeaseStatus::Closed { .. } => {
                    let probers = lease_probers(state, lease, &my_owner);
                    if let Some(bill) = bill_due(lease, record, now, &reported, &probers) {
                        work.txs.push(bill);
                    } else if lease_settles_at_ms(record).is_some_and(|at| now >= at) {
                        work.txs.push(TxKind::SettleLease { lease: *lease });
                    }
                }
                _ => {}
            }
            continue;
        }
        // Another node's lease: this node may be one of its probers.
        let Some(owner) = state.node(&record.node).map(|n| n.owner) else {
            continue;
        };
        if owner == my_owner || !record.status.billable() {
            continue;
        }
        let probers = lease_probers(state, lease, &owner);
        let Some(rank) = probers.iter().position(|p| *p == me) else {
            continue;
        };
        // A lease its node no longer settles (the node is gone): its probers
        // do, the first a little after the node could have, the next later
        // (the first may be gone too).
        let late = SETTLE_LATE_MS.saturating_mul(rank as u64 + 1);
        if lease_settles_at_ms(record).is_some_and(|at| now >= at.saturating_add(late)) {
            work.txs.push(TxKind::SettleLease { lease: *lease });
        }
        // Probe an active lease once per period.
        let (LeaseStatus::Active { since_ms }, Some(end)) = (record.status, record.end_ms()) else {
            continue;
        };
        if now >= end || record.period_ms == 0 {
            continue;
        }
        let period = (now - since_ms) / record.period_ms;
        if !probed.contains(&(*lease, period)) {
            work.probe.push((*lease, record.node, period));
        }
    }
    work
}

/// The bill of `lease`'s ended, unbilled periods (at most the ledger's
/// bound), with the probes reported for them.
fn bill_due(
    lease: &LeaseId,
    record: &LeaseRecord,
    now: u64,
    reported: &std::collections::HashMap<LeaseId, super::Reported>,
    probers: &[NodeId],
) -> Option<TxKind> {
    let total = record.periods_total()?;
    let first = record.next_period;
    let mut end = first;
    while end < total && end - first < LEASE_BILL_PERIODS_MAX {
        let (_, ends_ms) = record.period_span(end)?;
        if ends_ms.saturating_add(PROBES_LATE_MS) > now {
            break;
        }
        end += 1;
    }
    if end == first {
        return None;
    }
    let probes = reported
        .get(lease)
        .map(|periods| {
            periods
                .range(first..end)
                // Only what the ledger takes: a refused probe would refuse the bill.
                .flat_map(|(_, probes)| {
                    probes
                        .iter()
                        .filter(|p| p.body.up && probers.contains(&p.body.prober))
                        .cloned()
                })
                .collect()
        })
        .unwrap_or_default();
    Some(TxKind::BillLease {
        lease: *lease,
        periods: end - first,
        probes,
    })
}

/// Probes `lease`'s space on `node` for `period` and reports what it saw.
async fn probe(inner: Arc<Inner>, lease: LeaseId, node: NodeId, period: u64) {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return;
    }
    let nonce = u64::from_le_bytes(bytes);
    let answer = inner
        .ask(
            &node,
            Protocol::Space,
            &Message::SpaceProbe {
                lease,
                period,
                nonce,
            },
        )
        .await;
    let up = matches!(
        &answer,
        Ok(Message::SpaceOutput { exit_code: 0, stdout, .. })
            if String::from_utf8_lossy(stdout).trim() == nonce.to_string()
    );
    if !up {
        tracing::info!(%lease, %node, period, "space probe failed");
    }
    let report = Signed::new(
        LeaseProbe {
            lease,
            period,
            prober: inner.node_id(),
            up,
        },
        &inner.node_key,
    );
    if let Err(error) = inner
        .ask(&node, Protocol::Space, &Message::LeaseProbeReport(report))
        .await
    {
        tracing::debug!(%lease, %error, "probe report not delivered");
    }
}

/// Starts `lease`'s space again if it stopped; forgets it if the engine
/// lost it.
async fn revive(inner: &Arc<Inner>, lease: LeaseId, space: peercloud_space::Space) {
    let Some(engine) = &inner.leases.engine else {
        return;
    };
    match engine.state(&space).await {
        Ok(peercloud_space::SpaceState::Running) => {}
        Ok(peercloud_space::SpaceState::Exited { code, oom_killed }) => {
            tracing::warn!(%lease, code, oom_killed, "space stopped; starting it again");
            if let Err(error) = engine.start(&space).await {
                tracing::warn!(%lease, %error, "space not started again");
            }
        }
        Ok(peercloud_space::SpaceState::Missing) => {
            tracing::warn!(%lease, "space gone from the engine; making it anew");
            lock(&inner.leases.spaces).remove(&lease);
        }
        Err(error) => tracing::debug!(%lease, %error, "space state not read"),
    }
}

/// Runs the upkeep after each block this node commits and every [`TICK`].
pub(crate) async fn upkeep_loop(inner: Arc<Inner>) {
    let mut blocks = inner.committed.subscribe();
    let mut probed: HashSet<(LeaseId, u64)> = HashSet::new();
    let mut stopped: HashSet<LeaseId> = HashSet::new();
    let mut round: u64 = 0;
    loop {
        round += 1;
        tokio::select! {
            received = blocks.recv() => match received {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep(TICK) => {}
        }
        let work = plan(&inner, &probed, &stopped);
        for (lease, node, period) in work.probe {
            probed.insert((lease, period));
            tokio::spawn(probe(inner.clone(), lease, node, period));
        }
        // The engine's work runs beside the loop (a stop or a removal must
        // not hold up the next lease's space, nor the bills).
        for (lease, record) in work.create {
            lock(&inner.leases.busy).insert(lease);
            let inner = inner.clone();
            tokio::spawn(async move {
                create(&inner, lease, &record).await;
                lock(&inner.leases.busy).remove(&lease);
            });
        }
        for (lease, remove) in work
            .stop
            .into_iter()
            .map(|l| (l, false))
            .chain(work.remove.into_iter().map(|l| (l, true)))
        {
            let Some(space) = lock(&inner.leases.spaces).get(&lease).cloned() else {
                continue;
            };
            lock(&inner.leases.busy).insert(lease);
            if remove {
                stopped.remove(&lease);
            } else {
                stopped.insert(lease);
            }
            let inner = inner.clone();
            tokio::spawn(async move {
                retire(&inner, lease, space, remove).await;
                if remove {
                    lock(&inner.leases.probes).remove(&lease);
                }
                lock(&inner.leases.busy).remove(&lease);
            });
        }
        // A space that should run but stopped (or one this node stopped
        // whose lease runs again) is started; one the engine lost is
        // forgotten, and the next round makes it anew.
        for lease in work.check {
            let restart = stopped.remove(&lease);
            if !restart && !round.is_multiple_of(CHECK_EVERY) {
                continue;
            }
            let Some(space) = lock(&inner.leases.spaces).get(&lease).cloned() else {
                continue;
            };
            lock(&inner.leases.busy).insert(lease);
            let inner = inner.clone();
            tokio::spawn(async move {
                revive(&inner, lease, space).await;
                lock(&inner.leases.busy).remove(&lease);
            });
        }
        for kind in work.txs {
            let name = kind.name();
            if let Err(error) = inner.sign_and_submit(&inner.owner_key, kind, true).await {
                tracing::info!(%error, "{name} not committed; retrying");
            }
        }
        // Forget the probes of leases that ended.
        let now = now_ms();
        let chain = inner.chain();
        let state = chain.state();
        probed.retain(|(lease, _)| {
            state
                .lease(lease)
                .is_some_and(|l| l.end_ms().is_some_and(|end| end > now))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Hash32, Keypair};

    #[test]
    fn probers_are_other_owners_nodes_chosen_the_same_everywhere() {
        let lease = LeaseId(Hash32::of(b"lease"));
        let owner = |i: u8| Keypair::from_seed(&[i; 32]).account_id();
        let node = |i: u8| Keypair::from_seed(&[100 + i; 32]).node_id();
        let nodes: Vec<(NodeId, AccountId)> = (0..8).map(|i| (node(i), owner(i % 4))).collect();
        let chosen = probers_of(nodes.iter().copied(), &lease, &owner(0));
        assert_eq!(chosen.len(), PROBERS);
        assert!(
            chosen.iter().all(|n| *n != node(0) && *n != node(4)),
            "owner 0's nodes never probe"
        );
        let mut shuffled = nodes.clone();
        shuffled.reverse();
        assert_eq!(probers_of(shuffled.into_iter(), &lease, &owner(0)), chosen);
        let other = probers_of(nodes.into_iter(), &LeaseId(Hash32::of(b"other")), &owner(0));
        assert_eq!(other.len(), PROBERS);
    }
}
