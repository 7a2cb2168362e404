//! `peercloud demo`: the run-once flow end to end across real node processes,
//! then storage.
//!
//! It starts a devnet — a validator and seven providers, each its own
//! `peercloud node` process talking libp2p on loopback — in a temporary
//! directory, and drives it through the first provider's API as a user would. It renders
//! a picture by sending one `render` job per tile (each run on k = 2 nodes whose
//! digests must agree), stitches the tiles into `render.png`, counts the words
//! of a small corpus, and prints each job's phase timeline. Then the storage
//! act (`storage.rs`): a funded bucket in the devnet's cluster, an RS(4+2)
//! object and the picture put into it, a provider killed, the read still
//! working, the repair, and each farmer's storage and bandwidth earnings
//! after a few 2 s billing periods. Then the web act (`web.rs`): a small
//! site deployed to a public bucket through node 1 and fetched over HTTP
//! from another node's web gateway. Then, when awscli is installed, the S3
//! act (`s3.rs`): `aws s3 mb` and an `aws s3 cp` round trip through node 1's
//! S3 gateway. Then, when the machine has a Docker engine, the lease act
//! (`lease.rs`): a container space rented through node 1, a command run in
//! it, a few 2 s periods paid as other nodes prove it up, an early close and
//! its refund. Last, every account's balance before and after. Exits non-zero if anything failed, if the running nodes disagree
//! on the state root or if the books do not balance.

mod lease;
mod s3;
mod storage;
mod web;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use peercloud_client::{ApiStore, Content, JobBundle, JobReport, NodeClient, RunOptions, run_job};
use peercloud_devnet::{Devnet, UpOptions, init, node_dir};
use peercloud_node::daemon::OWNER_KEY_FILE;
use peercloud_store::{PutOptions, put_object};
use peercloud_types::job::Source;
use peercloud_types::{AccountId, Amount, Hash32, JobSpec, Keypair};

use crate::tiles;

/// The demo's jobs must finish within this; a failed one is refunded after it.
const DEMO_DEADLINE_SECS: u64 = 60;

/// Demo options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Providers in the grid (at least 7: RS(4+2) keeps each object's six
    /// pieces of a group on six distinct nodes even after one is killed).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(7..=32))]
    providers: u16,
    /// Picture width in pixels.
    #[arg(long, default_value_t = 768)]
    width: u32,
    /// Picture height in pixels.
    #[arg(long, default_value_t = 512)]
    height: u32,
    /// Tile edge in pixels: one job per tile.
    #[arg(long, default_value_t = 128)]
    tile_size: u32,
    /// Where the picture goes.
    #[arg(long, default_value = "render.png")]
    out: PathBuf,
    /// Keep the devnet's files (keys, ledgers, chunk stores, logs) in this directory instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

/// `queued 12ms → matched 20ms → …` for a report.
pub(crate) fn timeline(report: &JobReport) -> String {
    report
        .phases
        .iter()
        .map(|(phase, d)| format!("{phase} {:.0}ms", d.as_secs_f64() * 1e3))
        .collect::<Vec<_>>()
        .join(" → ")
}

fn short(id: &impl std::fmt::Display) -> String {
    let text = id.to_string();
    format!("{}…{}", &text[..8], &text[text.len() - 4..])
}

/// The demo's accounts: label and id.
fn accounts(
    dir: &Path,
    providers: usize,
    user: &Keypair,
) -> anyhow::Result<Vec<(String, AccountId)>> {
    let mut out = vec![("user".to_owned(), user.account_id())];
    for i in 1..=providers {
        let owner = Keypair::load(&node_dir(dir, i).join(OWNER_KEY_FILE))?;
        out.push((format!("farmer-{i}"), owner.account_id()));
    }
    let treasury = Keypair::load(&node_dir(dir, 0).join(OWNER_KEY_FILE))?;
    out.push(("treasury".to_owned(), treasury.account_id()));
    // The storage cluster's creator: paid the managers' fee on every bill.
    let manager = peercloud_devnet::cluster::manager_key(dir)?;
    out.push(("cluster manager".to_owned(), manager.account_id()));
    Ok(out)
}

type Holdings = BTreeMap<String, (Amount, Amount)>;

fn holdings(client: &NodeClient, accounts: &[(String, AccountId)]) -> anyhow::Result<Holdings> {
    accounts
        .iter()
        .map(|(label, id)| {
            let view = client.account(id)?;
            Ok((label.clone(), (view.balance, view.stake)))
        })
        .collect()
}

/// Waits until every running node (all but those of `down`) has the
/// validator's tip, then checks they all hold the same state root and that
/// the books balance.
fn check_agreement(devnet: &Devnet, down: &[usize]) -> anyhow::Result<Books> {
    let running: Vec<_> = devnet
        .nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !down.contains(i))
        .map(|(_, n)| n)
        .collect();
    let clients = running
        .iter()
        .map(|n| NodeClient::from_node_dir(&n.dir))
        .collect::<Result<Vec<_>, _>>()?;
    let target = clients[0].ledger()?;
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    for (client, node) in clients.iter().zip(&running) {
        loop {
            let view = client.ledger()?;
            if view.height >= target.height {
                if view.height == target.height {
                    ensure!(
                        view.state_root == target.state_root,
                        "{} has state root {} at height {}, the validator {}",
                        node.name,
                        view.state_root,
                        view.height,
                        target.state_root
                    );
                }
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{} is stuck at height {} (validator at {})",
                node.name,
                view.height,
                target.height
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    ensure!(
        target.supply == target.accounted,
        "the books do not balance: supply {} PCL, accounted {} PCL",
        target.supply,
        target.accounted
    );
    Ok(Books {
        height: target.height,
        root: target.state_root,
        supply: target.supply,
        nodes: running.len(),
    })
}

/// What every running node agreed on at the end.
struct Books {
    height: u64,
    root: Hash32,
    supply: Amount,
    /// How many nodes agreed (the running ones).
    nodes: usize,
}

/// A devnet started for the demo, with the user's wallet and node.
struct Stage {
    devnet: Devnet,
    client: NodeClient,
    user: Keypair,
    accounts: Vec<(String, AccountId)>,
}

/// Runs the demo.
pub fn run(args: DemoArgs, json: bool) -> anyhow::Result<ExitCode> {
    ensure!(
        args.tile_size > 0 && args.width > 0 && args.height > 0,
        "picture and tile sizes must be positive"
    );
    let started = Instant::now();
    let temp;
    let dir = match &args.keep {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("peercloud-demo-")
                .tempdir()?;
            temp.path().to_owned()
        }
    };
    let mut stage = start(&dir, usize::from(args.providers), json)?;
    let before = holdings(&stage.client, &stage.accounts)?;
    check_agreement(&stage.devnet, &[])?;

    let (reports, counts) = compute(&stage, &args, json)?;
    let jobs = Jobs {
        reports: &reports,
        counts: &counts,
    };
    if !json {
        jobs.print(&args);
    }
    let storage = storage::run(&mut stage, &args.out, json)?;
    let site = web::run(&stage, storage.killed(), json)?;
    let s3 = s3::run(&stage, &dir, json)?;
    let leased = lease::run(&stage, json)?;

    // The books: every running node agrees on the state root, supply is conserved.
    let books = check_agreement(&stage.devnet, &[storage.killed()])?;
    let after = holdings(&stage.client, &stage.accounts)?;
    let summary = Summary {
        jobs,
        accounts: &stage.accounts,
        before: &before,
        after: &after,
        books: &books,
        killed: storage.killed(),
    };
    if json {
        let mut value = summary.json(&args);
        value["storage"] = storage.json();
        value["web"] = site.json();
        value["s3"] = s3.json();
        value["lease"] = leased.json();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        summary.print();
        println!("Done in {:.1}s.", started.elapsed().as_secs_f64());
    }
    drop(stage);
    Ok(ExitCode::SUCCESS)
}

/// The compute part: the picture's tiles, then the word count; the reports
/// (wordcount's last) and wordcount's `counts.json`.
fn compute(stage: &Stage, args: &DemoArgs, json: bool) -> anyhow::Result<(Vec<JobReport>, String)> {
    let mut reports = render(stage, args, json)?;
    let wordcount = wordcount(stage)?;
    let counts = wordcount
        .outputs
        .iter()
        .find(|(name, _)| name == "counts.json")
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .context("wordcount produced no counts.json")?;
    reports.push(wordcount);
    Ok((reports, counts))
}

/// Writes the devnet into `dir` (funding the user's wallet there), starts
/// its processes and connects to the first provider, as a user to their node.
fn start(dir: &Path, providers: usize, json: bool) -> anyhow::Result<Stage> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let user_path = dir.join("user.key");
    if !user_path.exists() {
        Keypair::generate().save(&user_path)?;
    }
    let user = Keypair::load(&user_path)?;
    init(dir, providers, &user.account_id()).context("creating the devnet")?;
    let options = UpOptions {
        exe: std::env::current_exe().context("finding the peercloud executable")?,
        env: Vec::new(),
        log: std::env::var("PEERCLOUD_LOG").ok(),
        netns: Vec::new(),
    };
    if !json {
        println!(
            "Peercloud demo: starting a validator and {providers} provider processes on loopback in {}",
            dir.display()
        );
    }
    let terms = storage::cluster_terms(providers);
    let devnet =
        Devnet::up_with_terms(dir, providers, &options, terms).context("starting the devnet")?;
    if !json {
        for n in &devnet.nodes {
            println!(
                "  {} {:<9} pid {:<7} {}",
                n.name,
                n.ready.role,
                n.pid(),
                n.ready.p2p
            );
        }
        println!();
    }
    let client = NodeClient::from_node_dir(&devnet.nodes[1].dir)?;
    let accounts = accounts(dir, providers, &user)?;
    Ok(Stage {
        devnet,
        client,
        user,
        accounts,
    })
}

/// The render spec of tile `(x, y)`.
fn tile_spec(
    template: &JobSpec,
    args: &DemoArgs,
    module: peercloud_types::ContentId,
    (x, y): (u32, u32),
) -> anyhow::Result<JobSpec> {
    let mut spec = template.clone();
    spec.name = format!("render tile ({x}, {y})");
    spec.deadline_secs = DEMO_DEADLINE_SECS;
    spec.module = Source::Cid(module);
    spec.args = [
        "--width",
        &args.width.to_string(),
        "--height",
        &args.height.to_string(),
        "--tile-x",
        &x.to_string(),
        "--tile-y",
        &y.to_string(),
        "--tile-size",
        &args.tile_size.to_string(),
        "--max-iter",
        "500",
    ]
    .map(String::from)
    .to_vec();
    spec.outputs = vec![tile_file(x, y)];
    spec.validate()?;
    Ok(spec)
}

fn tile_file(x: u32, y: u32) -> String {
    format!("tile-{x}-{y}.png")
}

/// The picture: one render job per tile (the module stored once), the
/// tiles stitched into `args.out`.
fn render(stage: &Stage, args: &DemoArgs, json: bool) -> anyhow::Result<Vec<JobReport>> {
    let store = ApiStore::new(stage.client.clone());
    let module = put_object(
        &store,
        peercloud_workloads::RENDER,
        &stage.user.public(),
        &PutOptions {
            name: Some("render.wasm".into()),
            ..PutOptions::default()
        },
    )?
    .manifest_cid;
    let template =
        JobSpec::from_json(peercloud_workloads::RENDER_SPEC).context("the embedded render spec")?;
    let (cols, rows) = (
        args.width.div_ceil(args.tile_size),
        args.height.div_ceil(args.tile_size),
    );
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::from(cols * rows))
    };
    bar.set_style(ProgressStyle::with_template(
        "rendering {bar:30} {pos}/{len} tiles {msg}",
    )?);
    let mut reports = Vec::new();
    let mut tiles_png = Vec::new();
    for (x, y) in (0..rows).flat_map(|y| (0..cols).map(move |x| (x, y))) {
        let spec = tile_spec(&template, args, module, (x, y))?;
        let bundle = JobBundle {
            spec: spec.clone(),
            module: Content::Stored(module),
            inputs: Vec::new(),
        };
        let report = run_job(&stage.client, &stage.user, &bundle, &RunOptions::default())
            .with_context(|| spec.name.clone())?;
        let file = tile_file(x, y);
        let png = report
            .outputs
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, bytes)| bytes.clone())
            .with_context(|| format!("{} produced no {file}", spec.name))?;
        tiles_png.push((x, y, png));
        let nodes: Vec<String> = report.nodes.iter().map(short).collect();
        bar.set_message(format!("(last on {})", nodes.join(" + ")));
        bar.inc(1);
        reports.push(report);
    }
    bar.finish_and_clear();
    let picture = tiles::stitch(args.width, args.height, args.tile_size, &tiles_png)?;
    std::fs::write(&args.out, &picture)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok(reports)
}

/// Word count over the embedded corpus.
fn wordcount(stage: &Stage) -> anyhow::Result<JobReport> {
    let mut spec = JobSpec::from_json(peercloud_workloads::WORDCOUNT_SPEC)
        .context("the embedded wordcount spec")?;
    spec.deadline_secs = DEMO_DEADLINE_SECS;
    let bundle = JobBundle {
        spec,
        module: Content::Bytes(peercloud_workloads::WORDCOUNT.to_vec()),
        inputs: peercloud_workloads::corpus()
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), Content::Bytes(bytes.to_vec())))
            .collect(),
    };
    run_job(&stage.client, &stage.user, &bundle, &RunOptions::default()).context("wordcount")
}

/// The compute part's outcome: the jobs' reports and wordcount's counts.
#[derive(Clone, Copy)]
struct Jobs<'a> {
    reports: &'a [JobReport],
    counts: &'a str,
}

impl Jobs<'_> {
    fn distinct_nodes(&self) -> usize {
        self.reports
            .iter()
            .flat_map(|r| r.nodes.iter().copied())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    }

    fn json(&self) -> Vec<serde_json::Value> {
        self.reports
            .iter()
            .map(|r| {
                serde_json::json!({
                    "job": r.job.to_string(), "name": r.name,
                    "nodes": r.nodes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "phases_ms": r.phases.iter().map(|(p, d)| (p.to_string(), d.as_millis())).collect::<BTreeMap<_, _>>(),
                    "paid": r.paid.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect::<BTreeMap<_, _>>(),
                    "refunded": r.refunded.to_string(), "fuel": r.fuel, "digest": r.digest.to_string(),
                })
            })
            .collect()
    }

    /// Each job's timeline and pay, the picture and the word count.
    fn print(&self, args: &DemoArgs) {
        let redundancy = self.reports.first().map_or(0, |r| r.nodes.len());
        println!("Jobs (each run on {redundancy} nodes; digests compared before payment):");
        for r in self.reports {
            let paid: Vec<String> = r
                .paid
                .iter()
                .map(|(n, a)| format!("{} +{a}", short(n)))
                .collect();
            println!("  {:<22} {}", r.name, timeline(r));
            println!(
                "  {:<22} paid {} · refunded {} · fuel {}",
                "",
                paid.join(", "),
                r.refunded,
                r.fuel
            );
        }
        println!();
        let tiles = self.reports.len().saturating_sub(1);
        println!(
            "Picture: {} ({}x{}, {tiles} tiles computed on {} different nodes)",
            args.out.display(),
            args.width,
            args.height,
            self.distinct_nodes()
        );
        println!("Word count: {}", summarise_counts(self.counts));
        println!();
    }
}

/// Everything the demo prints at the end.
struct Summary<'a> {
    jobs: Jobs<'a>,
    accounts: &'a [(String, AccountId)],
    before: &'a Holdings,
    after: &'a Holdings,
    books: &'a Books,
    /// The provider the storage act killed.
    killed: usize,
}

impl Summary<'_> {
    fn json(&self, args: &DemoArgs) -> serde_json::Value {
        let balances: BTreeMap<_, _> = self
            .accounts
            .iter()
            .map(|(label, id)| {
                let ((b0, s0), (b1, s1)) = (self.before[label], self.after[label]);
                (label.clone(), serde_json::json!({"account": id.to_string(), "balance_before": b0.to_string(),
                    "stake_before": s0.to_string(), "balance_after": b1.to_string(), "stake_after": s1.to_string()}))
            })
            .collect();
        serde_json::json!({"jobs": self.jobs.json(), "balances": balances, "picture": args.out.display().to_string(),
            "ledger_height": self.books.height, "state_root": self.books.root.to_string(),
            "supply": self.books.supply.to_string(), "nodes_agreeing": self.books.nodes,
            "nodes_used": self.jobs.distinct_nodes(),
            "wordcount": serde_json::from_str::<serde_json::Value>(self.jobs.counts).ok()})
    }

    /// Every account's balance before and after, and the ledger's state.
    fn print(&self) {
        println!(
            "{:<16} {:>18} {:>18} {:>10}",
            "account", "balance before", "balance after", "stake"
        );
        for (label, id) in self.accounts {
            let ((b0, _), (b1, s1)) = (self.before[label], self.after[label]);
            println!(
                "{:<16} {:>18} {:>18} {:>10}   {}",
                label,
                b0.to_string(),
                b1.to_string(),
                s1.to_string(),
                short(id)
            );
        }
        println!();
        let root = self.books.root.to_string();
        println!(
            "Ledger: {} blocks; all {} running nodes (node-{} was killed) hold state root {}; supply conserved ({} PCL).",
            self.books.height + 1,
            self.books.nodes,
            self.killed,
            root.get(..16).unwrap_or(&root),
            self.books.supply
        );
    }
}

/// `929 words, 398 distinct; top: the 53, of 39, …` from wordcount's JSON.
fn summarise_counts(json: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.chars().take(160).collect();
    };
    let top: Vec<String> = v["top"]
        .as_array()
        .map(|a| {
            a.iter()
                .take(6)
                .map(|w| format!("{} {}", w["word"].as_str().unwrap_or("?"), w["count"]))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} words, {} distinct; top: {}",
        v["total_words"],
        v["distinct_words"],
        top.join(", ")
    )
}
