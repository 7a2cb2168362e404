//! Accounting: what a run measures each day and in all, and the report it
//! returns. Prices and money are in US dollars (one token is valued at one
//! dollar); the exact base-unit totals of the fast path are kept beside
//! them for the conservation check.

use serde::Serialize;

use crate::ledger::LedgerCheck;

/// One simulated day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayRow {
    /// Day number, from 1.
    pub day: u32,
    /// Farmers in the market at the day's end.
    pub farmers_active: usize,
    /// Farmers that joined during the day.
    pub farmers_joined: usize,
    /// Farmers that quit during the day.
    pub farmers_quit: usize,
    /// Share of the active farmers whose profit over the patience window is positive.
    pub farmers_profitable_share: f64,
    /// Mean floor multiplier of the active farmers (1.0 = priced at full cost).
    pub mean_multiplier: f64,
    /// Users in the market at the day's end.
    pub users_active: usize,
    /// Requests made.
    pub requests: u64,
    /// Requests awarded.
    pub awards: u64,
    /// Requests no offer met (the user went to the cloud).
    pub unserved: u64,
    /// Median clearing price per vCPU-hour (the CPU part of the award), USD.
    pub price_core_hour_median_usd: f64,
    /// Mean clearing price per vCPU-hour, USD.
    pub price_core_hour_mean_usd: f64,
    /// Median award price over the cloud list's price for the same lease.
    pub price_vs_cloud_median: f64,
    /// Mean award price over the cloud list's price.
    pub price_vs_cloud_mean: f64,
    /// Share of the active farmers' vCPUs leased, averaged over the day.
    pub utilisation_cpu: f64,
    /// Share of their memory leased.
    pub utilisation_mem: f64,
    /// Share of their disk leased.
    pub utilisation_disk: f64,
    /// Farmers' revenue per resource (cpu, mem, disk), USD.
    pub revenue_usd: [f64; 3],
    /// Farmers' costs per resource (cpu, mem, disk), USD.
    pub cost_usd: [f64; 3],
    /// Farmers' profit per resource (cpu, mem, disk), USD.
    pub profit_usd: [f64; 3],
    /// Profit per vCPU offered per month (30 days), USD.
    pub profit_per_vcpu_month_usd: f64,
    /// Profit per GiB of RAM offered per month, USD.
    pub profit_per_ram_gib_month_usd: f64,
    /// Profit per TiB of disk offered per month, USD.
    pub profit_per_disk_tib_month_usd: f64,
    /// What users paid (periods billed up), USD.
    pub user_paid_usd: f64,
    /// What the cloud list charges for the same periods, USD.
    pub cloud_equivalent_usd: f64,
    /// `user_paid_usd / cloud_equivalent_usd`.
    pub user_cost_vs_cloud: f64,
}

/// The run in a few numbers: the answer to "are incentives sufficient".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The price list the reserves came from.
    pub prices: String,
    /// Farmers at the start.
    pub farmers_start: usize,
    /// Farmers in the market at the end.
    pub farmers_end: usize,
    /// Share of the starting farmers still in the market at the end.
    pub initial_retained_share: f64,
    /// Farmers that joined.
    pub farmers_joined: usize,
    /// Farmers that quit.
    pub farmers_quit: usize,
    /// Share of the farmers at the end whose profit over the patience
    /// window is positive.
    pub profitable_share_end: f64,
    /// Farmers' profit per resource over the run (cpu, mem, disk), USD.
    pub profit_usd: [f64; 3],
    /// Profit per vCPU offered per month over the last week, USD.
    pub profit_per_vcpu_month_usd: f64,
    /// Mean CPU utilisation over the last week.
    pub utilisation_cpu: f64,
    /// Median clearing price per vCPU-hour over the last week, USD.
    pub price_core_hour_median_usd: f64,
    /// The cloud list's price per vCPU-hour, USD.
    pub cloud_vcpu_hour_usd: f64,
    /// What users paid over what the cloud would have charged, whole run.
    pub user_cost_vs_cloud: f64,
    /// Requests, whole run.
    pub requests: u64,
    /// Awards, whole run.
    pub awards: u64,
    /// Share of requests awarded.
    pub served_share: f64,
    /// Leases opened.
    pub leases: u64,
    /// Awards whose price was under the winner's floor (the rules make it 0).
    pub awards_under_floor: u64,
    /// Awards whose price was over the user's reserve (the rules make it 0).
    pub awards_over_reserve: u64,
    /// Times the offer books were built again within an hour because the
    /// nodes at their tops had all declined (see `market.rs`).
    pub book_refreshes: u64,
    /// The same, per hardware class.
    pub by_hardware: Vec<ClassSummary>,
}

/// How the farmers of one hardware class fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassSummary {
    /// The hardware class.
    pub hardware: String,
    /// Its farmers at the start.
    pub start: usize,
    /// Its farmers in the market at the end (newcomers included).
    pub end: usize,
    /// Share of its starting farmers still in the market.
    pub retained_share: f64,
    /// Share of its farmers at the end that are profitable.
    pub profitable_share: f64,
    /// Mean profit per farmer over the last patience window, per month (30 days), USD.
    pub profit_per_farmer_month_usd: f64,
}

/// Exact money of the fast path, base units (1e-9 USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MoneyTotals {
    /// Locked by users as deposits.
    pub deposited: u128,
    /// Paid to farmers.
    pub paid: u128,
    /// Given back to users.
    pub refunded: u128,
    /// Still held by live leases.
    pub held: u128,
}

impl MoneyTotals {
    /// Whether every deposited unit is paid, refunded or still held.
    pub fn balanced(&self) -> bool {
        self.paid
            .checked_add(self.refunded)
            .and_then(|sum| sum.checked_add(self.held))
            == Some(self.deposited)
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SimReport {
    /// The seed it ran with.
    pub seed: u64,
    /// One row per day.
    pub days: Vec<DayRow>,
    /// The whole run.
    pub summary: Summary,
    /// The fast path's money.
    pub money: MoneyTotals,
    /// The ledger sample's check (all zero when none ran).
    pub ledger: LedgerCheck,
}

/// What a day gathers as it runs.
#[derive(Debug, Clone, Default)]
pub struct DayAccumulator {
    /// Requests made.
    pub requests: u64,
    /// Requests awarded.
    pub awards: u64,
    /// Requests not served.
    pub unserved: u64,
    /// Farmers that joined.
    pub joined: usize,
    /// Farmers that quit.
    pub quit: usize,
    /// Each award's price per vCPU-hour, USD.
    pub core_hour_prices: Vec<f64>,
    /// Each award's price over the cloud's.
    pub cloud_ratios: Vec<f64>,
    /// Sum of the hourly utilisation samples (cpu, mem, disk).
    pub utilisation_sum: [f64; 3],
    /// Hourly samples taken.
    pub utilisation_samples: u32,
    /// Revenue per resource, USD.
    pub revenue: [f64; 3],
    /// Users' payments, USD.
    pub user_paid: f64,
    /// The cloud's price of the same periods, USD.
    pub cloud_equivalent: f64,
}

/// The median of `values` (sorts them); 0 when empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The mean of `values`; 0 when empty.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_balances() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
        let money = MoneyTotals {
            deposited: 10,
            paid: 4,
            refunded: 5,
            held: 1,
        };
        assert!(money.balanced());
        assert!(!MoneyTotals { held: 2, ..money }.balanced());
    }
}
