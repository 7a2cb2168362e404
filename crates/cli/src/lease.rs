//! `peercloud lease`: rent a space over time. `request` asks the network,
//! takes the sealed bids, signs the award (the deposit is locked), waits
//! for the space, checks access for real and only then activates it
//! (payment starts). `exec` runs a command in the space, `status` and
//! `list` read the ledger, `extend` adds deposit, `close` ends it now (the
//! unused part comes back), `cancel` gives back a lease never activated.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use peercloud_api::LeaseView;
use peercloud_client::NodeClient;
use peercloud_client::lease::{self, LeaseAsk};
use peercloud_types::{AccountId, Amount, LeaseFilters, LeaseId, Resources, SpaceKind};

use crate::cluster::{duration_text, parse_capacity, parse_duration_ms};
use crate::display;
use crate::node_api::{NodeArgs, explain};
use crate::wallet::load_wallet;

/// Most standard input a command takes.
const STDIN_BYTES_MAX: u64 = 256 << 10;

/// Lease commands.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Rent a space: gather bids, sign the award, verify access, activate.
    Request(RequestArgs),
    /// Run a command in your lease's space (standard input with --stdin).
    Exec {
        /// The lease (lease:<hex>, or the hex alone).
        lease: LeaseId,
        /// Feed this process's standard input to the command.
        #[arg(long)]
        stdin: bool,
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Show a lease: its status, price, what it paid and gave back.
    Status {
        /// The lease.
        lease: LeaseId,
    },
    /// List your wallet's leases.
    List,
    /// Add PCL to a lease's deposit (a fixed lease grows by the periods it buys).
    Extend {
        /// The lease.
        lease: LeaseId,
        /// How many PCL.
        amount: Amount,
    },
    /// End your lease now: the unused part of the deposit comes back at once.
    Close {
        /// The lease.
        lease: LeaseId,
    },
    /// Give back a lease never activated (its whole deposit).
    Cancel {
        /// The lease.
        lease: LeaseId,
    },
}

/// What `lease request` asks for.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The kind of space: container (wasm-service is defined, but no node
    /// offers it yet).
    #[arg(long, default_value = "container")]
    kind: SpaceKind,
    /// CPU in millicores (1000 = one core).
    #[arg(long, default_value_t = 500)]
    cpu: u64,
    /// Memory, like 64MiB.
    #[arg(long, default_value = "64MiB", value_parser = parse_capacity)]
    memory: u64,
    /// Disk for /data, like 16MiB.
    #[arg(long, default_value = "16MiB", value_parser = parse_capacity)]
    storage: u64,
    /// The billing period, like 2s or 1h.
    #[arg(long, default_value = "1h", value_parser = parse_duration_ms)]
    period: u64,
    /// How many periods; leave out for open-ended (it runs while its deposit lasts).
    #[arg(long)]
    periods: Option<u64>,
    /// Periods an open-ended lease is funded for at first.
    #[arg(long, default_value_t = 24)]
    fund_periods: u64,
    /// The most you pay per period (the reserve).
    #[arg(long, value_name = "PCL")]
    max_price: Amount,
    /// Only nodes whose location starts with this (repeatable).
    #[arg(long = "location")]
    locations: Vec<String>,
    /// Only nodes of this farmer account (repeatable).
    #[arg(long = "farmer")]
    farmers: Vec<AccountId>,
    /// Only nodes with at least this reputation.
    #[arg(long, default_value_t = 0)]
    min_reputation: u32,
    /// How long bids are gathered, like 2s.
    #[arg(long, default_value = "2s", value_parser = parse_duration_ms)]
    offer_window: u64,
    /// How long the node has to make the space before the award lapses.
    #[arg(long, default_value = "60s", value_parser = parse_duration_ms)]
    activate_within: u64,
}

impl RequestArgs {
    fn ask(&self) -> LeaseAsk {
        LeaseAsk {
            kind: self.kind,
            resources: Resources {
                cpu_millicores: self.cpu,
                memory_bytes: self.memory,
                storage_bytes: self.storage,
                ..Resources::default()
            },
            period_ms: self.period,
            periods: self.periods,
            max_price_per_period: self.max_price,
            filters: LeaseFilters {
                locations: self.locations.clone(),
                farmers: self.farmers.clone(),
                min_reputation: self.min_reputation,
            },
            offer_window_ms: self.offer_window,
            activate_within_ms: self.activate_within,
            fund_periods: self.fund_periods,
        }
    }
}

/// Runs a lease command.
pub fn run(
    cmd: LeaseCommand,
    data_dir: &Path,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = node.connect(Some(data_dir))?;
    match cmd {
        LeaseCommand::Request(args) => request(&client, data_dir, &args, json),
        LeaseCommand::Exec {
            lease,
            stdin,
            command,
        } => exec(&client, data_dir, lease, stdin, command, json),
        LeaseCommand::Status { lease } => {
            let view = client.lease(&lease).map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print_lease(&view);
            }
            if let Some(warning) = low_warning(&view) {
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        LeaseCommand::List => {
            let wallet = load_wallet(data_dir)?;
            let views = client.leases_of(&wallet.account_id()).map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                println!("no leases (rent one with `peercloud lease request --max-price PCL`)");
            } else {
                for view in &views {
                    println!(
                        "{}  {:<9} {:<12} {} / {}  paid {}  back {}",
                        view.id,
                        view.status,
                        view.kind,
                        display::pcl(&view.price_per_period),
                        duration_text(view.period_ms),
                        display::pcl(&view.paid),
                        display::pcl(&view.refunded),
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LeaseCommand::Extend { lease, amount } => {
            if amount.is_zero() {
                bail!("the amount must be more than 0 PCL");
            }
            let wallet = load_wallet(data_dir)?;
            lease::extend(&client, &wallet, lease, amount).map_err(explain)?;
            after(&client, lease, json, "extended")
        }
        LeaseCommand::Close { lease } => {
            let wallet = load_wallet(data_dir)?;
            lease::close(&client, &wallet, lease).map_err(explain)?;
            after(&client, lease, json, "closed")
        }
        LeaseCommand::Cancel { lease } => {
            let wallet = load_wallet(data_dir)?;
            lease::cancel(&client, &wallet, lease).map_err(explain)?;
            after(&client, lease, json, "cancelled")
        }
    }
}

fn request(
    client: &NodeClient,
    data_dir: &Path,
    args: &RequestArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let wallet = load_wallet(data_dir)?;
    let opened = lease::open_lease(client, &wallet, &args.ask()).context("requesting a lease")?;
    if json {
        let fields = serde_json::json!({
            "lease": opened.lease,
            "node": opened.node,
            "price_per_period": opened.price_per_period,
            "deposit": opened.deposit,
            "bids": opened.bids,
            "ms": {
                "offers": opened.timings.offers.as_millis() as u64,
                "award": opened.timings.award.as_millis() as u64,
                "ready": opened.timings.ready.as_millis() as u64,
                "activate": opened.timings.activate.as_millis() as u64,
                "total": opened.timings.total().as_millis() as u64,
            },
        });
        println!("{}", serde_json::to_string_pretty(&fields)?);
    } else {
        println!("leased   {}", opened.lease);
        println!("node     {}", opened.node);
        println!(
            "price    {} per {} (the first losing of {} bids)",
            display::pcl(&opened.price_per_period),
            duration_text(args.period),
            opened.bids
        );
        println!("deposit  {}", display::pcl(&opened.deposit));
        println!(
            "ready    access verified in {:.2} s (bids {:.2} s, award {:.2} s, space {:.2} s, activation {:.2} s)",
            opened.timings.total().as_secs_f64(),
            opened.timings.offers.as_secs_f64(),
            opened.timings.award.as_secs_f64(),
            opened.timings.ready.as_secs_f64(),
            opened.timings.activate.as_secs_f64(),
        );
        println!(
            "run      peercloud lease exec {} -- sh -c 'echo hello'",
            opened.lease
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn exec(
    client: &NodeClient,
    data_dir: &Path,
    lease: LeaseId,
    stdin: bool,
    command: Vec<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let wallet = load_wallet(data_dir)?;
    let mut input = Vec::new();
    if stdin {
        std::io::stdin()
            .take(STDIN_BYTES_MAX + 1)
            .read_to_end(&mut input)
            .context("reading standard input")?;
        if input.len() as u64 > STDIN_BYTES_MAX {
            bail!(
                "standard input is over {} (copy large files in with several commands)",
                display::bytes(STDIN_BYTES_MAX)
            );
        }
    }
    let out = lease::run(client, &wallet, lease, command, input).map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        use std::io::Write;
        std::io::stdout().write_all(&out.stdout.0)?;
        std::io::stderr().write_all(&out.stderr.0)?;
    }
    Ok(match u8::try_from(out.exit_code) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::FAILURE,
    })
}

fn after(client: &NodeClient, lease: LeaseId, json: bool, what: &str) -> anyhow::Result<ExitCode> {
    let view = client.lease(&lease).map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("{what} {lease}");
        print_lease(&view);
    }
    Ok(ExitCode::SUCCESS)
}

/// A warning when an active lease has fewer than 3 periods left (the
/// ledger's `LeaseLow` rule): its space stops at the end.
fn low_warning(view: &LeaseView) -> Option<String> {
    let end = view.end_ms?;
    let left = end.saturating_sub(peercloud_types::clock::now_ms());
    (view.status == "active" && left < view.period_ms.saturating_mul(3)).then(|| {
        format!(
            "{} ends in {}: its space stops then; extend it with `peercloud lease extend {} PCL`",
            view.id,
            duration_text(left),
            view.id
        )
    })
}

fn print_lease(view: &LeaseView) {
    println!("lease     {}", view.id);
    println!("status    {}", view.status);
    println!("kind      {} on {}", view.kind, view.node);
    println!("resources {}", display::resources(&view.resources));
    println!(
        "price     {} per {}{}",
        display::pcl(&view.price_per_period),
        duration_text(view.period_ms),
        view.max_periods
            .map_or(" (open-ended)".to_owned(), |n| format!(", {n} periods"))
    );
    if let Some(end) = view.end_ms {
        println!("ends      {}", display::utc(end));
    }
    println!(
        "deposit   {} in, {} paid to the node, {} back to you, {} held",
        display::pcl(&view.deposited),
        display::pcl(&view.paid),
        display::pcl(&view.refunded),
        display::pcl(&view.held)
    );
    println!(
        "periods   {} billed: {} proven up, {} down (credited back)",
        view.periods_billed, view.periods_up, view.periods_down
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Hash32, Keypair};

    fn view(status: &str, left_ms: u64) -> LeaseView {
        let now = peercloud_types::clock::now_ms();
        LeaseView {
            id: LeaseId(Hash32::of(b"lease")),
            user: Keypair::from_seed(&[1; 32]).account_id(),
            node: Keypair::from_seed(&[2; 32]).node_id(),
            kind: SpaceKind::Container,
            resources: Resources::default(),
            price_per_period: Amount::from_tokens(1),
            period_ms: 10_000,
            max_periods: None,
            status: status.to_owned(),
            activate_by_ms: now,
            since_ms: Some(now),
            end_ms: Some(now + left_ms),
            settles_at_ms: None,
            deposited: Amount::from_tokens(10),
            paid: Amount::ZERO,
            refunded: Amount::ZERO,
            held: Amount::from_tokens(10),
            periods_billed: 0,
            periods_up: 0,
            periods_down: 0,
        }
    }

    #[test]
    fn an_active_lease_with_under_three_periods_left_is_warned_about() {
        let warning = low_warning(&view("active", 15_000)).expect("a warning");
        assert!(warning.contains("peercloud lease extend"), "{warning}");
        assert_eq!(low_warning(&view("active", 60_000)), None);
        assert_eq!(low_warning(&view("closed", 5_000)), None);
    }
}
