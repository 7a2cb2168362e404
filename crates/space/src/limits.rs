//! A lease's resources as the limits the kernel enforces on its container.

use peercloud_types::Resources;

use crate::error::SpaceError;

/// Most processes (and threads) one space may run: a fork bomb stops here.
pub const PIDS_MAX: u32 = 256;
/// The least CPU a space runs with, millicores.
pub const CPU_MILLICORES_MIN: u64 = 10;
/// The least memory a space runs with, bytes.
pub const MEMORY_BYTES_MIN: u64 = 8 << 20;
/// The least `/data` a space gets, bytes.
pub const DISK_BYTES_MIN: u64 = 1 << 20;
/// The `/tmp` every space gets (counted in its memory limit), bytes.
pub const TMP_BYTES: u64 = 4 << 20;

/// The kernel-enforced limits of one space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceLimits {
    /// CPU, millicores (1000 = one core), a CFS quota.
    pub cpu_millicores: u64,
    /// Memory for the user's processes, bytes.
    pub memory_bytes: u64,
    /// The `/data` volume, bytes (held in memory: a full one is `ENOSPC`).
    pub disk_bytes: u64,
    /// Processes and threads.
    pub pids: u32,
}

impl SpaceLimits {
    /// The limits of a lease of `resources`; refused when a resource is
    /// below what a space can run with.
    pub fn from_resources(resources: &Resources) -> Result<SpaceLimits, SpaceError> {
        let at_least = |what, given: u64, min: u64| {
            if given < min {
                Err(SpaceError::TooSmall { what, min, given })
            } else {
                Ok(given)
            }
        };
        let limits = SpaceLimits {
            cpu_millicores: at_least(
                "CPU (millicores)",
                resources.cpu_millicores,
                CPU_MILLICORES_MIN,
            )?,
            memory_bytes: at_least("memory (bytes)", resources.memory_bytes, MEMORY_BYTES_MIN)?,
            disk_bytes: at_least("storage (bytes)", resources.storage_bytes, DISK_BYTES_MIN)?,
            pids: PIDS_MAX,
        };
        limits.cgroup_memory_bytes()?;
        limits.nano_cpus()?;
        Ok(limits)
    }

    /// The cgroup's memory limit: the user's memory, the `/data` volume and
    /// `/tmp` (their pages are the cgroup's), with no swap beyond it.
    pub fn cgroup_memory_bytes(&self) -> Result<i64, SpaceError> {
        let total = self
            .memory_bytes
            .checked_add(self.disk_bytes)
            .and_then(|m| m.checked_add(TMP_BYTES))
            .ok_or(SpaceError::TooLarge {
                what: "memory and storage",
                given: self.memory_bytes,
            })?;
        i64::try_from(total).map_err(|_| SpaceError::TooLarge {
            what: "memory and storage",
            given: total,
        })
    }

    /// The CPU limit as the engine takes it (billionths of a CPU).
    pub fn nano_cpus(&self) -> Result<i64, SpaceError> {
        self.cpu_millicores
            .checked_mul(1_000_000)
            .and_then(|n| i64::try_from(n).ok())
            .ok_or(SpaceError::TooLarge {
                what: "CPU (millicores)",
                given: self.cpu_millicores,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(cpu: u64, memory: u64, storage: u64) -> Resources {
        Resources {
            cpu_millicores: cpu,
            memory_bytes: memory,
            storage_bytes: storage,
            ..Resources::default()
        }
    }

    #[test]
    fn the_cgroup_holds_memory_disk_and_tmp() {
        let limits = SpaceLimits::from_resources(&resources(500, 64 << 20, 16 << 20)).unwrap();
        assert_eq!(limits.cgroup_memory_bytes().unwrap(), (64 + 16 + 4) << 20);
        assert_eq!(limits.nano_cpus().unwrap(), 500_000_000);
        assert_eq!(limits.pids, PIDS_MAX);
    }

    #[test]
    fn too_little_of_anything_is_refused_by_name() {
        let error = SpaceLimits::from_resources(&resources(500, 1 << 20, 16 << 20)).unwrap_err();
        assert!(
            matches!(
                error,
                SpaceError::TooSmall {
                    what: "memory (bytes)",
                    ..
                }
            ),
            "{error}"
        );
        let error = SpaceLimits::from_resources(&resources(0, 64 << 20, 16 << 20)).unwrap_err();
        assert!(
            matches!(
                error,
                SpaceError::TooSmall {
                    what: "CPU (millicores)",
                    ..
                }
            ),
            "{error}"
        );
        let error = SpaceLimits::from_resources(&resources(500, 64 << 20, 0)).unwrap_err();
        assert!(
            matches!(
                error,
                SpaceError::TooSmall {
                    what: "storage (bytes)",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn what_the_engine_cannot_hold_is_refused() {
        let error = SpaceLimits::from_resources(&resources(500, u64::MAX, 16 << 20)).unwrap_err();
        assert!(matches!(error, SpaceError::TooLarge { .. }), "{error}");
        let error =
            SpaceLimits::from_resources(&resources(u64::MAX, 64 << 20, 16 << 20)).unwrap_err();
        assert!(matches!(error, SpaceError::TooLarge { .. }), "{error}");
    }
}
