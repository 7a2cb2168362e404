//! The parameter sweep that answers "are incentives sufficient to attract
//! and retain providers": many small runs over a grid of electricity price
//! × demand, and a line over the cloud list's price level, each reporting
//! how many of the starting farmers stayed and how many are profitable.
//!
//! A point fails when fewer than [`SUFFICIENT_SHARE`] of the starting
//! farmers are still in the market at the end, or fewer than that share
//! of those in it are profitable. Points run in parallel (one thread per
//! core); each is its own deterministic run, so the sweep is too.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::output::{create_dir, write_file};
use crate::plots::{HeatMap, Labels, Series, heat_map, line_chart};

/// A point's incentives are sufficient when at least this share of the
/// starting farmers stays and at least this share of those in the market
/// is profitable at the end.
pub const SUFFICIENT_SHARE: f64 = 0.5;

/// What to sweep, and how big each run is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepGrid {
    /// Farmers per run.
    pub farmers: usize,
    /// Users per run.
    pub users: usize,
    /// Days per run.
    pub days: u32,
    /// Electricity prices, USD per kWh (grid columns).
    pub electricity: Vec<f64>,
    /// Demand levels (grid rows).
    pub demand: Vec<f64>,
    /// Cloud list price levels, at the base electricity and demand.
    pub price_scale: Vec<f64>,
}

impl Default for SweepGrid {
    fn default() -> Self {
        SweepGrid {
            farmers: 400,
            users: 4_000,
            days: 30,
            electricity: vec![0.05, 0.10, 0.20, 0.35, 0.50, 0.80],
            demand: vec![0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
            price_scale: vec![0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0],
        }
    }
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// Electricity price, USD per kWh.
    pub electricity: f64,
    /// Demand level.
    pub demand: f64,
    /// Cloud list price level (1.0 = the list as given).
    pub price_scale: f64,
    /// Share of the starting farmers still in the market at the end.
    pub retained_share: f64,
    /// Share of the farmers in the market that are profitable at the end.
    pub profitable_share: f64,
    /// Farmers at the end over farmers at the start (newcomers count).
    pub farmers_end_share: f64,
    /// CPU utilisation over the last week.
    pub utilisation_cpu: f64,
    /// What users paid over the cloud list's price.
    pub user_cost_vs_cloud: f64,
    /// Share of requests served.
    pub served_share: f64,
    /// Whether incentives were sufficient (see [`SUFFICIENT_SHARE`]).
    pub sufficient: bool,
}

/// Every point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepReport {
    /// What was swept.
    pub grid: SweepGrid,
    /// The electricity × demand grid, row by row (demand), then the price
    /// levels.
    pub points: Vec<SweepPoint>,
}

impl SweepReport {
    /// The grid's points (electricity × demand).
    pub fn grid_points(&self) -> &[SweepPoint] {
        let cells = self.grid.electricity.len() * self.grid.demand.len();
        &self.points[..cells.min(self.points.len())]
    }

    /// The cloud price level points.
    pub fn price_points(&self) -> &[SweepPoint] {
        let cells = self.grid.electricity.len() * self.grid.demand.len();
        &self.points[cells.min(self.points.len())..]
    }
}

fn run_point(
    base: &SimConfig,
    electricity: f64,
    demand: f64,
    scale: f64,
) -> Result<SweepPoint, SimError> {
    let mut config = base.clone();
    config.electricity_usd_kwh = electricity;
    config.demand = demand;
    config.prices = base.prices.scaled(scale);
    // The sweep asks about incentives; the ledger cross-check is the main run's.
    config.ledger_every = 0;
    let report = crate::run(&config)?;
    let s = &report.summary;
    let farmers_end_share = s.farmers_end as f64 / s.farmers_start.max(1) as f64;
    Ok(SweepPoint {
        electricity,
        demand,
        price_scale: scale,
        retained_share: s.initial_retained_share,
        profitable_share: s.profitable_share_end,
        farmers_end_share,
        utilisation_cpu: s.utilisation_cpu,
        user_cost_vs_cloud: s.user_cost_vs_cloud,
        served_share: s.served_share,
        sufficient: s.initial_retained_share >= SUFFICIENT_SHARE
            && s.profitable_share_end >= SUFFICIENT_SHARE,
    })
}

/// Runs the sweep: `base` with `grid`'s agents and days, over every
/// electricity × demand pair, then every cloud price level at `base`'s
/// electricity and demand.
pub fn sweep(base: &SimConfig, grid: &SweepGrid) -> Result<SweepReport, SimError> {
    let mut config = base.with_agents(grid.farmers, grid.users);
    config.days = grid.days;
    let mut jobs: Vec<(f64, f64, f64)> = Vec::new();
    for demand in &grid.demand {
        for electricity in &grid.electricity {
            jobs.push((*electricity, *demand, 1.0));
        }
    }
    for scale in &grid.price_scale {
        jobs.push((base.electricity_usd_kwh, base.demand, *scale));
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    let results: Vec<Vec<(usize, Result<SweepPoint, SimError>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (jobs, config) = (&jobs, &config);
                scope.spawn(move || {
                    (worker..jobs.len())
                        .step_by(workers)
                        .map(|at| {
                            let (electricity, demand, scale) = jobs[at];
                            (at, run_point(config, electricity, demand, scale))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut points: Vec<Option<SweepPoint>> = vec![None; jobs.len()];
    for (at, result) in results.into_iter().flatten() {
        points[at] = Some(result?);
    }
    let points = points
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or(SimError::SweepWorker)?;
    Ok(SweepReport {
        grid: grid.clone(),
        points,
    })
}

/// The columns of `sweep.csv`.
pub const SWEEP_COLUMNS: [&str; 10] = [
    "electricity_usd_kwh",
    "demand",
    "price_scale",
    "retained_share",
    "profitable_share",
    "farmers_end_share",
    "utilisation_cpu",
    "user_cost_vs_cloud",
    "served_share",
    "sufficient",
];

/// Writes `sweep.csv`, the two heat maps and the price level chart into
/// `dir`; returns the files written.
pub fn write_sweep_outputs(report: &SweepReport, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    let mut text = SWEEP_COLUMNS.join(",");
    text.push('\n');
    for p in &report.points {
        text.push_str(&format!(
            "{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{}\n",
            p.electricity,
            p.demand,
            p.price_scale,
            p.retained_share,
            p.profitable_share,
            p.farmers_end_share,
            p.utilisation_cpu,
            p.user_cost_vs_cloud,
            p.served_share,
            p.sufficient
        ));
    }
    let path = dir.join("sweep.csv");
    write_file(&path, &text)?;
    written.push(path);
    let grid = &report.grid;
    let xs: Vec<String> = grid
        .electricity
        .iter()
        .map(|e| format!("${e:.2}"))
        .collect();
    let ys: Vec<String> = grid.demand.iter().map(|d| format!("{d}x")).collect();
    let columns = grid.electricity.len().max(1);
    let cells = report.grid_points();
    let by_row = |value: fn(&SweepPoint) -> f64| -> Vec<Vec<f64>> {
        cells
            .chunks(columns)
            .map(|row| row.iter().map(value).collect())
            .collect()
    };
    let maps = [
        (
            "sweep_retention.svg",
            "Starting farmers still in the market after the run",
            by_row(|p| p.retained_share),
        ),
        (
            "sweep_profitable.svg",
            "Farmers in the market that are profitable at the end",
            by_row(|p| p.profitable_share),
        ),
    ];
    for (name, title, values) in maps {
        let path = dir.join(name);
        let map = HeatMap {
            labels: Labels {
                title,
                x: "electricity price, USD per kWh",
                y: "demand (1x = default)",
            },
            xs: xs.clone(),
            ys: ys.clone(),
            values,
            fail_below: SUFFICIENT_SHARE,
        };
        heat_map(&path, &map)?;
        written.push(path);
    }
    let prices = report.price_points();
    let line =
        |value: fn(&SweepPoint) -> f64| prices.iter().map(|p| (p.price_scale, value(p))).collect();
    let x_span = (
        prices.first().map_or(0.0, |p| p.price_scale),
        prices.last().map_or(1.0, |p| p.price_scale),
    );
    let path = dir.join("sweep_cloud_price.svg");
    line_chart(
        &path,
        Labels {
            title: "Incentives against the cloud list's price level",
            x: "cloud list price level (1.0 = the list given)",
            y: "share",
        },
        &[
            Series::line("starting farmers retained", line(|p| p.retained_share)),
            Series::line("profitable at the end", line(|p| p.profitable_share)),
            Series::line("cpu utilisation", line(|p| p.utilisation_cpu)),
            Series::reference("sufficiency threshold", x_span, SUFFICIENT_SHARE),
        ],
    )?;
    written.push(path);
    Ok(written)
}
