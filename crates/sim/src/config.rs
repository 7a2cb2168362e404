//! The simulation's parameters: how many agents, for how long, what
//! electricity and hardware cost, how much demand there is, and the
//! behaviours of farmers and users. Every field says its unit; the defaults
//! are the scenario the README's plots come from.

use serde::{Deserialize, Serialize};

use crate::error::SimError;
use crate::prices::CloudPrices;

/// One kind of machine a farmer may run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HardwareClass {
    /// Shown in outputs.
    pub name: String,
    /// Hardware threads offered (a vCPU each).
    pub vcpus: u32,
    /// Memory offered, GiB.
    pub ram_gib: u32,
    /// Disk offered, GiB.
    pub disk_gib: u32,
    /// Purchase price, USD (scaled by [`SimConfig::hardware_cost_scale`]).
    pub cost_usd: f64,
    /// Power drawn idle, watts.
    pub idle_watts: f64,
    /// Power drawn with every vCPU busy, watts.
    pub full_watts: f64,
    /// How often farmers run it, relative to the other classes.
    pub weight: f64,
}

/// One container size users ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseSize {
    /// Shown in outputs.
    pub name: String,
    /// vCPUs.
    pub vcpus: u32,
    /// Memory, GiB.
    pub ram_gib: u32,
    /// Disk, GiB.
    pub disk_gib: u32,
    /// How often it is asked for, relative to the other sizes.
    pub weight: f64,
}

/// How farmers price, decide and come and go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FarmerParams {
    /// Each farmer's electricity price is the scenario's times a factor
    /// drawn uniformly in `1 ± spread` (farmers live in different places).
    pub electricity_spread: f64,
    /// Internet share, maintenance and the like, USD per month per farmer.
    pub overhead_usd_month: f64,
    /// What a vCPU, a GiB of RAM and a GiB of disk cost as parts, USD: only
    /// their ratios matter, they split a farmer's fixed costs (hardware,
    /// idle power, overhead) among the three resources.
    pub cost_split_usd: [f64; 3],
    /// A farmer's floor is its full cost per unit at 100% use times a
    /// multiplier, first drawn uniformly in this range.
    pub multiplier_initial: [f64; 2],
    /// The multiplier never leaves this range (the floor never goes under
    /// the marginal electricity cost of the load either).
    pub multiplier_bounds: [f64; 2],
    /// Once a day a farmer whose CPU was used less than the first fraction
    /// lowers its multiplier, more than the second raises it.
    pub utilisation_band: [f64; 2],
    /// The factor of one daily change of the multiplier (down: divided by it).
    pub multiplier_step: f64,
    /// A farmer whose profit over the last this many days (full cost:
    /// electricity, overhead and hardware amortisation) is negative may
    /// quit; newcomers are left alone for as long.
    pub patience_days: u32,
    /// The chance a day that an unprofitable farmer quits.
    pub quit_probability: f64,
    /// At most this share of the farmers joins in a day, when the market's
    /// profit margin (profit / cost over the patience window) reaches twice
    /// the hurdle; none joins under the hurdle, linearly in between.
    pub entry_rate_max: f64,
    /// The profit margin newcomers want before they buy hardware.
    pub entry_hurdle: f64,
    /// Each farmer's chance that a billing period is up, drawn uniformly in
    /// this range; a period nobody proved up is credited to the user.
    pub availability: [f64; 2],
    /// The machines, with how often each is run.
    pub hardware: Vec<HardwareClass>,
}

/// What users want and how they behave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserParams {
    /// Leases a user holds at once on average at demand 1.0 (the arrival
    /// rate follows from it and the mean lease length).
    pub leases_per_user: f64,
    /// A user's reserve is the cloud price of the lease times a willingness
    /// drawn uniformly in this range (a less proven service is worth less).
    pub reserve_share: [f64; 2],
    /// The chance a day that a user leaves (its leases are closed).
    pub churn_per_day: f64,
    /// The chance a user leaves when no offer met its reserve (it goes to
    /// the cloud).
    pub churn_when_unserved: f64,
    /// The share of requests that ask for the user's own continent only.
    pub region_filter_share: f64,
    /// The share of leases billed by the hour (the rest by the day).
    pub hourly_share: f64,
    /// Length of an hourly-billed lease, hours, uniform in this range.
    pub hourly_lengths: [u32; 2],
    /// Length of a daily-billed lease, days, uniform in this range.
    pub daily_lengths: [u32; 2],
    /// The container sizes asked for.
    pub sizes: Vec<LeaseSize>,
}

/// Every parameter of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The random seed: the same config and seed give the same report.
    pub seed: u64,
    /// Farmers at the start.
    pub farmers: usize,
    /// Users at the start (and the population new users refill towards).
    pub users: usize,
    /// Simulated days (one step is one hour).
    pub days: u32,
    /// The cloud price list reserves and comparisons come from.
    pub prices: CloudPrices,
    /// The scenario's electricity price, USD per kWh.
    pub electricity_usd_kwh: f64,
    /// Demand relative to the default (1.0): scales the arrival rate.
    pub demand: f64,
    /// Hardware prices relative to the catalogue's.
    pub hardware_cost_scale: f64,
    /// Months over which a farmer writes its hardware off.
    pub hardware_life_months: f64,
    /// Sealed bids a user takes per request (the ledger allows up to 64).
    pub bids_per_request: usize,
    /// Every this many-th lease is also run on the real ledger and checked
    /// against the fast path; 0 runs none.
    pub ledger_every: u64,
    /// Farmers' behaviour.
    pub farmer: FarmerParams,
    /// Users' behaviour.
    pub user: UserParams,
}

fn hardware(
    name: &str,
    (vcpus, ram_gib, disk_gib): (u32, u32, u32),
    cost_usd: f64,
    (idle_watts, full_watts): (f64, f64),
    weight: f64,
) -> HardwareClass {
    HardwareClass {
        name: name.into(),
        vcpus,
        ram_gib,
        disk_gib,
        cost_usd,
        idle_watts,
        full_watts,
        weight,
    }
}

fn size(name: &str, vcpus: u32, ram_gib: u32, disk_gib: u32, weight: f64) -> LeaseSize {
    LeaseSize {
        name: name.into(),
        vcpus,
        ram_gib,
        disk_gib,
        weight,
    }
}

impl Default for FarmerParams {
    fn default() -> Self {
        FarmerParams {
            electricity_spread: 0.4,
            overhead_usd_month: 5.0,
            cost_split_usd: [25.0, 3.0, 0.05],
            multiplier_initial: [1.2, 3.0],
            multiplier_bounds: [0.3, 8.0],
            utilisation_band: [0.4, 0.8],
            multiplier_step: 1.1,
            patience_days: 7,
            quit_probability: 0.3,
            entry_rate_max: 0.02,
            entry_hurdle: 0.25,
            availability: [0.97, 1.0],
            // A mini PC, a workstation, a used rack server: street prices
            // and wall-socket power draws of 2024-2025.
            hardware: vec![
                hardware("mini-pc", (8, 32, 1_000), 450.0, (8.0, 45.0), 0.45),
                hardware("workstation", (16, 64, 2_000), 1_400.0, (35.0, 180.0), 0.35),
                hardware("server", (64, 256, 8_000), 5_500.0, (110.0, 450.0), 0.20),
            ],
        }
    }
}

impl Default for UserParams {
    fn default() -> Self {
        UserParams {
            leases_per_user: 0.55,
            reserve_share: [0.5, 1.0],
            churn_per_day: 0.003,
            churn_when_unserved: 0.1,
            region_filter_share: 0.2,
            hourly_share: 0.5,
            hourly_lengths: [1, 48],
            daily_lengths: [2, 30],
            sizes: vec![
                size("xs", 1, 1, 10, 0.25),
                size("s", 1, 2, 20, 0.25),
                size("m", 2, 4, 40, 0.25),
                size("l", 4, 8, 80, 0.15),
                size("xl", 8, 32, 200, 0.10),
            ],
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            farmers: 10_000,
            users: 100_000,
            days: 30,
            prices: CloudPrices::default(),
            electricity_usd_kwh: 0.20,
            demand: 1.0,
            hardware_cost_scale: 1.0,
            hardware_life_months: 36.0,
            bids_per_request: 5,
            ledger_every: 100,
            farmer: FarmerParams::default(),
            user: UserParams::default(),
        }
    }
}

/// Most farmers or users a run takes: far past the speed target, and it
/// keeps every index in a `u32`.
pub const AGENTS_MAX: usize = 10_000_000;
/// Most simulated days: the ledger's lease periods and the time wheel stay small.
pub const DAYS_MAX: u32 = 3_650;

fn param(name: &'static str, value: impl std::fmt::Display, reason: &'static str) -> SimError {
    SimError::Param {
        name,
        value: value.to_string(),
        reason,
    }
}

fn check(
    ok: bool,
    name: &'static str,
    value: impl std::fmt::Display,
    reason: &'static str,
) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(param(name, value, reason))
    }
}

fn positive(name: &'static str, value: f64) -> Result<(), SimError> {
    check(
        value.is_finite() && value > 0.0,
        name,
        value,
        "must be a positive number",
    )
}

fn probability(name: &'static str, value: f64) -> Result<(), SimError> {
    check(
        (0.0..=1.0).contains(&value),
        name,
        value,
        "must be in 0..=1",
    )
}

fn range(name: &'static str, [low, high]: [f64; 2]) -> Result<(), SimError> {
    check(
        low.is_finite() && high.is_finite() && low >= 0.0 && low <= high,
        name,
        format!("{low}..{high}"),
        "must be a range of numbers >= 0, low first",
    )
}

impl SimConfig {
    /// A smaller market of the same shape: `farmers` and `users`, the rest
    /// as `self`.
    pub fn with_agents(&self, farmers: usize, users: usize) -> SimConfig {
        SimConfig {
            farmers,
            users,
            ..self.clone()
        }
    }

    /// Checks every parameter is in its range.
    pub fn validate(&self) -> Result<(), SimError> {
        check(
            self.farmers <= AGENTS_MAX,
            "farmers",
            self.farmers,
            "at most 10,000,000",
        )?;
        check(
            self.users <= AGENTS_MAX,
            "users",
            self.users,
            "at most 10,000,000",
        )?;
        check(
            (1..=DAYS_MAX).contains(&self.days),
            "days",
            self.days,
            "must be in 1..=3650",
        )?;
        self.prices
            .validate()
            .map_err(|reason| param("prices", &self.prices.name, reason))?;
        positive("electricity_usd_kwh", self.electricity_usd_kwh)?;
        check(
            self.demand.is_finite() && self.demand >= 0.0,
            "demand",
            self.demand,
            "must be a number >= 0",
        )?;
        positive("hardware_cost_scale", self.hardware_cost_scale)?;
        positive("hardware_life_months", self.hardware_life_months)?;
        check(
            (1..=peercloud_ledger::params::LEASE_OFFERS_MAX).contains(&self.bids_per_request),
            "bids_per_request",
            self.bids_per_request,
            "must be in 1..=64 (the ledger's LEASE_OFFERS_MAX)",
        )?;
        self.farmer.validate()?;
        self.user.validate()
    }
}

impl FarmerParams {
    fn validate(&self) -> Result<(), SimError> {
        check(
            (0.0..1.0).contains(&self.electricity_spread),
            "electricity_spread",
            self.electricity_spread,
            "must be in 0..1",
        )?;
        check(
            self.overhead_usd_month.is_finite() && self.overhead_usd_month >= 0.0,
            "overhead_usd_month",
            self.overhead_usd_month,
            "must be a number >= 0",
        )?;
        for part in self.cost_split_usd {
            positive("cost_split_usd", part)?;
        }
        range("multiplier_initial", self.multiplier_initial)?;
        range("multiplier_bounds", self.multiplier_bounds)?;
        positive("multiplier_bounds", self.multiplier_bounds[0])?;
        range("utilisation_band", self.utilisation_band)?;
        check(
            self.multiplier_step >= 1.0,
            "multiplier_step",
            self.multiplier_step,
            "must be >= 1",
        )?;
        check(
            self.patience_days >= 1,
            "patience_days",
            self.patience_days,
            "must be >= 1",
        )?;
        probability("quit_probability", self.quit_probability)?;
        probability("entry_rate_max", self.entry_rate_max)?;
        positive("entry_hurdle", self.entry_hurdle)?;
        range("availability", self.availability)?;
        probability("availability", self.availability[1])?;
        check(
            !self.hardware.is_empty(),
            "hardware",
            0,
            "needs at least one class",
        )?;
        for class in &self.hardware {
            check(
                class.vcpus > 0 && class.ram_gib > 0 && class.disk_gib > 0,
                "hardware",
                &class.name,
                "every class needs vCPUs, RAM and disk",
            )?;
            positive("hardware.cost_usd", class.cost_usd)?;
            positive("hardware.weight", class.weight)?;
            check(
                class.idle_watts >= 0.0 && class.idle_watts <= class.full_watts,
                "hardware.idle_watts",
                class.idle_watts,
                "must be in 0..=full_watts",
            )?;
        }
        Ok(())
    }
}

impl UserParams {
    fn validate(&self) -> Result<(), SimError> {
        positive("leases_per_user", self.leases_per_user)?;
        range("reserve_share", self.reserve_share)?;
        probability("churn_per_day", self.churn_per_day)?;
        probability("churn_when_unserved", self.churn_when_unserved)?;
        probability("region_filter_share", self.region_filter_share)?;
        probability("hourly_share", self.hourly_share)?;
        let [low, high] = self.hourly_lengths;
        check(
            low >= 1 && low <= high,
            "hourly_lengths",
            low,
            "must be a range >= 1, low first",
        )?;
        let [low, high] = self.daily_lengths;
        check(
            low >= 1 && low <= high,
            "daily_lengths",
            low,
            "must be a range >= 1, low first",
        )?;
        check(
            !self.sizes.is_empty(),
            "sizes",
            0,
            "needs at least one size",
        )?;
        for size in &self.sizes {
            check(
                size.vcpus > 0 && size.ram_gib > 0,
                "sizes",
                &size.name,
                "every size needs vCPUs and RAM",
            )?;
            positive("sizes.weight", size.weight)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        assert!(SimConfig::default().validate().is_ok());
        let config = SimConfig {
            electricity_usd_kwh: -1.0,
            ..SimConfig::default()
        };
        let error = config.validate().err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("electricity_usd_kwh")));
        let config = SimConfig {
            bids_per_request: 65,
            ..SimConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
