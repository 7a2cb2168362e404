//! The simulation loop: one step per simulated hour.
//!
//! ```text
//!  each hour:  bills and settlements due ──► (at midnight) the day closes:
//!              costs, reprice, quit, join; users leave and join
//!           ──► offer books built ──► this hour's requests: auction, award, open
//!           ──► utilisation sampled
//!  sampled leases: every ledger-relevant move also goes to the ledger thread
//! ```
//!
//! Everything is drawn from one seeded stream in a fixed order, and the
//! clock is the step counter: the same config gives the same report. The
//! day's row and the run's report are assembled in `accounting.rs`.

mod accounting;

use peercloud_market::lease_floor;
use peercloud_types::{Amount, Resources};

use crate::config::SimConfig;
use crate::error::SimError;
use crate::farmers::{Farmer, FarmerStatus, LOCATIONS, draw_farmer};
use crate::leases::{Due, Leases, Opening, step_ms};
use crate::ledger::{BidSpec, LedgerOp, LedgerShadow};
use crate::market::{Award, Market};
use crate::prices::{BYTES_PER_GIB, MILLICORES_PER_VCPU, amount_to_usd, usd_to_amount};
use crate::random::Random;
use crate::report::{DayAccumulator, DayRow, SimReport, Summary, median, ratio};
use crate::users::{HOURS_PER_DAY, Users, Want, arrival_rate_per_hour, draw_want, market_classes};

/// Days at the end of a run the summary's "last week" figures average over.
const SUMMARY_DAYS: usize = 7;
/// Days in the month the per-unit profits are quoted for.
const DAYS_PER_MONTH: f64 = 30.0;

/// A run in progress.
pub struct Engine<'a> {
    config: &'a SimConfig,
    random: Random,
    farmers: Vec<Farmer>,
    users: Users,
    leases: Leases,
    market: Market,
    /// Each market class as (resources, period ms), as farmers price them.
    class_specs: Vec<(Resources, u64)>,
    ledger: Option<LedgerShadow>,
    day: DayAccumulator,
    rows: Vec<DayRow>,
    /// Requests whose lease a quitting farmer closed: asked again this hour.
    pending: Vec<Want>,
    /// Leased (cpu, mem, disk) over active capacity, both summed.
    allocated_total: [f64; 3],
    capacity_total: [f64; 3],
    summary: Summary,
    salt: u64,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("farmers", &self.farmers.len())
            .field("users", &self.users.active_count())
            .field("days", &self.rows.len())
            .finish()
    }
}

fn units(resources: &Resources) -> [f64; 3] {
    [
        resources.cpu_millicores as f64 / MILLICORES_PER_VCPU,
        resources.memory_bytes as f64 / BYTES_PER_GIB,
        resources.storage_bytes as f64 / BYTES_PER_GIB,
    ]
}

fn minus(a: &Resources, b: &Resources) -> Resources {
    Resources {
        cpu_millicores: a.cpu_millicores.saturating_sub(b.cpu_millicores),
        memory_bytes: a.memory_bytes.saturating_sub(b.memory_bytes),
        storage_bytes: a.storage_bytes.saturating_sub(b.storage_bytes),
        ..*a
    }
}

fn plus(a: &Resources, b: &Resources) -> Resources {
    Resources {
        cpu_millicores: a.cpu_millicores.saturating_add(b.cpu_millicores),
        memory_bytes: a.memory_bytes.saturating_add(b.memory_bytes),
        storage_bytes: a.storage_bytes.saturating_add(b.storage_bytes),
        ..*a
    }
}

impl<'a> Engine<'a> {
    /// The market at time 0: the farmers and users of `config`.
    pub fn new(config: &'a SimConfig) -> Result<Engine<'a>, SimError> {
        config.validate()?;
        let classes = market_classes(config);
        let class_specs = classes
            .iter()
            .map(|c| (c.resources, c.billing.period_ms()))
            .collect();
        let reserve_max: Vec<Amount> = classes
            .iter()
            .map(|c| usd_to_amount(c.cloud_usd_per_period * config.user.reserve_share[1]))
            .collect();
        let steps = u64::from(config.days) * HOURS_PER_DAY;
        let ledger = match config.ledger_every {
            0 => None,
            _ => Some(LedgerShadow::start(config.seed)?),
        };
        let mut engine = Engine {
            config,
            random: Random::new(config.seed),
            farmers: Vec::with_capacity(config.farmers),
            users: Users::default(),
            leases: Leases::new(steps),
            market: Market::new(classes, reserve_max),
            class_specs,
            ledger,
            day: DayAccumulator::default(),
            rows: Vec::with_capacity(config.days as usize),
            pending: Vec::new(),
            allocated_total: [0.0; 3],
            capacity_total: [0.0; 3],
            summary: Summary {
                prices: config.prices.name.clone(),
                farmers_start: config.farmers,
                cloud_vcpu_hour_usd: config.prices.vcpu_hour,
                ..Summary::default()
            },
            salt: 0,
        };
        let [low, high] = config.farmer.multiplier_initial;
        for _ in 0..config.farmers {
            let multiplier = engine.random.between(low, high);
            engine.add_farmer(0, multiplier);
        }
        for _ in 0..config.users {
            engine.users.join(&config.user, &mut engine.random);
        }
        Ok(engine)
    }

    fn add_farmer(&mut self, day: u32, multiplier: f64) {
        let index = self.farmers.len() as u32;
        let farmer = draw_farmer(
            self.config,
            &mut self.random,
            index,
            day,
            multiplier,
            &self.class_specs,
        );
        for (total, unit) in self.capacity_total.iter_mut().zip(units(&farmer.capacity)) {
            *total += unit;
        }
        self.market.add_farmer(farmer.node, index);
        self.farmers.push(farmer);
    }

    /// Runs every step and returns the report.
    pub fn run(mut self) -> Result<SimReport, SimError> {
        let steps = u64::from(self.config.days) * HOURS_PER_DAY;
        let rate = arrival_rate_per_hour(self.config);
        for step in 0..steps {
            self.process_due(step)?;
            if step > 0 && step % HOURS_PER_DAY == 0 {
                self.close_day(step)?;
            }
            let mut wants = std::mem::take(&mut self.pending);
            if step == 0 {
                self.steady_state(&mut wants);
            }
            let arrivals = self.random.poisson(self.users.active_count() as f64 * rate);
            for _ in 0..arrivals {
                if let Some(user) = self.users.pick(&mut self.random) {
                    let want = draw_want(
                        self.config,
                        self.market.classes(),
                        &self.users,
                        user,
                        &mut self.random,
                        false,
                    );
                    wants.push(want);
                }
            }
            self.market.rebuild(&self.farmers);
            for want in wants {
                self.serve(want, step)?;
            }
            self.sample_utilisation();
        }
        self.process_due(steps)?;
        self.close_day(steps)?;
        self.finish()
    }

    /// The leases users hold at time 0 in the steady state.
    fn steady_state(&mut self, wants: &mut Vec<Want>) {
        let held = self.config.users as f64 * self.config.user.leases_per_user * self.config.demand;
        let count = self.random.poisson(held);
        for _ in 0..count {
            if let Some(user) = self.users.pick(&mut self.random) {
                let want = draw_want(
                    self.config,
                    self.market.classes(),
                    &self.users,
                    user,
                    &mut self.random,
                    true,
                );
                wants.push(want);
            }
        }
    }

    fn process_due(&mut self, step: u64) -> Result<(), SimError> {
        for due in self.leases.take_due(step) {
            match due {
                Due::Bill { slot, seq } if self.leases.is(slot, seq) => self.bill(slot, step)?,
                Due::Settle { slot, seq } => self.settle(slot, seq, step),
                Due::Bill { .. } => {}
            }
        }
        Ok(())
    }

    fn send(&mut self, op: LedgerOp) {
        if let Some(ledger) = &mut self.ledger {
            ledger.send(op);
        }
    }

    /// Bills what `slot` owes by `step`; releases its resources when it ended.
    fn bill(&mut self, slot: u32, step: u64) -> Result<(), SimError> {
        let now = step_ms(step);
        let Some(billed) = self.leases.bill(slot, now, self.config.seed)? else {
            return Ok(());
        };
        let Some(lease) = self.leases.get(slot) else {
            return Ok(());
        };
        let (farmer, seq, sampled, weights) =
            (lease.farmer, lease.seq, lease.sampled, lease.weights);
        let paid = amount_to_usd(billed.paid);
        let f = &mut self.farmers[farmer as usize];
        for (i, weight) in weights.iter().enumerate() {
            f.day_revenue[i] += paid * weight;
            self.day.revenue[i] += paid * weight;
        }
        let down = billed.ups.iter().filter(|up| !**up).count() as u32;
        if down > 0 {
            let penalty = down
                .saturating_mul(peercloud_ledger::params::REPUTATION_PENALTY_LEASE_DOWN)
                .min(peercloud_ledger::params::REPUTATION_PENALTY_LEASE_DOWN_MAX);
            f.reputation = f.reputation.saturating_sub(penalty);
        }
        self.day.user_paid += paid;
        self.day.cloud_equivalent += billed.cloud_usd;
        let ended = billed.ended;
        if sampled {
            self.send(LedgerOp::Bill {
                seq,
                time_ms: now,
                first_period: billed.first_period,
                ups: billed.ups,
            });
        }
        if ended {
            self.release(slot, step);
        }
        Ok(())
    }

    /// Frees the resources `slot` holds on its farmer's node.
    fn release(&mut self, slot: u32, step: u64) {
        let Some((farmer, resources)) = self.leases.release(slot) else {
            return;
        };
        let user = self.leases.get(slot).map(|lease| lease.user);
        let f = &mut self.farmers[farmer as usize];
        f.integrate(step);
        f.allocated = minus(&f.allocated, &resources);
        f.changed_tick = self.market.touch();
        f.leases.retain(|s| *s != slot);
        if f.status == FarmerStatus::Active {
            for (total, unit) in self.allocated_total.iter_mut().zip(units(&resources)) {
                *total -= unit;
            }
        }
        if let Some(user) = user {
            self.users.all[user as usize].leases.retain(|s| *s != slot);
        }
    }

    fn settle(&mut self, slot: u32, seq: u64, step: u64) {
        let Some((lease, settled)) = self.leases.settle(slot, seq) else {
            return;
        };
        let f = &mut self.farmers[lease.farmer as usize];
        if settled.clean {
            f.reputation = (f.reputation + peercloud_ledger::params::REPUTATION_REWARD)
                .min(peercloud_types::job::REPUTATION_MAX);
        }
        if lease.sampled {
            self.send(LedgerOp::Settle {
                seq,
                time_ms: step_ms(step),
            });
        }
    }

    /// Closes `slot` now (`CloseLease`) and bills its last, partial period.
    /// Returns the periods it still had to run.
    fn close(&mut self, slot: u32, step: u64, by_user: bool) -> Result<u64, SimError> {
        let now = step_ms(step);
        let Some(lease) = self.leases.get(slot) else {
            return Ok(0);
        };
        // A lease at or past its end is billed out, not closed.
        if lease.record.end_ms().is_none_or(|end| end <= now) || !lease.holds_capacity {
            return Ok(0);
        }
        let (seq, sampled) = (lease.seq, lease.sampled);
        let left = lease
            .record
            .max_periods
            .unwrap_or(0)
            .saturating_sub(lease.record.next_period);
        self.leases.close(slot, now)?;
        if sampled {
            self.send(LedgerOp::Close {
                seq,
                time_ms: now,
                by_user,
            });
        }
        self.bill(slot, step)?;
        self.release(slot, step);
        Ok(left)
    }

    fn serve(&mut self, want: Want, step: u64) -> Result<(), SimError> {
        if !self.users.all[want.user as usize].active {
            return Ok(());
        }
        self.day.requests += 1;
        self.salt += 1;
        let request = self.market.request(&want, self.salt);
        let k = self.config.bids_per_request;
        let Some(award) = self.market.auction(&want, &request, &self.farmers, k) else {
            self.day.unserved += 1;
            if self.random.chance(self.config.user.churn_when_unserved) {
                self.user_leaves(want.user, step)?;
            }
            return Ok(());
        };
        self.open(&want, &request, award, step)
    }

    fn open(
        &mut self,
        want: &Want,
        request: &peercloud_types::LeaseRequest,
        award: Award,
        step: u64,
    ) -> Result<(), SimError> {
        let now = step_ms(step);
        let class = &self.market.classes()[want.class];
        let (resources, period_ms, cloud) = (
            class.resources,
            class.billing.period_ms(),
            class.cloud_usd_per_period,
        );
        let winner = award.bids[award.winner];
        let f = &self.farmers[winner.farmer as usize];
        let floor = f.floors[want.class];
        if award.price < floor {
            self.summary.awards_under_floor += 1;
        }
        if award.price > want.reserve {
            self.summary.awards_over_reserve += 1;
        }
        let weights = price_split(f, &resources, period_ms);
        let opening = Opening {
            farmer: winner.farmer,
            node: winner.node,
            user: want.user,
            class: want.class as u32,
            resources,
            price: award.price,
            period_ms,
            periods: want.periods,
            weights,
            cloud_usd_per_period: cloud,
            availability: f.availability,
        };
        let (slot, seq) = self.leases.open(now, &opening, self.config.ledger_every)?;
        let price_usd = amount_to_usd(award.price);
        let hours = (period_ms / crate::prices::MS_PER_HOUR) as f64;
        let vcpus = units(&resources)[0];
        self.day.awards += 1;
        self.day
            .core_hour_prices
            .push(price_usd * weights[0] / (vcpus * hours));
        self.day.cloud_ratios.push(ratio(price_usd, cloud));
        let f = &mut self.farmers[winner.farmer as usize];
        f.integrate(step);
        f.allocated = plus(&f.allocated, &resources);
        f.changed_tick = self.market.touch();
        f.leases.push(slot);
        self.users.all[want.user as usize].leases.push(slot);
        for (total, unit) in self.allocated_total.iter_mut().zip(units(&resources)) {
            *total += unit;
        }
        if self.leases.get(slot).is_some_and(|lease| lease.sampled) {
            let bids = award
                .bids
                .iter()
                .map(|bid| {
                    let f = &self.farmers[bid.farmer as usize];
                    BidSpec {
                        farmer: bid.farmer,
                        price: bid.price,
                        location: LOCATIONS[usize::from(f.location)],
                        capacity: f.capacity,
                        prices: f.policy.sheet,
                    }
                })
                .collect();
            let deposit = award
                .price
                .checked_mul(u128::from(want.periods))
                .ok_or(SimError::Overflow { what: "a deposit" })?;
            self.send(LedgerOp::Open {
                seq,
                time_ms: now,
                user: want.user,
                resources,
                period_ms,
                periods: want.periods,
                reserve: want.reserve,
                locations: request.filters.locations.clone(),
                bids,
                deposit,
            });
        }
        Ok(())
    }

    /// `user` leaves: its leases are closed.
    fn user_leaves(&mut self, user: u32, step: u64) -> Result<(), SimError> {
        self.users.leave(user);
        let slots = self.users.all[user as usize].leases.clone();
        for slot in slots {
            self.close(slot, step, true)?;
        }
        Ok(())
    }

    /// Farmer `index` quits: its leases are closed and asked for again.
    fn farmer_quits(&mut self, index: usize, step: u64) -> Result<(), SimError> {
        let slots = self.farmers[index].leases.clone();
        for slot in slots {
            let Some(lease) = self.leases.get(slot) else {
                continue;
            };
            let (user, class) = (lease.user, lease.class as usize);
            let left = self.close(slot, step, false)?;
            if left > 0 {
                let willingness = self.users.all[user as usize].willingness;
                let cloud = self.market.classes()[class].cloud_usd_per_period;
                self.pending.push(Want {
                    user,
                    class,
                    periods: left,
                    reserve: usd_to_amount(cloud * willingness),
                    continent: None,
                });
            }
        }
        // Its leases are released above: nothing of it stays allocated.
        let f = &mut self.farmers[index];
        f.status = FarmerStatus::Gone;
        for (total, unit) in self.capacity_total.iter_mut().zip(units(&f.capacity)) {
            *total -= unit;
        }
        self.day.quit += 1;
        self.summary.farmers_quit += 1;
        Ok(())
    }

    fn sample_utilisation(&mut self) {
        for i in 0..3 {
            self.day.utilisation_sum[i] += ratio(self.allocated_total[i], self.capacity_total[i]);
        }
        self.day.utilisation_samples += 1;
    }

    /// The day that ends at `step`: farmers' costs and decisions, users
    /// leaving and joining, and the day's row.
    fn close_day(&mut self, step: u64) -> Result<(), SimError> {
        let day = (step / HOURS_PER_DAY) as u32;
        let params = &self.config.farmer;
        let mut cost = [0.0; 3];
        let mut quitting = Vec::new();
        for (index, f) in self.farmers.iter_mut().enumerate() {
            if f.status != FarmerStatus::Active {
                continue;
            }
            f.integrate(step);
            let (day_cost, utilisation) = f.close_day(params.patience_days);
            for (sum, part) in cost.iter_mut().zip(day_cost.parts) {
                *sum += part;
            }
            f.adapt(params, utilisation, &self.class_specs);
            let patient = day.saturating_sub(f.joined_day) < params.patience_days;
            if !patient && f.window_totals().0 < 0.0 && self.random.chance(params.quit_probability)
            {
                quitting.push(index);
            }
        }
        for index in quitting {
            self.farmer_quits(index, step)?;
        }
        self.farmers_join(day);
        self.users_come_and_go(step)?;
        self.push_row(day, cost);
        Ok(())
    }

    /// Newcomers, when the market's margin over the patience window beats
    /// the hurdle.
    fn farmers_join(&mut self, day: u32) {
        let params = &self.config.farmer;
        if day < params.patience_days {
            return;
        }
        let active: Vec<&Farmer> = self
            .farmers
            .iter()
            .filter(|f| f.status == FarmerStatus::Active)
            .collect();
        let (profit, cost) = active.iter().fold((0.0, 0.0), |(p, c), f| {
            let (fp, fc) = f.window_totals();
            (p + fp, c + fc)
        });
        let margin = ratio(profit, cost);
        let pull = ((margin - params.entry_hurdle) / params.entry_hurdle).clamp(0.0, 1.0);
        let mut multipliers: Vec<f64> = active.iter().map(|f| f.multiplier).collect();
        let market_multiplier = median(&mut multipliers).max(params.multiplier_bounds[0]);
        let base = active.len().max(1) as f64;
        let joining = self.random.poisson(base * params.entry_rate_max * pull);
        for _ in 0..joining {
            let multiplier = market_multiplier * self.random.between(0.9, 1.1);
            self.add_farmer(day, multiplier);
            self.day.joined += 1;
            self.summary.farmers_joined += 1;
        }
    }

    fn users_come_and_go(&mut self, step: u64) -> Result<(), SimError> {
        let params = &self.config.user;
        let leaving = self
            .random
            .poisson(self.users.active_count() as f64 * params.churn_per_day);
        for _ in 0..leaving {
            if let Some(user) = self.users.pick(&mut self.random) {
                self.user_leaves(user, step)?;
            }
        }
        let served = ratio(self.day.awards as f64, self.day.requests as f64);
        let served = if self.day.requests == 0 { 1.0 } else { served };
        let joining = self
            .random
            .poisson(self.config.users as f64 * params.churn_per_day * served);
        for _ in 0..joining {
            self.users.join(params, &mut self.random);
        }
        Ok(())
    }
}

/// How the winner's price splits among cpu, mem and disk: as its floor for
/// the same lease does (each resource's part of `lease_floor`).
fn price_split(farmer: &Farmer, resources: &Resources, period_ms: u64) -> [f64; 3] {
    let only = [
        Resources {
            cpu_millicores: resources.cpu_millicores,
            ..Resources::default()
        },
        Resources {
            memory_bytes: resources.memory_bytes,
            ..Resources::default()
        },
        Resources {
            storage_bytes: resources.storage_bytes,
            ..Resources::default()
        },
    ];
    let parts = only.map(|r| {
        lease_floor(&farmer.policy.sheet, &r, period_ms).map_or(0.0, |a| a.base_units() as f64)
    });
    let total: f64 = parts.iter().sum();
    if total == 0.0 {
        [1.0, 0.0, 0.0]
    } else {
        parts.map(|p| p / total)
    }
}
