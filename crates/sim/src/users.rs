//! Users: who is in the market, what each is willing to pay against the
//! cloud, and the requests they make.
//!
//! Requests arrive as a Poisson stream whose rate keeps
//! `leases_per_user × demand` leases per user alive on average. At time 0
//! the market starts in that steady state: users already hold the leases
//! they would hold (each drawn as the lease a random moment falls in, with
//! what is left of it), so farmers are not judged on an empty first week.

use peercloud_types::{Amount, Resources};

use crate::config::{SimConfig, UserParams};
use crate::farmers::CONTINENTS;
use crate::prices::{MS_PER_HOUR, usd_to_amount};
use crate::random::Random;

/// Hours in a day.
pub const HOURS_PER_DAY: u64 = 24;

/// How a market class is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// One-hour periods.
    Hourly,
    /// One-day periods.
    Daily,
}

impl Billing {
    /// The billing period, ms.
    pub fn period_ms(self) -> u64 {
        match self {
            Billing::Hourly => MS_PER_HOUR,
            Billing::Daily => MS_PER_HOUR * HOURS_PER_DAY,
        }
    }

    /// Steps (hours) in one period.
    pub fn period_steps(self) -> u64 {
        self.period_ms() / MS_PER_HOUR
    }
}

/// A market class: one size billed one way. Every request is of one, and
/// the market keeps one offer book per class.
#[derive(Debug, Clone)]
pub struct MarketClass {
    /// Its billing.
    pub billing: Billing,
    /// What the space gets.
    pub resources: Resources,
    /// What one period costs on the cloud list, USD.
    pub cloud_usd_per_period: f64,
}

/// Every class of `config`: each size hourly, then each size daily.
pub fn market_classes(config: &SimConfig) -> Vec<MarketClass> {
    let mut classes = Vec::with_capacity(config.user.sizes.len() * 2);
    for billing in [Billing::Hourly, Billing::Daily] {
        for size in &config.user.sizes {
            let resources = Resources {
                cpu_millicores: u64::from(size.vcpus) * 1_000,
                memory_bytes: u64::from(size.ram_gib) << 30,
                storage_bytes: u64::from(size.disk_gib) << 30,
                ..Resources::default()
            };
            let hours = billing.period_steps() as f64;
            classes.push(MarketClass {
                billing,
                resources,
                cloud_usd_per_period: config.prices.cost_usd(&resources, hours),
            });
        }
    }
    classes
}

/// One user.
#[derive(Debug, Clone)]
pub struct User {
    /// Its reserve over the cloud price.
    pub willingness: f64,
    /// Its continent, an index into [`CONTINENTS`].
    pub continent: u8,
    /// Whether it is in the market.
    pub active: bool,
    /// Slots of its live leases.
    pub leases: Vec<u32>,
}

/// A user's request, before the market answers it.
#[derive(Debug, Clone)]
pub struct Want {
    /// The user.
    pub user: u32,
    /// Index into the market classes.
    pub class: usize,
    /// How many periods.
    pub periods: u64,
    /// The most it pays per period.
    pub reserve: Amount,
    /// Only nodes on this continent (an index into [`CONTINENTS`]).
    pub continent: Option<u8>,
}

/// Every user, and the active ones in a list to draw from.
#[derive(Debug, Clone, Default)]
pub struct Users {
    /// Every user ever, by index.
    pub all: Vec<User>,
    /// Indices of the active users.
    active: Vec<u32>,
    /// Each user's position in `active` (`u32::MAX` when gone).
    position: Vec<u32>,
}

impl Users {
    /// Adds a user drawn from `params`; returns its index.
    pub fn join(&mut self, params: &UserParams, random: &mut Random) -> u32 {
        let [low, high] = params.reserve_share;
        let user = User {
            willingness: random.between(low, high),
            continent: random.below(CONTINENTS.len()) as u8,
            active: true,
            leases: Vec::new(),
        };
        let index = self.all.len() as u32;
        self.all.push(user);
        self.position.push(self.active.len() as u32);
        self.active.push(index);
        index
    }

    /// Takes `user` out of the market (its leases are the caller's to close).
    pub fn leave(&mut self, user: u32) {
        let at = self.position[user as usize];
        if at == u32::MAX {
            return;
        }
        self.active.swap_remove(at as usize);
        if let Some(moved) = self.active.get(at as usize) {
            self.position[*moved as usize] = at;
        }
        self.position[user as usize] = u32::MAX;
        self.all[user as usize].active = false;
    }

    /// How many are in the market.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// The active users, in list order.
    #[cfg(test)]
    pub fn active(&self) -> &[u32] {
        &self.active
    }

    /// A random active user.
    pub fn pick(&self, random: &mut Random) -> Option<u32> {
        if self.active.is_empty() {
            None
        } else {
            Some(self.active[random.below(self.active.len())])
        }
    }
}

/// Mean lease length in hours under `params`.
pub fn mean_length_hours(params: &UserParams) -> f64 {
    let mean = |[low, high]: [u32; 2]| (f64::from(low) + f64::from(high)) / 2.0;
    params.hourly_share * mean(params.hourly_lengths)
        + (1.0 - params.hourly_share) * mean(params.daily_lengths) * HOURS_PER_DAY as f64
}

/// Requests per active user per hour at `config`'s demand.
pub fn arrival_rate_per_hour(config: &SimConfig) -> f64 {
    config.user.leases_per_user * config.demand / mean_length_hours(&config.user)
}

/// Draws what `user` asks for. With `residual`, the lease is the part
/// left of one running at a random moment (the steady state at time 0).
pub fn draw_want(
    config: &SimConfig,
    classes: &[MarketClass],
    users: &Users,
    user: u32,
    random: &mut Random,
    residual: bool,
) -> Want {
    let params = &config.user;
    let weights: Vec<f64> = params.sizes.iter().map(|s| s.weight).collect();
    let size = random.weighted(&weights);
    // A lease running at a random moment is long more often than a new
    // one: each billing kind in proportion to its share times its length.
    let hourly_share = if residual {
        let mean = |[low, high]: [u32; 2]| (f64::from(low) + f64::from(high)) / 2.0;
        let hourly = params.hourly_share * mean(params.hourly_lengths);
        hourly / mean_length_hours(params)
    } else {
        params.hourly_share
    };
    let hourly = random.chance(hourly_share);
    let [low, high] = if hourly {
        params.hourly_lengths
    } else {
        params.daily_lengths
    };
    let periods = if residual {
        let length = random.length_biased(low, high);
        random.integer(1, length)
    } else {
        random.integer(low, high)
    };
    let class = if hourly {
        size
    } else {
        params.sizes.len() + size
    };
    let owner = &users.all[user as usize];
    let reserve = usd_to_amount(classes[class].cloud_usd_per_period * owner.willingness);
    let continent = random
        .chance(params.region_filter_share)
        .then_some(owner.continent);
    Want {
        user,
        class,
        periods: u64::from(periods),
        reserve,
        continent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_join_and_leave_the_active_list() {
        let params = UserParams::default();
        let mut random = Random::new(1);
        let mut users = Users::default();
        for _ in 0..5 {
            users.join(&params, &mut random);
        }
        users.leave(1);
        users.leave(1);
        users.leave(4);
        assert_eq!(users.active_count(), 3);
        let mut active = users.active().to_vec();
        active.sort_unstable();
        assert_eq!(active, vec![0, 2, 3]);
        assert!(!users.all[4].active);
    }

    #[test]
    fn the_arrival_rate_keeps_the_leases_per_user() {
        let config = SimConfig::default();
        // hourly: 24.5 h, daily: 16 days = 384 h, half each.
        assert!((mean_length_hours(&config.user) - 204.25).abs() < 1e-9);
        let rate = arrival_rate_per_hour(&config);
        assert!((rate * 204.25 - 0.55).abs() < 1e-9);
    }
}
