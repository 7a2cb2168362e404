//! The farmer's call of the API: what this node earned from storage (its
//! earnings record, [`crate::daemon::Earnings`]) and how it stands on the
//! ledger, read together under the chain lock, so the balance and the
//! totals are of the same block.
//!
//! ```text
//!   GET /v1/earnings?limit=N ─► Service::earnings ─► EarningsView (payments, standing, audits)
//! ```

use axum::extract::{Query, State};
use peercloud_api::{
    AnsweredAuditView, ApiError, AuditAnswerKind, AuditCountsView, AuditJudgementView,
    AuditReportView, AuditsView, BucketEarningsView, ClusterStakeView, EARNINGS_LIMIT_DEFAULT,
    EARNINGS_LIMIT_MAX, EarningsQuery, EarningsView, PaymentKind, PaymentView, StandingView,
};
use peercloud_ledger::State as LedgerState;
use peercloud_ledger::billing::PaidFor;
use peercloud_types::{AccountId, Amount, NodeId};

use super::server::{Failure, rejection};
use super::service::Service;
use crate::daemon::{AUDITS_KEPT, AuditAnswer, AuditSummary, PAYMENTS_KEPT, Payment, Totals};

// A view may list every payment the node keeps in detail, and no more.
const _: () = assert!(EARNINGS_LIMIT_MAX as u64 == PAYMENTS_KEPT);
// The same limit bounds each list of audits, which keeps as many.
const _: () = assert!(EARNINGS_LIMIT_MAX as u64 == AUDITS_KEPT);

impl Service {
    /// `GET /v1/earnings`: this node's storage earnings (totals, per bucket,
    /// the newest `limit` payments) and its standing. A limit above
    /// [`EARNINGS_LIMIT_MAX`] is `bad_request`.
    pub fn earnings(&self, query: EarningsQuery) -> Result<EarningsView, ApiError> {
        let limit = query.limit.unwrap_or(EARNINGS_LIMIT_DEFAULT);
        if limit > EARNINGS_LIMIT_MAX {
            return Err(ApiError::bad_request(format!(
                "limit {limit}: a view lists 0..={EARNINGS_LIMIT_MAX} payments"
            )));
        }
        let inner = self.inner();
        let (node, owner) = (inner.node_id(), inner.owner_key.account_id());
        // Blocks are recorded under the chain lock: holding it, the record
        // and the state are at the same block.
        let chain = inner.chain();
        let summary = inner
            .earnings
            .summary(limit as usize)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let state = chain.state();
        let Totals {
            storage,
            bandwidth,
            repair,
            payments,
        } = summary.totals;
        Ok(EarningsView {
            node,
            owner,
            height: state.tip().map(|t| t.height),
            recorded_height: summary.recorded_height,
            storage,
            bandwidth,
            repair,
            total: sum(sum(storage, bandwidth), repair),
            payments,
            buckets: summary
                .buckets
                .into_iter()
                .map(|(bucket, t)| BucketEarningsView {
                    bucket,
                    storage: t.storage,
                    bandwidth: t.bandwidth,
                    repair: t.repair,
                    payments: t.payments,
                })
                .collect(),
            recent: summary.recent.into_iter().map(payment_view).collect(),
            standing: standing(state, &node, &owner),
            audits: audits_view(summary.audits),
        })
    }
}

fn audits_view(audits: AuditSummary) -> AuditsView {
    let counts = audits.answered;
    AuditsView {
        answered: AuditCountsView {
            proved: counts.proved,
            missing: counts.missing,
            corrupt: counts.corrupt,
            error: counts.error,
        },
        recent: audits
            .recent
            .into_iter()
            .map(|a| AnsweredAuditView {
                time_ms: a.time_ms,
                cid: a.cid,
                auditor: a.auditor,
                outcome: match a.outcome {
                    AuditAnswer::Proved => AuditAnswerKind::Proved,
                    AuditAnswer::Missing => AuditAnswerKind::Missing,
                    AuditAnswer::Corrupt => AuditAnswerKind::Corrupt,
                    AuditAnswer::Error => AuditAnswerKind::Error,
                },
            })
            .collect(),
        reports_total: audits.reports_total,
        reports: audits
            .reports
            .into_iter()
            .map(|r| AuditReportView {
                height: r.height,
                time_ms: r.time_ms,
                cluster: r.cluster,
                auditor: r.auditor,
                epoch: r.epoch,
                cid: r.cid,
            })
            .collect(),
        judgements_total: audits.judgements_total,
        judgements: audits
            .judgements
            .into_iter()
            .map(|j| AuditJudgementView {
                height: j.height,
                time_ms: j.time_ms,
                cluster: j.cluster,
                epoch: j.epoch,
                slashed: j.slashed,
                returned: j.returned,
            })
            .collect(),
    }
}

/// `a + b`, saturating (sums of real payments stay far below the bound).
fn sum(a: Amount, b: Amount) -> Amount {
    a.checked_add(b)
        .unwrap_or(Amount::from_base_units(u128::MAX))
}

fn payment_view(payment: Payment) -> PaymentView {
    PaymentView {
        height: payment.height,
        time_ms: payment.time_ms,
        bucket: payment.bucket,
        kind: match payment.paid_for {
            PaidFor::Storage => PaymentKind::Storage,
            PaidFor::Bandwidth => PaymentKind::Bandwidth,
            PaidFor::Repair => PaymentKind::Repair,
        },
        amount: payment.amount,
    }
}

/// How `node` and its `owner` stand on the ledger: reputation, stakes.
fn standing(state: &LedgerState, node: &NodeId, owner: &AccountId) -> StandingView {
    let record = state.node(node);
    let clusters: Vec<ClusterStakeView> = state
        .clusters()
        .filter_map(|(id, cluster)| {
            cluster.members.get(node).map(|member| ClusterStakeView {
                cluster: *id,
                status: member.status.into(),
                capacity_bytes: member.capacity_bytes,
                stake: member.stake,
            })
        })
        .collect();
    StandingView {
        registered: record.is_some(),
        reputation: record.map(|r| r.reputation),
        jobs_agreed: record.map_or(0, |r| r.jobs_agreed),
        jobs_faulted: record.map_or(0, |r| r.jobs_faulted),
        balance: state.balance(owner),
        stake: state.stake(owner),
        cluster_stake: clusters.iter().fold(Amount::ZERO, |t, c| sum(t, c.stake)),
        clusters,
    }
}

pub(super) async fn earnings(
    State(service): State<Service>,
    query: Result<Query<EarningsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<EarningsView>, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    Ok(axum::Json(service.earnings(query)?))
}
