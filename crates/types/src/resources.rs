//! Resources: what a node has free and what a request asks for.

use serde::{Deserialize, Serialize};

/// A bundle of resources. All fields are whole units; zero means "none asked"
/// on a request and "none offered" on a node.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// CPU in millicores (1000 = one core).
    pub cpu_millicores: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Disk in bytes.
    pub storage_bytes: u64,
    /// Network bandwidth in bytes per second.
    pub bandwidth_bytes_per_sec: u64,
    /// Whole GPUs.
    pub gpus: u32,
}

impl Resources {
    /// Whether every field of `self` is at most the same field of `capacity`.
    pub fn fits_within(&self, capacity: &Resources) -> bool {
        self.cpu_millicores <= capacity.cpu_millicores
            && self.memory_bytes <= capacity.memory_bytes
            && self.storage_bytes <= capacity.storage_bytes
            && self.bandwidth_bytes_per_sec <= capacity.bandwidth_bytes_per_sec
            && self.gpus <= capacity.gpus
    }

    /// Field-wise `self - used`, or `None` if any field would go negative.
    #[must_use]
    pub fn checked_sub(&self, used: &Resources) -> Option<Resources> {
        Some(Resources {
            cpu_millicores: self.cpu_millicores.checked_sub(used.cpu_millicores)?,
            memory_bytes: self.memory_bytes.checked_sub(used.memory_bytes)?,
            storage_bytes: self.storage_bytes.checked_sub(used.storage_bytes)?,
            bandwidth_bytes_per_sec: self
                .bandwidth_bytes_per_sec
                .checked_sub(used.bandwidth_bytes_per_sec)?,
            gpus: self.gpus.checked_sub(used.gpus)?,
        })
    }

    /// Field-wise `self + more`, or `None` on overflow.
    #[must_use]
    pub fn checked_add(&self, more: &Resources) -> Option<Resources> {
        Some(Resources {
            cpu_millicores: self.cpu_millicores.checked_add(more.cpu_millicores)?,
            memory_bytes: self.memory_bytes.checked_add(more.memory_bytes)?,
            storage_bytes: self.storage_bytes.checked_add(more.storage_bytes)?,
            bandwidth_bytes_per_sec: self
                .bandwidth_bytes_per_sec
                .checked_add(more.bandwidth_bytes_per_sec)?,
            gpus: self.gpus.checked_add(more.gpus)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_and_subtract() {
        let node = Resources {
            cpu_millicores: 2000,
            memory_bytes: 1 << 30,
            ..Default::default()
        };
        let ask = Resources {
            cpu_millicores: 500,
            memory_bytes: 1 << 20,
            ..Default::default()
        };
        assert!(ask.fits_within(&node));
        assert!(!node.fits_within(&ask));
        let left = node.checked_sub(&ask).unwrap();
        assert_eq!(left.cpu_millicores, 1500);
        assert_eq!(left.checked_add(&ask), Some(node));
        assert_eq!(ask.checked_sub(&node), None);
    }
}
