//! Accounting: closing a day into its [`DayRow`] and the run into its
//! [`SimReport`] (summary, money, the ledger sample's cross-check).

use super::{DAYS_PER_MONTH, Engine, SUMMARY_DAYS};
use crate::config::SimConfig;
use crate::error::SimError;
use crate::farmers::{Farmer, FarmerStatus};
use crate::ledger::{LedgerCheck, cross_check};
use crate::report::{ClassSummary, DayRow, MoneyTotals, SimReport, mean, median, ratio};

impl Engine<'_> {
    pub(super) fn push_row(&mut self, day: u32, cost: [f64; 3]) {
        let mut acc = std::mem::take(&mut self.day);
        let active: Vec<&Farmer> = self
            .farmers
            .iter()
            .filter(|f| f.status == FarmerStatus::Active)
            .collect();
        let profitable = active.iter().filter(|f| f.window_totals().0 > 0.0).count();
        let multipliers: Vec<f64> = active.iter().map(|f| f.multiplier).collect();
        let samples = f64::from(acc.utilisation_samples.max(1));
        let profit = [0, 1, 2].map(|i| acc.revenue[i] - cost[i]);
        let per_month =
            |i: usize, per: f64| ratio(profit[i] * DAYS_PER_MONTH, self.capacity_total[i] / per);
        let row = DayRow {
            day,
            farmers_active: active.len(),
            farmers_joined: acc.joined,
            farmers_quit: acc.quit,
            farmers_profitable_share: ratio(profitable as f64, active.len() as f64),
            mean_multiplier: mean(&multipliers),
            users_active: self.users.active_count(),
            requests: acc.requests,
            awards: acc.awards,
            unserved: acc.unserved,
            price_core_hour_median_usd: median(&mut acc.core_hour_prices),
            price_core_hour_mean_usd: mean(&acc.core_hour_prices),
            price_vs_cloud_median: median(&mut acc.cloud_ratios),
            price_vs_cloud_mean: mean(&acc.cloud_ratios),
            utilisation_cpu: acc.utilisation_sum[0] / samples,
            utilisation_mem: acc.utilisation_sum[1] / samples,
            utilisation_disk: acc.utilisation_sum[2] / samples,
            revenue_usd: acc.revenue,
            cost_usd: cost,
            profit_usd: profit,
            profit_per_vcpu_month_usd: per_month(0, 1.0),
            profit_per_ram_gib_month_usd: per_month(1, 1.0),
            profit_per_disk_tib_month_usd: per_month(2, 1_024.0),
            user_paid_usd: acc.user_paid,
            cloud_equivalent_usd: acc.cloud_equivalent,
            user_cost_vs_cloud: ratio(acc.user_paid, acc.cloud_equivalent),
        };
        self.summary.requests += acc.requests;
        self.summary.awards += acc.awards;
        self.rows.push(row);
    }

    pub(super) fn finish(mut self) -> Result<SimReport, SimError> {
        let active: Vec<&Farmer> = self
            .farmers
            .iter()
            .filter(|f| f.status == FarmerStatus::Active)
            .collect();
        let initial_left = active.iter().filter(|f| f.initial).count();
        let s = &mut self.summary;
        s.farmers_end = active.len();
        s.initial_retained_share = ratio(initial_left as f64, s.farmers_start as f64);
        s.profitable_share_end = ratio(
            active.iter().filter(|f| f.window_totals().0 > 0.0).count() as f64,
            active.len() as f64,
        );
        s.by_hardware = by_hardware(self.config, &self.farmers);
        s.leases = self.leases.next_seq();
        s.book_refreshes = self.market.refreshes;
        s.served_share = ratio(s.awards as f64, s.requests as f64);
        let last = &self.rows[self.rows.len().saturating_sub(SUMMARY_DAYS)..];
        s.profit_usd = self.rows.iter().fold([0.0; 3], |acc, r| {
            [0, 1, 2].map(|i| acc[i] + r.profit_usd[i])
        });
        s.profit_per_vcpu_month_usd = mean(
            &last
                .iter()
                .map(|r| r.profit_per_vcpu_month_usd)
                .collect::<Vec<_>>(),
        );
        s.utilisation_cpu = mean(&last.iter().map(|r| r.utilisation_cpu).collect::<Vec<_>>());
        // Days without an award have no price.
        s.price_core_hour_median_usd = median(
            &mut last
                .iter()
                .filter(|r| r.awards > 0)
                .map(|r| r.price_core_hour_median_usd)
                .collect::<Vec<_>>(),
        );
        let (paid, cloud) = self.rows.iter().fold((0.0, 0.0), |(p, c), r| {
            (p + r.user_paid_usd, c + r.cloud_equivalent_usd)
        });
        s.user_cost_vs_cloud = ratio(paid, cloud);
        let money = MoneyTotals {
            deposited: self.leases.money.deposited,
            paid: self.leases.money.paid,
            refunded: self.leases.money.refunded,
            held: self.leases.held(),
        };
        let ledger = match self.ledger.take() {
            None => LedgerCheck::default(),
            Some(shadow) => cross_check(&self.leases.sampled_records(), &shadow.finish()?)?,
        };
        Ok(SimReport {
            seed: self.config.seed,
            days: self.rows,
            summary: self.summary,
            money,
            ledger,
        })
    }
}

/// The summary of each hardware class.
fn by_hardware(config: &SimConfig, farmers: &[Farmer]) -> Vec<ClassSummary> {
    let patience = f64::from(config.farmer.patience_days);
    config
        .farmer
        .hardware
        .iter()
        .enumerate()
        .map(|(class, hardware)| {
            let mine = || {
                farmers
                    .iter()
                    .filter(move |f| usize::from(f.class) == class)
            };
            let start = mine().filter(|f| f.initial).count();
            let active: Vec<&Farmer> = mine()
                .filter(|f| f.status == FarmerStatus::Active)
                .collect();
            let retained = active.iter().filter(|f| f.initial).count();
            let profitable = active.iter().filter(|f| f.window_totals().0 > 0.0).count();
            let profit: f64 = active.iter().map(|f| f.window_totals().0).sum();
            ClassSummary {
                hardware: hardware.name.clone(),
                start,
                end: active.len(),
                retained_share: ratio(retained as f64, start as f64),
                profitable_share: ratio(profitable as f64, active.len() as f64),
                profit_per_farmer_month_usd: ratio(
                    profit * DAYS_PER_MONTH / patience,
                    active.len() as f64,
                ),
            }
        })
        .collect()
}
