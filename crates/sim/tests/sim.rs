//! The simulator end to end on small markets: the same seed gives the same
//! report, money is conserved on the fast path and on the ledger sample
//! (whose records must equal the fast path's, or the run fails), no farmer
//! is paid under its floor, farmers leave a market with no demand and stay
//! in one with cheap power and much demand, and the outputs are written.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use peercloud_sim::{
    DAY_COLUMNS, SimConfig, SimReport, SweepGrid, run, sweep, write_outputs, write_sweep_outputs,
};

/// A market small enough for a debug build (the ledger checks every
/// invariant after every transaction there), with a ledger sample of one
/// lease in four.
fn small(seed: u64) -> SimConfig {
    let mut config = SimConfig::default().with_agents(60, 600);
    config.seed = seed;
    config.days = 12;
    config.ledger_every = 4;
    config
}

fn run_ok(config: &SimConfig) -> SimReport {
    match run(config) {
        Ok(report) => report,
        Err(error) => panic!("the run failed: {error}"),
    }
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let config = small(11);
    let first = run_ok(&config);
    assert_eq!(first, run_ok(&config));
    assert_eq!(first.days.len(), 12);
    let other = run_ok(&small(12));
    assert_ne!(first.days, other.days);
}

#[test]
fn money_is_conserved_and_the_ledger_sample_agrees() {
    let report = run_ok(&small(3));
    let money = report.money;
    assert!(money.deposited > 0);
    assert!(money.balanced(), "{money:?}");
    // What users parted with is exactly what farmers were paid.
    let users_spent = money.deposited - money.refunded - money.held;
    assert_eq!(users_spent, money.paid);
    // And the days' dollar sums say the same (to float rounding).
    let paid: f64 = report.days.iter().map(|d| d.user_paid_usd).sum();
    let revenue: f64 = report
        .days
        .iter()
        .map(|d| d.revenue_usd.iter().sum::<f64>())
        .sum();
    assert!(
        (paid - revenue).abs() < 1e-6 * paid.max(1.0),
        "{paid} vs {revenue}"
    );
    assert!((paid - money.paid as f64 / 1e9).abs() < 1e-6 * paid.max(1.0));
    // The sample ran on the ledger: its invariants held and every sampled
    // lease's record matched (run returns an error otherwise).
    let ledger = report.ledger;
    assert!(ledger.leases >= report.summary.leases / 4, "{ledger:?}");
    assert!(ledger.transactions > ledger.leases * 3);
    assert!(ledger.paid > 0 && ledger.paid <= money.paid);
}

#[test]
fn no_farmer_is_paid_under_its_floor_nor_a_user_over_its_reserve() {
    let mut config = small(5);
    // Scarce supply: farmers busy, surges high, prices near the reserves.
    config.demand = 2.5;
    config.ledger_every = 0;
    let report = run_ok(&config);
    let summary = &report.summary;
    assert!(summary.awards > 500, "{summary:?}");
    assert_eq!(summary.awards_under_floor, 0);
    assert_eq!(summary.awards_over_reserve, 0);
    assert!(report.days.iter().any(|d| d.utilisation_cpu > 0.6));
}

#[test]
fn with_no_demand_farmers_leave() {
    let mut config = small(7);
    config.demand = 0.0;
    config.days = 30;
    config.ledger_every = 0;
    let report = run_ok(&config);
    let summary = &report.summary;
    assert_eq!(summary.awards, 0);
    assert_eq!(summary.farmers_joined, 0);
    assert!(
        summary.farmers_end * 10 < summary.farmers_start,
        "{} of {} farmers stayed with nothing to sell",
        summary.farmers_end,
        summary.farmers_start
    );
    assert!(
        report
            .days
            .iter()
            .all(|d| d.profit_usd.iter().sum::<f64>() <= 0.0)
    );
}

#[test]
fn cheap_power_and_much_demand_keep_farmers_profitable() {
    let mut config = small(9);
    config.electricity_usd_kwh = 0.05;
    config.demand = 2.0;
    config.days = 20;
    config.ledger_every = 0;
    let report = run_ok(&config);
    let summary = &report.summary;
    assert!(summary.profitable_share_end > 0.9, "{summary:?}");
    assert!(summary.initial_retained_share > 0.9, "{summary:?}");
    assert!(
        summary.farmers_joined > 0,
        "a profitable market draws newcomers"
    );
    assert!(summary.profit_usd[0] > 0.0);
}

#[test]
fn outputs_are_written() {
    let report = run_ok(&small(1));
    let dir = tempfile::tempdir().unwrap();
    let written = write_outputs(&report, dir.path()).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("days.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(DAY_COLUMNS.join(",").as_str()));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), report.days.len());
    assert!(
        rows.iter()
            .all(|r| r.split(',').count() == DAY_COLUMNS.len())
    );
    for name in [
        "summary.json",
        "prices.svg",
        "utilisation.svg",
        "farmers.svg",
        "profit.svg",
        "user_cost.svg",
    ] {
        let path = dir.path().join(name);
        assert!(written.contains(&path), "{name} not listed");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() > 500, "{name} is nearly empty");
        if name.ends_with(".svg") {
            assert!(
                text.contains("<svg") && text.contains("<polyline"),
                "{name}"
            );
        }
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["seed"], 1);
}

#[test]
fn a_small_sweep_marks_where_incentives_fail() {
    let grid = SweepGrid {
        farmers: 30,
        users: 300,
        days: 20,
        electricity: vec![0.05, 0.8],
        demand: vec![0.0, 1.5],
        price_scale: vec![0.02, 1.0],
    };
    let base = SimConfig {
        electricity_usd_kwh: 0.05,
        demand: 1.5,
        ..SimConfig::default()
    };
    let report = sweep(&base, &grid).unwrap();
    assert_eq!(report.points.len(), 6);
    let at = |e: f64, d: f64| {
        report
            .grid_points()
            .iter()
            .find(|p| p.electricity == e && p.demand == d)
            .unwrap()
    };
    // No demand fails at any power price; cheap power and demand do not.
    assert!(!at(0.05, 0.0).sufficient && !at(0.8, 0.0).sufficient);
    assert!(at(0.05, 1.5).sufficient, "{:?}", at(0.05, 1.5));
    // A cloud at 2% of GCP's prices leaves farmers nothing to earn.
    let prices = report.price_points();
    assert!(!prices[0].sufficient && prices[1].sufficient, "{prices:?}");
    let dir = tempfile::tempdir().unwrap();
    let written = write_sweep_outputs(&report, dir.path()).unwrap();
    assert_eq!(written.len(), 4);
    for path in written {
        assert!(
            std::fs::metadata(&path).unwrap().len() > 200,
            "{}",
            path.display()
        );
    }
}
