//! Randomness, all of it from the run's seed: one ChaCha8 stream the
//! simulation draws from in a fixed order, pure hashes for what two places
//! must agree on without sharing a stream (whether a lease's period was up,
//! a node's key), and the few distributions the agents need.

use peercloud_types::Keypair;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A Poisson mean above which the normal approximation is drawn instead of
/// Knuth's product method (whose cost grows with the mean): at 30 the
/// approximation's error is far below the simulation's other noise.
const POISSON_EXACT_MEAN_MAX: f64 = 30.0;

/// The simulation's random stream.
#[derive(Debug, Clone)]
pub struct Random {
    rng: ChaCha8Rng,
}

impl Random {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Random {
        Random {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// Uniform in `[low, high)` (`low` when the range is empty).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform in `low..=high`.
    pub fn integer(&mut self, low: u32, high: u32) -> u32 {
        if high <= low {
            low
        } else {
            self.rng.random_range(low..=high)
        }
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index into `weights`, each drawn in proportion to its weight.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut left = self.unit() * total;
        for (index, weight) in weights.iter().enumerate() {
            if left < *weight {
                return index;
            }
            left -= weight;
        }
        weights.len().saturating_sub(1)
    }

    /// A Poisson count of mean `mean`.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        // NaN and non-positive means draw nothing.
        if mean.is_nan() || mean <= 0.0 {
            return 0;
        }
        if mean > POISSON_EXACT_MEAN_MAX {
            // Box-Muller: one standard normal from two uniforms.
            let u1 = 1.0 - self.unit();
            let u2 = self.unit();
            let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            return (mean + normal * mean.sqrt()).round().max(0.0) as u64;
        }
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit {
            product *= self.unit();
            count += 1;
        }
        count
    }

    /// A number in `1..=high` drawn in proportion to itself: the length of
    /// the lease a random moment falls in, when lengths are uniform.
    pub fn length_biased(&mut self, low: u32, high: u32) -> u32 {
        loop {
            let length = self.integer(low, high);
            if self.unit() * f64::from(high) < f64::from(length) {
                return length;
            }
        }
    }
}

/// SplitMix64's finaliser: a fast, well-mixed hash of one word.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` that depends only on its inputs: whether a
/// lease's period was up is decided once, the same for the fast path and
/// the ledger's probes.
pub fn hashed_unit(seed: u64, lease: u64, period: u64) -> f64 {
    let word = mix(mix(mix(seed) ^ lease) ^ period);
    // The top 53 bits, as f64's mantissa holds them.
    (word >> 11) as f64 / (1u64 << 53) as f64
}

/// The key of a simulated party: `role` (`node`, `owner`, `user`, ...)
/// number `index` of the run with `seed`. Real ed25519 keys, so the
/// ledger checks real signatures and node ids rank as they would.
pub fn keypair(seed: u64, role: &str, index: u64) -> Keypair {
    let mut hasher = blake3::Hasher::new_derive_key("peercloud sim key v1");
    hasher.update(&seed.to_le_bytes());
    hasher.update(role.as_bytes());
    hasher.update(&index.to_le_bytes());
    Keypair::from_seed(hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_hashes_follow_the_seed() {
        let (mut a, mut b) = (Random::new(7), Random::new(7));
        let draws: Vec<u64> = (0..100).map(|_| a.poisson(3.0)).collect();
        assert_eq!(draws, (0..100).map(|_| b.poisson(3.0)).collect::<Vec<_>>());
        assert_ne!(hashed_unit(1, 2, 3), hashed_unit(1, 2, 4));
        assert_eq!(hashed_unit(1, 2, 3), hashed_unit(1, 2, 3));
        assert_eq!(
            keypair(1, "node", 5).node_id(),
            keypair(1, "node", 5).node_id()
        );
        assert_ne!(
            keypair(1, "node", 5).node_id(),
            keypair(2, "node", 5).node_id()
        );
    }

    #[test]
    fn poisson_means_come_out_right() {
        let mut random = Random::new(3);
        for mean in [0.5, 4.0, 200.0] {
            let n = 20_000;
            let total: u64 = (0..n).map(|_| random.poisson(mean)).sum();
            let got = total as f64 / n as f64;
            assert!((got - mean).abs() < mean * 0.05 + 0.05, "{mean}: {got}");
        }
    }
}
