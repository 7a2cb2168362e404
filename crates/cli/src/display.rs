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
