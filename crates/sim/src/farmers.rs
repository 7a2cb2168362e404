//! Farmers: a machine each, what running it costs, the floor they price
//! from it, and the daily decisions (reprice, quit, join).
//!
//! ```text
//!  hardware ÷ life + overhead + idle power ──► fixed cost / hour ──split by parts──► cpu, mem, disk
//!  (full − idle power) × busy vCPUs ─────────► marginal cost / hour ──────────────► cpu
//!  full cost per unit at 100% use × multiplier ──► PriceSheet (never under the marginal cost)
//!  PriceSheet ──► lease_floor per market class ──► lease_bid(floor, utilisation) ──► standing offer
//! ```
//!
//! Once a day a farmer moves its multiplier towards its utilisation band
//! (busy: dearer, idle: cheaper), and one whose profit over the patience
//! window is negative may quit, closing its leases.

use std::collections::VecDeque;

use peercloud_ledger::params::REPUTATION_START;
use peercloud_market::{PricePolicy, lease_floor};
use peercloud_types::{Amount, NodeId, PriceSheet, Resources};

use crate::config::{FarmerParams, HardwareClass, SimConfig};
use crate::prices::{BASE_UNITS_PER_USD, BYTES_PER_GIB, HOURS_PER_MONTH, MILLICORES_PER_VCPU};
use crate::random::{Random, keypair};

/// Where farmers are: a node's location, matched by prefix (`eu`, `us`,
/// `ap`) by the requests that filter on a continent.
pub const LOCATIONS: [&str; 8] = [
    "eu-west/paris",
    "eu-central/frankfurt",
    "eu-north/stockholm",
    "us-east/virginia",
    "us-central/texas",
    "us-west/oregon",
    "ap-east/tokyo",
    "ap-south/mumbai",
];
/// How often farmers are at each of [`LOCATIONS`].
const LOCATION_WEIGHTS: [f64; 8] = [0.2, 0.15, 0.1, 0.15, 0.1, 0.1, 0.1, 0.1];
/// The continents a request may filter on: a prefix of [`LOCATIONS`].
pub const CONTINENTS: [&str; 3] = ["eu", "us", "ap"];
/// The continent of each of [`LOCATIONS`], an index into [`CONTINENTS`].
pub const CONTINENT_OF: [usize; 8] = [0, 0, 0, 1, 1, 1, 2, 2];
/// Bandwidth every node offers; requests ask none (it is billed by use).
const BANDWIDTH_BYTES_PER_SEC: u64 = 100 << 20;

/// Whether a farmer is in the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FarmerStatus {
    /// Offering capacity.
    Active,
    /// Quit: its leases closed, it offers nothing.
    Gone,
}

/// One farmer and its one node.
#[derive(Debug, Clone)]
pub struct Farmer {
    /// The node's id (a real ed25519 key: ids rank and tie as on the network).
    pub node: NodeId,
    /// Index into [`LOCATIONS`].
    pub location: u8,
    /// Index into the config's hardware classes.
    pub class: u8,
    /// What the node offers.
    pub capacity: Resources,
    /// What its live leases hold.
    pub allocated: Resources,
    /// Its electricity price, USD per kWh.
    pub electricity_usd_kwh: f64,
    /// Power idle and full, watts.
    pub watts: [f64; 2],
    /// Hardware amortisation, overhead and idle power, USD per hour.
    pub fixed_usd_hour: f64,
    /// The fixed cost's split among cpu, mem and disk (sums to 1).
    pub shares: [f64; 3],
    /// Its floor over its full cost per unit.
    pub multiplier: f64,
    /// Its prices (the floor) and surge curve.
    pub policy: PricePolicy,
    /// Its floor per period for each market class (size × billing period).
    pub floors: Vec<Amount>,
    /// The chance a billing period is up.
    pub availability: f64,
    /// Its reputation, moved as the ledger moves it (ties in the offer book).
    pub reputation: u32,
    /// In the market or gone.
    pub status: FarmerStatus,
    /// Whether it was there at the start (retention counts these).
    pub initial: bool,
    /// The day it joined.
    pub joined_day: u32,
    /// Slots of its live leases.
    pub leases: Vec<u32>,
    /// The market tick of its last change (dirty in books built before it).
    pub changed_tick: u64,
    /// The step its busy time was last integrated to.
    pub integrated_step: u64,
    /// This day's revenue per resource, USD.
    pub day_revenue: [f64; 3],
    /// This day's busy vCPU-hours.
    pub day_busy_vcpu_hours: f64,
    /// (profit, cost) of each of the last `patience_days` days, USD.
    pub window: VecDeque<(f64, f64)>,
    /// Profit since it joined, USD.
    pub total_profit: f64,
}

/// A farmer's costs for one day, per resource, USD.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayCost {
    /// cpu, mem, disk.
    pub parts: [f64; 3],
}

impl DayCost {
    /// All three.
    pub fn total(&self) -> f64 {
        self.parts.iter().sum()
    }
}

/// Draws a farmer: its machine, place, electricity price and availability.
pub fn draw_farmer(
    config: &SimConfig,
    random: &mut Random,
    index: u32,
    day: u32,
    multiplier: f64,
    classes: &[(Resources, u64)],
) -> Farmer {
    let params = &config.farmer;
    let weights: Vec<f64> = params.hardware.iter().map(|h| h.weight).collect();
    let class = random.weighted(&weights);
    let hardware = &params.hardware[class];
    let location = random.weighted(&LOCATION_WEIGHTS);
    let spread = params.electricity_spread;
    let electricity_usd_kwh =
        config.electricity_usd_kwh * random.between(1.0 - spread, 1.0 + spread);
    let [low, high] = params.availability;
    let availability = random.between(low, high);
    let node = keypair(config.seed, "node", u64::from(index)).node_id();
    let fixed_usd_hour = fixed_usd_hour(config, hardware, electricity_usd_kwh);
    let mut farmer = Farmer {
        node,
        location: location as u8,
        class: class as u8,
        capacity: capacity(hardware),
        allocated: Resources::default(),
        electricity_usd_kwh,
        watts: [hardware.idle_watts, hardware.full_watts],
        fixed_usd_hour,
        shares: shares(params, hardware),
        multiplier,
        policy: PricePolicy::new(PriceSheet::default()),
        floors: Vec::new(),
        availability,
        reputation: REPUTATION_START,
        status: FarmerStatus::Active,
        initial: day == 0,
        joined_day: day,
        leases: Vec::new(),
        changed_tick: 0,
        integrated_step: u64::from(day) * 24,
        day_revenue: [0.0; 3],
        day_busy_vcpu_hours: 0.0,
        window: VecDeque::new(),
        total_profit: 0.0,
    };
    farmer.reprice(params, classes);
    farmer
}

fn capacity(hardware: &HardwareClass) -> Resources {
    Resources {
        cpu_millicores: u64::from(hardware.vcpus) * 1_000,
        memory_bytes: u64::from(hardware.ram_gib) << 30,
        storage_bytes: u64::from(hardware.disk_gib) << 30,
        bandwidth_bytes_per_sec: BANDWIDTH_BYTES_PER_SEC,
        gpus: 0,
    }
}

/// Amortisation over the hardware's life, overhead and idle power, per hour.
fn fixed_usd_hour(config: &SimConfig, hardware: &HardwareClass, electricity: f64) -> f64 {
    let life_hours = config.hardware_life_months * HOURS_PER_MONTH;
    hardware.cost_usd * config.hardware_cost_scale / life_hours
        + config.farmer.overhead_usd_month / HOURS_PER_MONTH
        + hardware.idle_watts / 1_000.0 * electricity
}

fn shares(params: &FarmerParams, hardware: &HardwareClass) -> [f64; 3] {
    let [cpu, mem, disk] = params.cost_split_usd;
    let parts = [
        f64::from(hardware.vcpus) * cpu,
        f64::from(hardware.ram_gib) * mem,
        f64::from(hardware.disk_gib) * disk,
    ];
    let total: f64 = parts.iter().sum();
    parts.map(|p| p / total)
}

/// USD as whole base units, rounded up (a floor covers its cost), at
/// least one: a price of zero would give capacity away.
fn price_units(usd: f64) -> Amount {
    let units = (usd * BASE_UNITS_PER_USD).ceil();
    Amount::from_base_units(if units >= 1.0 { units as u128 } else { 1 })
}

impl Farmer {
    /// vCPUs, GiB of RAM, GiB of disk it offers.
    pub fn units(&self) -> [f64; 3] {
        [
            self.capacity.cpu_millicores as f64 / MILLICORES_PER_VCPU,
            self.capacity.memory_bytes as f64 / BYTES_PER_GIB,
            self.capacity.storage_bytes as f64 / BYTES_PER_GIB,
        ]
    }

    /// What one more busy vCPU costs an hour in electricity, USD.
    pub fn marginal_vcpu_usd_hour(&self) -> f64 {
        let [idle, full] = self.watts;
        (full - idle) / 1_000.0 * self.electricity_usd_kwh / self.units()[0]
    }

    /// Full cost per unit-hour at 100% use: vCPU, GiB RAM, GiB disk.
    pub fn unit_costs_usd_hour(&self) -> [f64; 3] {
        let units = self.units();
        [
            self.fixed_usd_hour * self.shares[0] / units[0] + self.marginal_vcpu_usd_hour(),
            self.fixed_usd_hour * self.shares[1] / units[1],
            self.fixed_usd_hour * self.shares[2] / units[2],
        ]
    }

    /// Sets its price sheet from its costs and multiplier, and its floor for
    /// each market class (`(resources, period_ms)`).
    pub fn reprice(&mut self, params: &FarmerParams, classes: &[(Resources, u64)]) {
        let [low, high] = params.multiplier_bounds;
        self.multiplier = self.multiplier.clamp(low, high);
        let [cpu, mem, disk] = self.unit_costs_usd_hour();
        let m = self.multiplier;
        // Selling a vCPU under the power it burns would lose money on
        // every lease: the floor never goes there.
        let cpu_hour = (cpu * m).max(self.marginal_vcpu_usd_hour());
        self.policy = PricePolicy::new(PriceSheet {
            cpu_core_sec: price_units(cpu_hour / 3_600.0),
            memory_gib_sec: price_units(mem * m / 3_600.0),
            storage_gib_hour: price_units(disk * m),
            ..PriceSheet::default()
        });
        self.floors = classes
            .iter()
            .map(|(resources, period_ms)| {
                lease_floor(&self.policy.sheet, resources, *period_ms).unwrap_or(Amount::ZERO)
            })
            .collect();
    }

    /// What its live leases hold, as a share of its capacity, in basis
    /// points: the largest of cpu, mem and disk (what it runs out of first).
    pub fn utilisation_bps(&self) -> u32 {
        let share = |used: u64, cap: u64| {
            if cap == 0 {
                0
            } else {
                used as u128 * 10_000 / cap as u128
            }
        };
        let a = &self.allocated;
        let c = &self.capacity;
        share(a.cpu_millicores, c.cpu_millicores)
            .max(share(a.memory_bytes, c.memory_bytes))
            .max(share(a.storage_bytes, c.storage_bytes))
            .min(10_000) as u32
    }

    /// What it has free.
    pub fn free(&self) -> Resources {
        let c = &self.capacity;
        let a = &self.allocated;
        Resources {
            cpu_millicores: c.cpu_millicores.saturating_sub(a.cpu_millicores),
            memory_bytes: c.memory_bytes.saturating_sub(a.memory_bytes),
            storage_bytes: c.storage_bytes.saturating_sub(a.storage_bytes),
            bandwidth_bytes_per_sec: c.bandwidth_bytes_per_sec,
            gpus: 0,
        }
    }

    /// Adds its busy time up to `step` (call before its allocation changes).
    pub fn integrate(&mut self, step: u64) {
        let hours = step.saturating_sub(self.integrated_step) as f64;
        self.day_busy_vcpu_hours +=
            hours * self.allocated.cpu_millicores as f64 / MILLICORES_PER_VCPU;
        self.integrated_step = step;
    }

    /// Closes its day (call after [`Self::integrate`] to the day's end):
    /// its costs, and its profit into the patience window. Returns the
    /// day's cost and its CPU utilisation.
    pub fn close_day(&mut self, patience_days: u32) -> (DayCost, f64) {
        let hours = 24.0;
        let busy = self.day_busy_vcpu_hours;
        let fixed = self.fixed_usd_hour * hours;
        let cost = DayCost {
            parts: [
                fixed * self.shares[0] + busy * self.marginal_vcpu_usd_hour(),
                fixed * self.shares[1],
                fixed * self.shares[2],
            ],
        };
        let revenue: f64 = self.day_revenue.iter().sum();
        let profit = revenue - cost.total();
        self.total_profit += profit;
        self.window.push_back((profit, cost.total()));
        while self.window.len() > patience_days as usize {
            self.window.pop_front();
        }
        let utilisation = busy / (hours * self.units()[0]);
        self.day_revenue = [0.0; 3];
        self.day_busy_vcpu_hours = 0.0;
        (cost, utilisation)
    }

    /// Profit and cost over the patience window.
    pub fn window_totals(&self) -> (f64, f64) {
        self.window
            .iter()
            .fold((0.0, 0.0), |(p, c), (profit, cost)| (p + profit, c + cost))
    }

    /// Moves its multiplier after a day used at `utilisation` (CPU share).
    pub fn adapt(&mut self, params: &FarmerParams, utilisation: f64, classes: &[(Resources, u64)]) {
        let [low, high] = params.utilisation_band;
        if utilisation < low {
            self.multiplier /= params.multiplier_step;
        } else if utilisation > high {
            self.multiplier *= params.multiplier_step;
        } else {
            return;
        }
        self.reprice(params, classes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_covers_the_marginal_cost_and_follows_the_multiplier() {
        let config = SimConfig::default();
        let mut random = Random::new(1);
        let classes = vec![(
            Resources {
                cpu_millicores: 1_000,
                memory_bytes: 2 << 30,
                storage_bytes: 20 << 30,
                ..Resources::default()
            },
            3_600_000,
        )];
        let mut farmer = draw_farmer(&config, &mut random, 0, 0, 1.0, &classes);
        let at_cost = farmer.floors[0];
        farmer.multiplier = 2.0;
        farmer.reprice(&config.farmer, &classes);
        let double = farmer.floors[0].base_units();
        let expected = at_cost.base_units() * 2;
        // Each sheet price rounds up once, so the double is within 1%.
        assert!(
            double.abs_diff(expected) * 100 <= expected,
            "{double} vs {expected}"
        );
        // Far under cost, the vCPU still pays its power.
        farmer.multiplier = 0.0;
        farmer.reprice(&config.farmer, &classes);
        let cpu_floor = farmer.policy.sheet.cpu_core_sec.base_units() as f64 * 3_600.0;
        let marginal = farmer.marginal_vcpu_usd_hour() * BASE_UNITS_PER_USD;
        assert!(cpu_floor >= marginal, "{cpu_floor} < {marginal}");
    }

    #[test]
    fn a_day_costs_its_fixed_part_and_the_power_of_its_busy_time() {
        let config = SimConfig::default();
        let mut random = Random::new(2);
        let mut farmer = draw_farmer(&config, &mut random, 0, 0, 1.0, &[]);
        farmer.allocated.cpu_millicores = farmer.capacity.cpu_millicores / 2;
        farmer.integrate(24);
        let (cost, utilisation) = farmer.close_day(7);
        assert!((utilisation - 0.5).abs() < 1e-9);
        let busy = 24.0 * farmer.units()[0] / 2.0;
        let expected = farmer.fixed_usd_hour * 24.0 + busy * farmer.marginal_vcpu_usd_hour();
        assert!((cost.total() - expected).abs() < 1e-9);
        assert_eq!(farmer.window.len(), 1);
        assert!(farmer.total_profit < 0.0);
    }
}
