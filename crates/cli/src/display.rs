//! How the CLI prints quantities for people: tokens, bytes, resources, times.
//! JSON output never goes through here; it carries the API's values as they are.

use std::time::{SystemTime, UNIX_EPOCH};

use peercloud_types::{Amount, Resources};

/// An amount as `12.5 PCL`.
pub fn pcl(amount: &Amount) -> String {
    format!("{amount} PCL")
}

/// Bytes in binary units: `512 B`, `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut whole = n;
    while whole >= 1024 && unit + 1 < UNITS.len() {
        whole /= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n} B");
    }
    // One decimal, from integers: n / 1024^unit to tenths.
    let divisor = 1u128 << (10 * unit);
    let tenths = (u128::from(n) * 10 + divisor / 2) / divisor;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// A node's resources on one line: `4 cores, 8.0 GiB memory, 100.0 GiB disk`.
pub fn resources(r: &Resources) -> String {
    let cores = r.cpu_millicores / 1000;
    let milli = r.cpu_millicores % 1000;
    let cpu = if milli == 0 {
        format!("{cores} cores")
    } else {
        let decimals = format!("{milli:03}");
        format!("{cores}.{} cores", decimals.trim_end_matches('0'))
    };
    let mut parts = vec![
        cpu,
        format!("{} memory", bytes(r.memory_bytes)),
        format!("{} disk", bytes(r.storage_bytes)),
    ];
    if r.gpus > 0 {
        parts.push(format!("{} GPUs", r.gpus));
    }
    parts.join(", ")
}

/// A time in ms since the Unix epoch, relative to now: `12 s ago`, `in 3 min`.
pub fn relative_time(ms: u64) -> String {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (delta_ms, past) = if now_ms >= ms {
        (now_ms - ms, true)
    } else {
        (ms - now_ms, false)
    };
    let secs = delta_ms / 1000;
    let span = match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    };
    if past {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A time in ms since the Unix epoch as a UTC date and time to the second:
/// `2026-03-01 14:05:09 UTC`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, of_day) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's
    // `civil_from_days`, over eras of 400 years from 0000-03-01).
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_binary_units_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 << 30), "8.0 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn amounts_are_printed_exactly_with_their_unit() {
        assert_eq!(pcl(&"1.500000000".parse().unwrap()), "1.5 PCL");
        assert_eq!(pcl(&"0.0001".parse().unwrap()), "0.0001 PCL");
    }

    #[test]
    fn utc_times_read_as_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(951_955_199_999), "2000-03-01 23:59:59 UTC");
        assert_eq!(utc(1_704_067_199_000), "2023-12-31 23:59:59 UTC");
        assert_eq!(utc(1_772_373_909_000), "2026-03-01 14:05:09 UTC");
    }

    #[test]
    fn resources_read_as_a_sentence() {
        let r = Resources {
            cpu_millicores: 2500,
            memory_bytes: 4 << 30,
            storage_bytes: 0,
            bandwidth_bytes_per_sec: 0,
            gpus: 1,
        };
        assert_eq!(resources(&r), "2.5 cores, 4.0 GiB memory, 0 B disk, 1 GPUs");
    }
}
