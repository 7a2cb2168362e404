//! Pricing: a node's published [`PriceSheet`] is its floor; the quote for a job
//! is the sum of the resources it holds for its wall time, the fuel it may burn
//! and a flat base, raised by a surge factor that follows the node's utilisation
//! (seed 000: "dynamic pricing based on resource availability").
//!
//! All arithmetic is integer on base units with checked operations.

use peercloud_types::{Amount, Limits, PriceSheet, Resources};

/// Basis points in one (100%).
pub const BPS: u128 = 10_000;
/// How steeply prices rise with utilisation: at 100% utilisation the price is
/// `1 + SURGE_AT_FULL_BPS / BPS` times the floor. Quadratic, so a half-idle node
/// stays near its floor (1.75x at 50%) and a nearly full
/// one prices itself out before it overcommits.
pub const SURGE_AT_FULL_BPS: u128 = 30_000;

/// Bytes in one GiB (prices are per GiB).
pub(crate) const BYTES_PER_GIB: u128 = 1 << 30;
/// Millicores in one core (prices are per core).
pub(crate) const MILLICORES_PER_CORE: u128 = 1_000;
/// Milliseconds in one second (prices are per second).
pub(crate) const MS_PER_SEC: u128 = 1_000;
const FUEL_PER_GIGAFUEL: u128 = 1_000_000_000;

/// A node's pricing knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PricePolicy {
    /// The floor prices.
    pub sheet: PriceSheet,
    /// Surge at full utilisation, in basis points over the floor.
    pub surge_at_full_bps: u128,
}

impl PricePolicy {
    /// A policy with the default surge curve.
    pub fn new(sheet: PriceSheet) -> Self {
        PricePolicy {
            sheet,
            surge_at_full_bps: SURGE_AT_FULL_BPS,
        }
    }
}

/// The multiplier, in basis points (10_000 = 1x), for a utilisation given in
/// basis points (0 = idle, 10_000 = full; larger values are clamped).
pub fn surge_bps(policy: &PricePolicy, utilisation_bps: u32) -> u128 {
    let u = u128::from(utilisation_bps).min(BPS);
    BPS + policy.surge_at_full_bps * u * u / (BPS * BPS)
}

/// What the node asks to run a job with `resources` held for at most
/// `limits.wall_time_ms` and at most `limits.fuel` fuel, at `utilisation_bps`.
/// `None` only when the arithmetic overflows (absurd prices).
pub fn quote(
    policy: &PricePolicy,
    resources: &Resources,
    limits: &Limits,
    utilisation_bps: u32,
) -> Option<Amount> {
    let s = &policy.sheet;
    let wall_ms = u128::from(limits.wall_time_ms);
    // cpu: millicores * ms / (1000 * 1000) core-seconds, kept exact by scaling last.
    let cpu = s
        .cpu_core_sec
        .checked_mul(u128::from(resources.cpu_millicores).checked_mul(wall_ms)?)?
        .checked_mul_div(1, MILLICORES_PER_CORE * MS_PER_SEC)?;
    let memory = s
        .memory_gib_sec
        .checked_mul(
            u128::from(resources.memory_bytes.max(limits.memory_bytes)).checked_mul(wall_ms)?,
        )?
        .checked_mul_div(1, BYTES_PER_GIB * MS_PER_SEC)?;
    let fuel = s
        .gigafuel
        .checked_mul(u128::from(limits.fuel))?
        .checked_mul_div(1, FUEL_PER_GIGAFUEL)?;
    let floor = s
        .job_base
        .checked_add(cpu)?
        .checked_add(memory)?
        .checked_add(fuel)?;
    floor.checked_mul_div(surge_bps(policy, utilisation_bps), BPS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sheet() -> PriceSheet {
        PriceSheet {
            cpu_core_sec: Amount::from_base_units(1_000),
            memory_gib_sec: Amount::from_base_units(100),
            gigafuel: Amount::from_base_units(50_000),
            job_base: Amount::from_base_units(10_000),
            ..PriceSheet::default()
        }
    }

    #[test]
    fn quote_adds_up_the_parts() {
        let policy = PricePolicy::new(sheet());
        let resources = Resources {
            cpu_millicores: 2_000,
            ..Resources::default()
        };
        let limits = Limits {
            fuel: 2_000_000_000,
            memory_bytes: 1 << 30,
            wall_time_ms: 10_000,
            output_bytes: 0,
            scratch_bytes: 0,
        };
        // base 10_000 + cpu 2 cores * 10 s * 1_000 + memory 1 GiB * 10 s * 100 + fuel 2 * 50_000
        let expected = 10_000 + 20_000 + 1_000 + 100_000;
        assert_eq!(
            quote(&policy, &resources, &limits, 0),
            Some(Amount::from_base_units(expected))
        );
        // Full utilisation: 4x.
        assert_eq!(
            quote(&policy, &resources, &limits, 10_000),
            Some(Amount::from_base_units(expected * 4))
        );
    }

    proptest! {
        #[test]
        fn busier_is_never_cheaper(a in 0u32..=10_000, b in 0u32..=10_000, fuel in 1u64..1u64 << 40) {
            let policy = PricePolicy::new(sheet());
            let limits = Limits { fuel, ..Limits::default() };
            let r = Resources::default();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(quote(&policy, &r, &limits, lo) <= quote(&policy, &r, &limits, hi));
        }
    }
}
