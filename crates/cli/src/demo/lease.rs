//! The demo's lease act, when the machine has a Docker engine: a container
//! space rented through node 1 as `peercloud lease request` rents it (sealed
//! bids, the award, the space's access check, then activation), a command
//! run in it, a few two-second billing periods paid to the farmer as other
//! nodes prove the space up, an early close, the refund.
//!
//! ```text
//!  LeaseAsk ─► bids ─► OpenLease (deposit) ─► echo through the space ─► ActivateLease
//!  exec `sh -c …` ─► periods billed with probes ─► CloseLease ─► refund, farmer paid
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use peercloud_api::LeaseView;
use peercloud_client::lease::{self, LeaseAsk, LeaseOpened};
use peercloud_space::ContainerEngine;
use peercloud_types::{Amount, LeaseFilters, Resources, SpaceKind};

use super::Stage;
use super::storage::Out;
use crate::display;

/// The demo's billing period.
const PERIOD_MS: u64 = 2_000;
/// Periods bought; the lease is closed early, after a few.
const PERIODS: u64 = 30;
/// Periods let pass before the close.
const PERIODS_USED: u64 = 3;

/// What the lease act did.
pub(super) enum LeaseReport {
    /// No Docker engine here.
    Skipped(String),
    /// The lease, its start and its end.
    Done {
        opened: LeaseOpened,
        output: String,
        view: LeaseView,
    },
}

impl LeaseReport {
    /// The act's figures as JSON.
    pub(super) fn json(&self) -> serde_json::Value {
        match self {
            LeaseReport::Skipped(reason) => serde_json::json!({ "skipped": reason }),
            LeaseReport::Done {
                opened,
                output,
                view,
            } => serde_json::json!({
                "lease": opened.lease,
                "node": opened.node,
                "bids": opened.bids,
                "price_per_period": opened.price_per_period,
                "start_ms": opened.timings.total().as_millis() as u64,
                "output": output,
                "deposited": view.deposited,
                "paid_to_farmer": view.paid,
                "refunded": view.refunded,
                "periods_up": view.periods_up,
                "periods_down": view.periods_down,
            }),
        }
    }
}

fn engine_here() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(ContainerEngine::connect())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs the lease act.
pub(super) fn run(stage: &Stage, json: bool) -> anyhow::Result<LeaseReport> {
    let out = Out { json };
    if let Err(reason) = engine_here() {
        out.line(format!(
            "Leases: no container engine here ({reason}), so no container lease\n"
        ));
        return Ok(LeaseReport::Skipped(reason));
    }
    out.line("Leases: a container space rented through node-1, paid per 2 s period");
    let ask = LeaseAsk {
        kind: SpaceKind::Container,
        resources: Resources {
            cpu_millicores: 500,
            memory_bytes: 64 << 20,
            storage_bytes: 16 << 20,
            ..Resources::default()
        },
        period_ms: PERIOD_MS,
        periods: Some(PERIODS),
        max_price_per_period: Amount::from_tokens(1),
        filters: LeaseFilters::default(),
        // Every running provider answers well within it (the killed one
        // never does, so the window runs out).
        offer_window_ms: 1_000,
        activate_within_ms: 30_000,
        fund_periods: PERIODS,
    };
    let opened =
        lease::open_lease(&stage.client, &stage.user, &ask).context("renting a container")?;
    out.line(format!(
        "  leased   {} on {} at {} per period (the first losing of {} sealed bids)",
        opened.lease,
        super::short(&opened.node),
        display::pcl(&opened.price_per_period),
        opened.bids
    ));
    out.line(format!(
        "  access   verified {:.2} s after the request; deposit {} locked, payment started",
        opened.timings.total().as_secs_f64(),
        display::pcl(&opened.deposit)
    ));
    let script = "echo \"hello from a leased space: uid $(id -u), $(ls /sys/class/net | wc -w) network interface(s)\" > /data/hello.txt && cat /data/hello.txt";
    let ran = lease::run(
        &stage.client,
        &stage.user,
        opened.lease,
        vec!["sh".into(), "-c".into(), script.into()],
        Vec::new(),
    )
    .context("running a command in the space")?;
    let output = String::from_utf8_lossy(&ran.stdout.0).trim().to_owned();
    out.line(format!("  exec     {output}"));
    std::thread::sleep(Duration::from_millis(PERIOD_MS * PERIODS_USED));
    lease::close(&stage.client, &stage.user, opened.lease).context("closing the lease")?;
    // The node bills the periods up to the close; then the lease holds nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let view = loop {
        let view = stage.client.lease(&opened.lease)?;
        if view.held.is_zero() || Instant::now() >= deadline {
            break view;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    out.line(format!(
        "  closed   after {} periods: {} paid to the farmer ({} proven up by other nodes' probes, {} down), {} back to you\n",
        view.periods_billed,
        display::pcl(&view.paid),
        view.periods_up,
        view.periods_down,
        display::pcl(&view.refunded)
    ));
    Ok(LeaseReport::Done {
        opened,
        output,
        view,
    })
}
