//! Peercloud's economics simulator: an agent-based lease market run on the
//! real market and ledger code, to ask whether the incentives are
//! sufficient to attract and retain providers (seeds 001 and 002).
//!
//! ```text
//!  SimConfig (agents, days, electricity, hardware, demand, seed) + CloudPrices (TOML/JSON)
//!    └─► run ──► Engine: one step per simulated hour
//!                 farmers: cost ──► floor (PriceSheet) ──► lease_bid (× surge) ──► OfferBook per class
//!                 users: requests ──► OfferBook::best (k sealed bids) ──► lease_award (first losing bid)
//!                 leases: LeaseRecord period arithmetic: bill, close, settle (the fast path)
//!                 every Nth lease ──► LedgerShadow: signed txs through peercloud_ledger::apply
//!          ──► SimReport (days, summary, money) ──► write_outputs: days.csv, summary.json, *.svg
//!    └─► sweep (electricity × demand, cloud price level) ──► write_sweep_outputs: sweep.csv, *.svg
//! ```
//!
//! "On the real ledger" means: awards are made by the ledger's own
//! `lease_award`, bids by the market crate's `lease_floor`/`lease_bid` and
//! ranked by its `OfferBook`, and every lease's money moves through a
//! ledger `LeaseRecord` by the ledger's period arithmetic (the fast path).
//! A deterministic sample of leases (every `ledger_every`-th, a few
//! thousand in the default run) is also run as signed transactions through
//! `peercloud_ledger::apply` (`OpenLease` with the real sealed bids,
//! `ActivateLease`, `BillLease` with two `LeaseProbe`s a period from
//! other owners' nodes, `CloseLease`, `SettleLease`); after the run the
//! ledger's invariants must hold and each sampled lease's ledger record
//! must equal the fast path's (winner, price, deposit, paid, refunded,
//! periods up and down), or the run fails. The rest of the leases skip the
//! signatures and the state root, which is what lets 10,000 farmers and
//! 100,000 users run for 30 simulated days in seconds.
//!
//! Deterministic: one seeded ChaCha8 stream, a simulated clock (the hour
//! counter), no hash-map iteration; the same config gives the same report.

mod engine;
mod farmers;
mod leases;
mod ledger;
mod market;
mod output;
mod plots;
mod random;
mod users;

pub mod config;
pub mod error;
pub mod prices;
pub mod report;
pub mod sweep;

pub use config::{FarmerParams, HardwareClass, LeaseSize, SimConfig, UserParams};
pub use error::SimError;
pub use ledger::LedgerCheck;
pub use output::{DAY_COLUMNS, days_csv, write_outputs};
pub use prices::CloudPrices;
pub use report::{ClassSummary, DayRow, MoneyTotals, SimReport, Summary};
pub use sweep::{SUFFICIENT_SHARE, SweepGrid, SweepPoint, SweepReport, sweep, write_sweep_outputs};

/// Runs one simulation of `config` and returns what it measured. Fails
/// when a parameter is out of range, or when the ledger sample refuses a
/// transaction, breaks an invariant or disagrees with the fast path.
pub fn run(config: &SimConfig) -> Result<SimReport, SimError> {
    engine::Engine::new(config)?.run()
}
