//! A run's outputs in a directory: `days.csv` (one row per day),
//! `summary.json`, and the charts `prices.svg`, `utilisation.svg`,
//! `farmers.svg`, `profit.svg` and `user_cost.svg`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::SimError;
use crate::plots::{Labels, Series, line_chart};
use crate::report::{DayRow, SimReport};

/// The columns of `days.csv`, in order.
pub const DAY_COLUMNS: [&str; 32] = [
    "day",
    "farmers_active",
    "farmers_joined",
    "farmers_quit",
    "farmers_profitable_share",
    "mean_multiplier",
    "users_active",
    "requests",
    "awards",
    "unserved",
    "price_core_hour_median_usd",
    "price_core_hour_mean_usd",
    "price_vs_cloud_median",
    "price_vs_cloud_mean",
    "utilisation_cpu",
    "utilisation_mem",
    "utilisation_disk",
    "revenue_cpu_usd",
    "revenue_mem_usd",
    "revenue_disk_usd",
    "cost_cpu_usd",
    "cost_mem_usd",
    "cost_disk_usd",
    "profit_cpu_usd",
    "profit_mem_usd",
    "profit_disk_usd",
    "profit_per_vcpu_month_usd",
    "profit_per_ram_gib_month_usd",
    "profit_per_disk_tib_month_usd",
    "user_paid_usd",
    "cloud_equivalent_usd",
    "user_cost_vs_cloud",
];

/// Creates `dir` (and its parents).
pub fn create_dir(dir: &Path) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `text` to `path`.
pub fn write_file(path: &Path, text: &str) -> Result<(), SimError> {
    std::fs::write(path, text).map_err(|source| SimError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn csv_row(row: &DayRow) -> String {
    let mut fields: Vec<String> = vec![
        row.day.to_string(),
        row.farmers_active.to_string(),
        row.farmers_joined.to_string(),
        row.farmers_quit.to_string(),
        format!("{:.4}", row.farmers_profitable_share),
        format!("{:.4}", row.mean_multiplier),
        row.users_active.to_string(),
        row.requests.to_string(),
        row.awards.to_string(),
        row.unserved.to_string(),
        format!("{:.6}", row.price_core_hour_median_usd),
        format!("{:.6}", row.price_core_hour_mean_usd),
        format!("{:.4}", row.price_vs_cloud_median),
        format!("{:.4}", row.price_vs_cloud_mean),
        format!("{:.4}", row.utilisation_cpu),
        format!("{:.4}", row.utilisation_mem),
        format!("{:.4}", row.utilisation_disk),
    ];
    for values in [row.revenue_usd, row.cost_usd, row.profit_usd] {
        fields.extend(values.iter().map(|v| format!("{v:.2}")));
    }
    fields.extend([
        format!("{:.4}", row.profit_per_vcpu_month_usd),
        format!("{:.4}", row.profit_per_ram_gib_month_usd),
        format!("{:.4}", row.profit_per_disk_tib_month_usd),
        format!("{:.2}", row.user_paid_usd),
        format!("{:.2}", row.cloud_equivalent_usd),
        format!("{:.4}", row.user_cost_vs_cloud),
    ]);
    fields.join(",")
}

/// `days.csv`'s text.
pub fn days_csv(report: &SimReport) -> String {
    let mut text = DAY_COLUMNS.join(",");
    text.push('\n');
    for row in &report.days {
        let _ = writeln!(text, "{}", csv_row(row));
    }
    text
}

fn points(report: &SimReport, mut value: impl FnMut(&DayRow) -> f64) -> Vec<(f64, f64)> {
    report
        .days
        .iter()
        .map(|r| (f64::from(r.day), value(r)))
        .collect()
}

/// Writes every output of `report` into `dir`; returns the files written.
pub fn write_outputs(report: &SimReport, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    let path = dir.join("days.csv");
    write_file(&path, &days_csv(report))?;
    written.push(path);
    let path = dir.join("summary.json");
    let json = serde_json::json!({
        "seed": report.seed,
        "summary": report.summary,
        "money": report.money,
        "ledger": report.ledger,
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| SimError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    write_file(&path, &text)?;
    written.push(path);
    for (name, labels, series) in charts(report) {
        let path = dir.join(name);
        line_chart(&path, labels, &series)?;
        written.push(path);
    }
    Ok(written)
}

type Chart = (&'static str, Labels<'static>, Vec<Series>);

fn charts(report: &SimReport) -> Vec<Chart> {
    let days = (
        report.days.first().map_or(0.0, |r| f64::from(r.day)),
        report.days.last().map_or(1.0, |r| f64::from(r.day)),
    );
    let cloud = report.summary.cloud_vcpu_hour_usd;
    let resources = ["cpu", "mem", "disk"];
    vec![
        (
            "prices.svg",
            Labels {
                title: "Clearing price per vCPU-hour (the award's CPU part)",
                x: "day",
                y: "USD per vCPU-hour",
            },
            vec![
                Series::line("median", points(report, |r| r.price_core_hour_median_usd)),
                Series::line("mean", points(report, |r| r.price_core_hour_mean_usd)),
                Series::reference(
                    format!("cloud list vCPU-hour ({})", report.summary.prices),
                    days,
                    cloud,
                ),
            ],
        ),
        (
            "utilisation.svg",
            Labels {
                title: "Utilisation of the active farmers' capacity",
                x: "day",
                y: "share leased",
            },
            vec![
                Series::line("cpu", points(report, |r| r.utilisation_cpu)),
                Series::line("memory", points(report, |r| r.utilisation_mem)),
                Series::line("disk", points(report, |r| r.utilisation_disk)),
            ],
        ),
        (
            "farmers.svg",
            Labels {
                title: "Farmers: in the market, and the share profitable over the patience window",
                x: "day",
                y: "share of the starting farmers",
            },
            {
                let start = report.summary.farmers_start.max(1) as f64;
                vec![
                    Series::line(
                        "active / start",
                        points(report, |r| r.farmers_active as f64 / start),
                    ),
                    Series::line(
                        "profitable share",
                        points(report, |r| r.farmers_profitable_share),
                    ),
                    Series::line("cumulative quit / start", {
                        let mut quit = 0.0;
                        points(report, |r| {
                            quit += r.farmers_quit as f64;
                            quit / start
                        })
                    }),
                ]
            },
        ),
        (
            "profit.svg",
            Labels {
                title: "Farmers' profit per resource (revenue - electricity, overhead, amortisation)",
                x: "day",
                y: "USD per day, all farmers",
            },
            resources
                .iter()
                .enumerate()
                .map(|(i, name)| Series::line(*name, points(report, |r| r.profit_usd[i])))
                .collect(),
        ),
        (
            "user_cost.svg",
            Labels {
                title: "What users paid against the cloud list, same leases",
                x: "day",
                y: "USD per day",
            },
            vec![
                Series::line("users paid", points(report, |r| r.user_paid_usd)),
                Series::line(
                    "cloud list price",
                    points(report, |r| r.cloud_equivalent_usd),
                ),
            ],
        ),
    ]
}
