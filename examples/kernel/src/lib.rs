//! The integer-mixing kernel the compute bench runs natively and under the
//! sandbox: the same source, compiled twice (`peercloud-compute`'s bench
//! includes this file by path), so the ratio of the two timings is the cost
//! of the sandbox and nothing else.
//!
//! Pure: no I/O, no allocation, no floating point. Each iteration is a
//! xorshift step on one lane and a multiply-rotate step on another, with a
//! data dependency between iterations so neither compiler can skip work.

/// Odd constant of the multiply step (from SplitMix64's finaliser).
const MULTIPLIER: u64 = 0xBF58_476D_1CE4_E5B9;
/// Seed whitening constant (the golden ratio in 64 bits).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Mixes `seed` through `iterations` rounds and returns the final state.
///
/// The same `(seed, iterations)` gives the same result on every target.
pub fn mix(seed: u64, iterations: u64) -> u64 {
    let mut a = seed ^ GOLDEN;
    let mut b = seed.rotate_left(32) | 1;
    for i in 0..iterations {
        a ^= a << 13;
        a ^= a >> 7;
        a ^= a << 17;
        b = (b ^ i).wrapping_mul(MULTIPLIER).rotate_left(29);
        a = a.wrapping_add(b);
    }
    a ^ b.rotate_left(17)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_iterations_only_whitens_the_seed() {
        let seed = 7u64;
        assert_eq!(
            mix(seed, 0),
            (seed ^ GOLDEN) ^ (seed.rotate_left(32) | 1).rotate_left(17)
        );
    }

    #[test]
    fn every_input_bit_matters() {
        assert_ne!(mix(1, 1000), mix(2, 1000));
        assert_ne!(mix(1, 1000), mix(1, 1001));
    }
}
