//! The cloud price list the market is measured against, and the one
//! exchange rate of the simulation.
//!
//! A user's reserve (the most it pays per period) is what the same
//! resources would cost on the cloud list, times its willingness; the
//! outputs compare what users paid with what the cloud would have charged.
//!
//! Money on the ledger and in the fast path is exact integer [`Amount`]s;
//! the simulation values one token (PCL) at one US dollar, so one base unit
//! is a nano-dollar. Farmers' costs (electricity, hardware) are not ledger
//! money: they are economics, kept in `f64` dollars, and so are the
//! outputs' sums.

use std::path::Path;

use peercloud_types::{Amount, Resources};
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Base units in one US dollar: one token is valued at one dollar.
pub const BASE_UNITS_PER_USD: f64 = 1e9;
/// Bytes in one GiB.
pub const BYTES_PER_GIB: f64 = (1u64 << 30) as f64;
/// Millicores in one vCPU (the simulation counts a hardware thread as a
/// vCPU, as clouds do).
pub const MILLICORES_PER_VCPU: f64 = 1_000.0;
/// Hours in the month cloud lists price disks by (730 = 8760 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;
/// Milliseconds in one hour.
pub const MS_PER_HOUR: u64 = 3_600_000;

/// The default price list: GCP E2 on-demand in us-central1 (the source and
/// date are in the file's comments).
pub const DEFAULT_PRICES_TOML: &str = include_str!("../prices/gcp-e2-us-central1.toml");

/// A cloud's list prices in US dollars, per resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudPrices {
    /// What the list is (shown in outputs).
    pub name: String,
    /// Per vCPU per hour.
    pub vcpu_hour: f64,
    /// Per GiB of memory per hour.
    pub ram_gib_hour: f64,
    /// Per GiB of disk per month (730 hours).
    pub disk_gib_month: f64,
}

impl Default for CloudPrices {
    fn default() -> Self {
        // The shipped file is checked by a unit test; a parse failure here
        // would be a build mistake, so fall back to its figures verbatim.
        toml::from_str(DEFAULT_PRICES_TOML).unwrap_or_else(|_| CloudPrices {
            name: "GCP E2 on-demand, us-central1".into(),
            vcpu_hour: 0.021811,
            ram_gib_hour: 0.002923,
            disk_gib_month: 0.10,
        })
    }
}

impl CloudPrices {
    /// Reads a price list from a TOML file, or JSON when the name ends in
    /// `.json`, and checks it.
    pub fn load(path: &Path) -> Result<CloudPrices, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let is_json = path.extension().is_some_and(|ext| ext == "json");
        let prices: CloudPrices = if is_json {
            serde_json::from_str(&text).map_err(|e| SimError::PriceList {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| SimError::PriceList {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?
        };
        prices.validate().map_err(|reason| SimError::PriceList {
            path: path.to_path_buf(),
            reason: reason.into(),
        })?;
        Ok(prices)
    }

    /// Every price finite and positive.
    pub fn validate(&self) -> Result<(), &'static str> {
        let all = [self.vcpu_hour, self.ram_gib_hour, self.disk_gib_month];
        if all.iter().all(|p| p.is_finite() && *p > 0.0) {
            Ok(())
        } else {
            Err("every price must be a positive number")
        }
    }

    /// The list with every price times `scale` (the sweep's cloud price level).
    pub fn scaled(&self, scale: f64) -> CloudPrices {
        CloudPrices {
            name: format!("{} x {scale}", self.name),
            vcpu_hour: self.vcpu_hour * scale,
            ram_gib_hour: self.ram_gib_hour * scale,
            disk_gib_month: self.disk_gib_month * scale,
        }
    }

    /// What holding `resources` for `hours` costs on this list, in dollars.
    pub fn cost_usd(&self, resources: &Resources, hours: f64) -> f64 {
        let vcpus = resources.cpu_millicores as f64 / MILLICORES_PER_VCPU;
        let ram = resources.memory_bytes as f64 / BYTES_PER_GIB;
        let disk = resources.storage_bytes as f64 / BYTES_PER_GIB;
        hours
            * (vcpus * self.vcpu_hour
                + ram * self.ram_gib_hour
                + disk * self.disk_gib_month / HOURS_PER_MONTH)
    }
}

/// Dollars as base units, rounded down (negative and non-finite: zero).
pub fn usd_to_amount(usd: f64) -> Amount {
    let units = (usd * BASE_UNITS_PER_USD).floor();
    if units.is_finite() && units > 0.0 {
        Amount::from_base_units(units as u128)
    } else {
        Amount::ZERO
    }
}

/// Base units as dollars (for outputs only).
pub fn amount_to_usd(amount: Amount) -> f64 {
    amount.base_units() as f64 / BASE_UNITS_PER_USD
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn the_shipped_lists_parse_and_cost_what_their_comments_say() {
        let default: CloudPrices = toml::from_str(DEFAULT_PRICES_TOML).unwrap();
        assert_eq!(default, CloudPrices::default());
        // e2-standard-2: 2 vCPU + 8 GiB = $0.067006 an hour.
        let e2_standard_2 = Resources {
            cpu_millicores: 2_000,
            memory_bytes: 8 << 30,
            ..Resources::default()
        };
        let hourly = default.cost_usd(&e2_standard_2, 1.0);
        assert!((hourly - 0.067006).abs() < 1e-9, "{hourly}");
        let budget: CloudPrices =
            toml::from_str(include_str!("../prices/budget-vps.toml")).unwrap();
        budget.validate().unwrap();
        assert!(budget.vcpu_hour < default.vcpu_hour / 10.0);
    }

    #[test]
    fn dollars_become_whole_base_units() {
        assert_eq!(usd_to_amount(1.0), Amount::from_tokens(1));
        assert_eq!(usd_to_amount(-1.0), Amount::ZERO);
        assert_eq!(usd_to_amount(f64::NAN), Amount::ZERO);
        assert_eq!(amount_to_usd(Amount::from_base_units(1_500_000_000)), 1.5);
    }
}
