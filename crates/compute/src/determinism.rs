//! The job's view of time and chance, derived from the job's seed and nothing
//! of the host's, so that every node running the same module on the same
//! inputs produces the same bytes.
//!
//! - **Clocks.** Wall and monotonic clocks share one virtual counter. It
//!   starts at [`CLOCK_START_SECS`] (wall) / 0 (monotonic) and advances by
//!   [`CLOCK_STEP_NS`] on every read, so a module that waits for time to pass
//!   by polling still sees it pass. The sequence of reads is the module's
//!   own, so the values are the same on every node.
//! - **Sleeping.** WASI's `poll_oneoff` is replaced: a clock subscription
//!   advances the virtual clock to its deadline and fires at once, and a
//!   file-descriptor subscription is ready at once (stdin is in memory, files
//!   never block). The host never sleeps for a guest, so a `sleep(1 day)`
//!   neither holds a run slot nor escapes the wall-clock limit.
//! - **Randomness.** `random_get` and the insecure generator are ChaCha20
//!   streams keyed by BLAKE3 (`derive_key`) of the seed and a stream name.
//!   They are not secret from the job's owner (who knows the seed); jobs that
//!   need secrets get them as inputs.
//!
//! What still comes from the host, and so must not be written into a job's
//! output if it is to be verified: file timestamps and inode numbers
//! (`fd_filestat_get`). Directory listings (`fd_readdir`) are sorted by name,
//! with name-derived inode numbers (`sandbox/readdir.rs`).
//!
//! **The digest of a failed run.** A run that fails in a way every node
//! reproduces ([`crate::Failure`]) is a result too, and the nodes compare
//! [`failure_digest`]: BLAKE3 (`derive_key`, [`FAILURE_DIGEST_CONTEXT`]) over
//! the failure's code byte ([`crate::Failure::code`]), the fuel used up to
//! the failure (u64 little-endian), then stdout and stderr as captured (each
//! its length as u64 little-endian, then its bytes; each at most
//! [`crate::STDOUT_BYTES_MAX`] / [`crate::STDERR_BYTES_MAX`]). Its context
//! differs from [`crate::output_digest`]'s, so a failed run never has the
//! digest of a run that exited. It leaves out the error's text (a trap's
//! message carries a backtrace whose form is wasmtime's, not the job's) and
//! anything under `/output`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use wasmtime::{Caller, Extern};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Wall-clock time a job starts at: 2024-01-01T00:00:00Z, in seconds since
/// the Unix epoch. Any fixed instant would do; a recent one keeps programs
/// that sanity-check dates happy.
pub const CLOCK_START_SECS: u64 = 1_704_067_200;
/// How far the virtual clock moves on every read, in nanoseconds: a
/// microsecond, about what a real clock read costs, so elapsed-time loops end.
pub const CLOCK_STEP_NS: u64 = 1_000;
/// BLAKE3 `derive_key` context of the job's random streams.
const RANDOM_CONTEXT: &str = "peercloud job random v1";
/// BLAKE3 `derive_key` context of [`failure_digest`].
pub const FAILURE_DIGEST_CONTEXT: &str = "peercloud failure digest v1";

/// The digest of a run that failed reproducibly (see the module header):
/// equal on every node that ran the same module on the same inputs and seed.
pub fn failure_digest(
    failure: crate::Failure,
    fuel_consumed: u64,
    stdout: &[u8],
    stderr: &[u8],
) -> peercloud_types::Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(FAILURE_DIGEST_CONTEXT);
    hasher.update(&[failure.code()]);
    hasher.update(&fuel_consumed.to_le_bytes());
    for stream in [stdout, stderr] {
        hasher.update(&(stream.len() as u64).to_le_bytes());
        hasher.update(stream);
    }
    hasher.finalize().into()
}

/// Most subscriptions one `poll_oneoff` may pass; more is refused with
/// `EINVAL` so one call cannot make the host walk megabytes of guest memory.
pub const POLL_SUBSCRIPTIONS_MAX: u32 = 4096;

/// The job's virtual time: nanoseconds since the job started, shared by its
/// wall and monotonic clocks and by `poll_oneoff`.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobClock {
    elapsed_ns: Arc<AtomicU64>,
}

impl JobClock {
    /// Reads the clock, moving it forward by [`CLOCK_STEP_NS`].
    fn tick(&self) -> u64 {
        self.elapsed_ns
            .fetch_add(CLOCK_STEP_NS, Ordering::Relaxed)
            .saturating_add(CLOCK_STEP_NS)
    }

    /// The current reading, without moving the clock.
    fn now(&self) -> u64 {
        self.elapsed_ns.load(Ordering::Relaxed)
    }

    /// Moves the clock forward to `elapsed_ns` if it is in the future.
    fn advance_to(&self, elapsed_ns: u64) {
        self.elapsed_ns.fetch_max(elapsed_ns, Ordering::Relaxed);
    }

    /// The wall clock the job sees.
    pub(crate) fn wall(&self) -> impl HostWallClock + 'static {
        WallClock(self.clone())
    }

    /// The monotonic clock the job sees.
    pub(crate) fn monotonic(&self) -> impl HostMonotonicClock + 'static {
        MonotonicClock(self.clone())
    }
}

struct WallClock(JobClock);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(CLOCK_STEP_NS)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(CLOCK_START_SECS) + Duration::from_nanos(self.0.tick())
    }
}

struct MonotonicClock(JobClock);

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        CLOCK_STEP_NS
    }

    fn now(&self) -> u64 {
        self.0.tick()
    }
}

/// The random stream named `stream` of a job with `seed`.
pub(crate) fn job_rng(seed: u64, stream: &str) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(stream_key(seed, stream))
}

/// The `insecure_random_seed` WASI value of a job with `seed`.
pub(crate) fn insecure_seed(seed: u64) -> u128 {
    let key = stream_key(seed, "insecure-seed");
    let mut low = [0u8; 16];
    low.copy_from_slice(&key[..16]);
    u128::from_le_bytes(low)
}

fn stream_key(seed: u64, stream: &str) -> [u8; 32] {
    let mut material = Vec::with_capacity(8 + stream.len());
    material.extend_from_slice(&seed.to_le_bytes());
    material.extend_from_slice(stream.as_bytes());
    blake3::derive_key(RANDOM_CONTEXT, &material)
}

// WASI preview 1 ABI of `poll_oneoff` (witx `subscription` and `event`).
const SUBSCRIPTION_BYTES: usize = 48;
const EVENT_BYTES: usize = 32;
const EVENT_TYPE_CLOCK: u8 = 0;
const EVENT_TYPE_FD_READ: u8 = 1;
const EVENT_TYPE_FD_WRITE: u8 = 2;
const CLOCK_REALTIME: u32 = 0;
const SUBCLOCK_ABSTIME: u16 = 1;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;

/// What a `poll_oneoff` subscription waits for.
enum Wait {
    /// Until the virtual clock reaches this reading.
    Clock { due_ns: u64 },
    /// A file descriptor's readiness (always ready here).
    Fd { event_type: u8 },
}

/// The store data the replacement `poll_oneoff` needs.
pub(crate) trait HasJobClock {
    /// The run's virtual clock.
    fn job_clock(&self) -> &JobClock;
}

/// `wasi_snapshot_preview1.poll_oneoff(in, out, nsubscriptions, nevents) -> errno`
/// on the job's virtual clock (see the module header).
pub(crate) fn poll_oneoff<T: HasJobClock>(
    mut caller: Caller<'_, T>,
    subscriptions_ptr: i32,
    events_ptr: i32,
    subscriptions: i32,
    events_count_ptr: i32,
) -> wasmtime::Result<i32> {
    let Ok(count) = u32::try_from(subscriptions) else {
        return Ok(ERRNO_INVAL);
    };
    if count == 0 || count > POLL_SUBSCRIPTIONS_MAX {
        return Ok(ERRNO_INVAL);
    }
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Ok(ERRNO_FAULT);
    };
    let clock = caller.data().job_clock().clone();
    let memory = memory.data_mut(&mut caller);
    let count = count as usize;
    let Some(input) = guest_slice(memory, subscriptions_ptr, count * SUBSCRIPTION_BYTES) else {
        return Ok(ERRNO_FAULT);
    };

    let now = clock.now();
    let mut waits = Vec::with_capacity(count);
    for subscription in input.chunks_exact(SUBSCRIPTION_BYTES) {
        let userdata = read_u64(subscription, 0);
        let wait = match subscription[8] {
            EVENT_TYPE_CLOCK => {
                let clock_id = read_u32(subscription, 16);
                let timeout = read_u64(subscription, 24);
                let flags = u16::from_le_bytes([subscription[40], subscription[41]]);
                let due_ns = if flags & SUBCLOCK_ABSTIME == 0 {
                    now.saturating_add(timeout)
                } else if clock_id == CLOCK_REALTIME {
                    timeout.saturating_sub(CLOCK_START_SECS.saturating_mul(1_000_000_000))
                } else {
                    timeout
                };
                Wait::Clock { due_ns }
            }
            event_type @ (EVENT_TYPE_FD_READ | EVENT_TYPE_FD_WRITE) => Wait::Fd { event_type },
            _ => return Ok(ERRNO_INVAL),
        };
        waits.push((userdata, wait));
    }

    // Ready descriptors win over clocks; otherwise the earliest clock fires.
    let any_fd = waits.iter().any(|(_, w)| matches!(w, Wait::Fd { .. }));
    let earliest = waits
        .iter()
        .filter_map(|(_, w)| match w {
            Wait::Clock { due_ns } => Some(*due_ns),
            Wait::Fd { .. } => None,
        })
        .min();
    let mut fired = Vec::new();
    for (userdata, wait) in &waits {
        match *wait {
            Wait::Fd { event_type } => fired.push((*userdata, event_type)),
            Wait::Clock { due_ns } if !any_fd && Some(due_ns) == earliest => {
                fired.push((*userdata, EVENT_TYPE_CLOCK));
            }
            Wait::Clock { .. } => {}
        }
    }
    if !any_fd && let Some(due_ns) = earliest {
        clock.advance_to(due_ns);
    }

    let Some(output) = guest_slice(memory, events_ptr, fired.len() * EVENT_BYTES) else {
        return Ok(ERRNO_FAULT);
    };
    for (event, (userdata, event_type)) in output.chunks_exact_mut(EVENT_BYTES).zip(&fired) {
        event.fill(0);
        event[0..8].copy_from_slice(&userdata.to_le_bytes());
        event[10] = *event_type;
    }
    let Some(events_count) = guest_slice(memory, events_count_ptr, 4) else {
        return Ok(ERRNO_FAULT);
    };
    // `fired` has at most POLL_SUBSCRIPTIONS_MAX entries.
    events_count.copy_from_slice(&(fired.len() as u32).to_le_bytes());
    Ok(ERRNO_SUCCESS)
}

fn guest_slice(memory: &mut [u8], ptr: i32, len: usize) -> Option<&mut [u8]> {
    let start = ptr as u32 as usize;
    memory.get_mut(start..start.checked_add(len)?)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    #[test]
    fn clocks_start_fixed_and_advance_per_read() {
        let clock = JobClock::default();
        let wall = clock.wall();
        let monotonic = clock.monotonic();
        assert_eq!(monotonic.now(), CLOCK_STEP_NS);
        assert_eq!(
            wall.now(),
            Duration::from_secs(CLOCK_START_SECS) + Duration::from_nanos(2 * CLOCK_STEP_NS)
        );
        clock.advance_to(10 * CLOCK_STEP_NS);
        clock.advance_to(5);
        assert_eq!(monotonic.now(), 11 * CLOCK_STEP_NS);
    }

    #[test]
    fn the_failure_digest_moves_with_every_field_and_is_no_output_digest() {
        use crate::Failure;
        let base = failure_digest(Failure::OutOfFuel, 10, b"out", b"err");
        assert_eq!(base, failure_digest(Failure::OutOfFuel, 10, b"out", b"err"));
        for other in [
            failure_digest(Failure::Trap, 10, b"out", b"err"),
            failure_digest(Failure::OutOfFuel, 11, b"out", b"err"),
            failure_digest(Failure::OutOfFuel, 10, b"ou", b"err"),
            failure_digest(Failure::OutOfFuel, 10, b"out", b"er"),
            // The length prefixes keep the streams apart.
            failure_digest(Failure::OutOfFuel, 10, b"outerr", b""),
        ] {
            assert_ne!(base, other);
        }
        assert_ne!(
            failure_digest(Failure::OutOfFuel, 0, b"", b""),
            crate::output_digest(0, b"", b"", &[])
        );
    }

    #[test]
    fn random_streams_follow_the_seed() {
        let draw = |seed, stream| job_rng(seed, stream).next_u64();
        assert_eq!(draw(1, "secure"), draw(1, "secure"));
        assert_ne!(draw(1, "secure"), draw(2, "secure"));
        assert_ne!(draw(1, "secure"), draw(1, "insecure"));
        assert_eq!(insecure_seed(3), insecure_seed(3));
        assert_ne!(insecure_seed(3), insecure_seed(4));
    }
}
