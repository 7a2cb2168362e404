//! `peercloud demo`: the run-once flow end to end on an in-process grid.
//!
//! It starts a validator and a few providers in a temporary directory, renders
//! a picture by sending one `render` job per tile (each run on k = 2 nodes whose
//! digests must agree), stitches the tiles into `render.png`, counts the words
//! of a small corpus, and prints each job's phase timeline and every account's
//! balance before and after. Exits non-zero if anything failed or if the books
//! do not balance.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, ensure};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use peercloud_node::{JobReport, LocalGrid, tiles};
use peercloud_types::job::Source;
use peercloud_types::{Amount, ContentId, JobSpec};

/// Demo options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Providers in the grid (at least 3: chunks keep 3 replicas on distinct nodes).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(3..=32))]
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
    /// Keep the grid's files (ledger, chunk stores) in this directory instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
}

fn timeline(report: &JobReport) -> String {
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
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut grid =
        LocalGrid::start(&dir, usize::from(args.providers)).context("starting the grid")?;
    let accounts = grid.accounts();
    let before: BTreeMap<String, (Amount, Amount)> = accounts
        .iter()
        .map(|(label, id)| (label.clone(), grid.holdings(id)))
        .collect();
    if !json {
        println!(
            "Peercloud demo: a validator and {} providers in {}",
            args.providers,
            dir.display()
        );
        for p in &grid.providers {
            println!(
                "  node {} in {}, farmer {}",
                short(&p.node.node_id()),
                p.location,
                short(&p.owner.account_id())
            );
        }
        println!();
    }

    // The picture: one render job per tile.
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
    for y in 0..rows {
        for x in 0..cols {
            let mut spec = template.clone();
            spec.name = format!("render tile ({x}, {y})");
            spec.module = Source::Cid(ContentId::of(peercloud_workloads::RENDER));
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
            let file = format!("tile-{x}-{y}.png");
            spec.outputs = vec![file.clone()];
            spec.validate()?;
            let report = grid.run_job(&spec, peercloud_workloads::RENDER, &[])?;
            let png = report
                .outputs
                .iter()
                .find(|(name, _)| *name == file)
                .map(|(_, bytes)| bytes.clone())
                .with_context(|| format!("{} produced no {file}", spec.name))?;
            tiles_png.push((x, y, png));
            bar.set_message(format!("(last on {})", short(&report.nodes[0])));
            bar.inc(1);
            reports.push(report);
        }
    }
    bar.finish_and_clear();
    let picture = tiles::stitch(args.width, args.height, args.tile_size, &tiles_png)?;
    std::fs::write(&args.out, &picture)
        .with_context(|| format!("writing {}", args.out.display()))?;

    // Word count over the corpus.
    let mut spec = JobSpec::from_json(peercloud_workloads::WORDCOUNT_SPEC)
        .context("the embedded wordcount spec")?;
    spec.module = Source::Cid(ContentId::of(peercloud_workloads::WORDCOUNT));
    let inputs: Vec<(String, Vec<u8>)> = peercloud_workloads::corpus()
        .iter()
        .map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec()))
        .collect();
    let wordcount = grid.run_job(&spec, peercloud_workloads::WORDCOUNT, &inputs)?;
    let counts = wordcount
        .outputs
        .iter()
        .find(|(name, _)| name == "counts.json")
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .context("wordcount produced no counts.json")?;
    reports.push(wordcount);

    // The books.
    let after: BTreeMap<String, (Amount, Amount)> = accounts
        .iter()
        .map(|(label, id)| (label.clone(), grid.holdings(id)))
        .collect();
    let total = |m: &BTreeMap<String, (Amount, Amount)>| -> Option<Amount> {
        m.values().try_fold(Amount::ZERO, |acc, (b, s)| {
            acc.checked_add(*b)?.checked_add(*s)
        })
    };
    let state = grid.state();
    state.check_invariants().context("ledger invariants")?;
    let replayed_root = grid.verify_replay()?;
    let root = state.state_root();
    ensure!(
        replayed_root == root,
        "replaying the block log gave root {replayed_root}, the ledger holds {root}"
    );
    ensure!(
        total(&before) == total(&after),
        "supply moved: {:?} before, {:?} after",
        total(&before),
        total(&after)
    );
    let height = state.tip().map_or(0, |t| t.height);

    if json {
        let jobs: Vec<_> = reports
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
            .collect();
        let balances: BTreeMap<_, _> = accounts
            .iter()
            .map(|(label, id)| {
                let ((b0, s0), (b1, s1)) = (before[label], after[label]);
                (label.clone(), serde_json::json!({"account": id.to_string(), "balance_before": b0.to_string(),
                    "stake_before": s0.to_string(), "balance_after": b1.to_string(), "stake_after": s1.to_string()}))
            })
            .collect();
        let value = serde_json::json!({"jobs": jobs, "balances": balances, "picture": args.out.display().to_string(),
            "ledger_height": height, "state_root": root.to_string(), "wordcount": serde_json::from_str::<serde_json::Value>(&counts).ok()});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }

    println!(
        "Jobs (each run on {} nodes; digests compared before payment):",
        template.redundancy
    );
    for r in &reports {
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
    println!(
        "Picture: {} ({}x{}, {} tiles from {} jobs)",
        args.out.display(),
        args.width,
        args.height,
        cols * rows,
        cols * rows
    );
    println!("Word count: {}", summarise_counts(&counts));
    println!();
    println!(
        "{:<16} {:>18} {:>18} {:>10}",
        "account", "balance before", "balance after", "stake"
    );
    for (label, id) in &accounts {
        let ((b0, _), (b1, s1)) = (before[label], after[label]);
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
    println!(
        "Ledger: {} blocks, state root {}, replay from genesis agrees; supply conserved ({} PCL).",
        height + 1,
        &root.to_string()[..16],
        total(&after).unwrap_or_default()
    );
    println!("Done in {:.1}s.", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
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
