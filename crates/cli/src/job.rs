//! `peercloud job`: check a spec, print its schema, run it locally, and show
//! a job's state on the ledger.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use peercloud_api::{JobView, WaitQuery};
use peercloud_compute::{Executor, ExecutorConfig};
use peercloud_types::{JobId, JobSpec};

use crate::display;
use crate::node_api::{NodeArgs, explain};

/// Job commands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run a job spec. With --local it runs in this machine's sandbox exactly
    /// as a provider would run it, so you can try a job before paying for it.
    Run {
        /// The job spec (JSON); paths in it are relative to this file.
        spec: PathBuf,
        /// Run in the local sandbox instead of on the grid.
        #[arg(long)]
        local: bool,
        /// Wait for the settlement and download the outputs (the default: your
        /// wallet signs every step of the job, so the command drives it to the end).
        #[arg(long, default_value_t = true)]
        wait: bool,
        /// How long to collect offers, in milliseconds.
        #[arg(long, default_value_t = peercloud_client::flow::OFFER_WINDOW_MS_DEFAULT)]
        offer_window_ms: u64,
        /// Where the outputs go (created; must be empty). Default: ./peercloud-out/<spec name>.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a job spec and print what is wrong, naming the field.
    Validate {
        /// The job spec (JSON).
        spec: PathBuf,
    },
    /// Print the job spec's JSON Schema.
    Schema,
    /// Show a job as the ledger records it: state, escrow, awarded nodes, agreed digest.
    Status {
        /// The job id (64 hex digits).
        job: JobId,
    },
    /// Close a job a stopped `job run` left open: settled when its results
    /// agree, expired (escrow refunded) after its deadline otherwise.
    Close {
        /// The job id (64 hex digits), as `job run` printed it.
        job: JobId,
    },
}

/// Runs a job command. `data_dir_flag` only locates the default node.
pub fn run(
    cmd: JobCommand,
    data_dir_flag: Option<&Path>,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        JobCommand::Status { job } => {
            let client = node.connect(data_dir_flag)?;
            let view = client.job(&job, WaitQuery::NOW).map_err(|err| {
                if err.is_not_found() {
                    anyhow::anyhow!(
                        "no job {job} on the ledger of the node at {}",
                        client.base()
                    )
                } else {
                    explain(err)
                }
            })?;
            show_job(&view, json)
        }
        JobCommand::Close { job } => {
            let client = node.connect(data_dir_flag)?;
            let wallet = load_wallet(data_dir_flag)?;
            let view = peercloud_client::close_job(&client, &wallet, &job).map_err(remote_error)?;
            show_job(&view, json)
        }
        JobCommand::Schema => {
            println!("{}", serde_json::to_string_pretty(&JobSpec::json_schema())?);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Validate { spec } => {
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("reading job spec {}", spec.display()))?;
            let parsed = JobSpec::from_json(&text).with_context(|| spec.display().to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"valid": true, "digest": parsed.digest().to_string()})
                );
            } else {
                println!("{}: valid (digest {})", spec.display(), parsed.digest());
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Run {
            spec,
            local,
            out,
            wait: _,
            offer_window_ms,
        } => {
            if local {
                run_local(spec, out, json)
            } else {
                run_on_grid(spec, out, offer_window_ms, data_dir_flag, node, json)
            }
        }
    }
}

/// A user-side flow's error, with what to do about it when the node refused.
fn remote_error(e: peercloud_client::RemoteError) -> anyhow::Error {
    match e {
        peercloud_client::RemoteError::Client(c) => explain(c),
        other => anyhow::Error::new(other),
    }
}

/// Prints a job view as text or JSON.
fn show_job(view: &JobView, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(view)?);
    } else {
        print_job(view);
    }
    Ok(ExitCode::SUCCESS)
}

fn load_wallet(data_dir_flag: Option<&Path>) -> anyhow::Result<peercloud_types::Keypair> {
    let data_dir = crate::paths::data_dir(data_dir_flag)?;
    let wallet_path = crate::paths::wallet_key(&data_dir);
    peercloud_types::Keypair::load(&wallet_path).with_context(|| {
        format!(
            "loading your wallet {} (create one with `peercloud wallet new`)",
            wallet_path.display()
        )
    })
}

fn default_out(spec: &Path) -> PathBuf {
    let stem = spec
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    PathBuf::from("peercloud-out").join(stem)
}

fn run_on_grid(
    spec_path: PathBuf,
    out: Option<PathBuf>,
    offer_window_ms: u64,
    data_dir_flag: Option<&Path>,
    node: &NodeArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use peercloud_client::{JobBundle, RunOptions, run_job};
    let bundle = JobBundle::load(&spec_path)?;
    let wallet = load_wallet(data_dir_flag)?;
    let client = node.connect(data_dir_flag)?;
    let options = RunOptions {
        offer_window_ms,
        on_posted: Some(|job| {
            eprintln!(
                "job {job} posted; if this command stops before it ends, \
                 `peercloud job close {job}` closes it"
            );
        }),
    };
    let report = run_job(&client, &wallet, &bundle, &options).map_err(remote_error)?;
    let out = out.unwrap_or_else(|| default_out(&spec_path));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (name, bytes) in &report.outputs {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        let value = serde_json::json!({
            "job": report.job.to_string(),
            "name": report.name,
            "nodes": report.nodes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "phases_ms": report.phases.iter().map(|(p, d)| (p.to_string(), d.as_millis() as u64)).collect::<std::collections::BTreeMap<_, _>>(),
            "paid": report.paid.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
            "refunded": report.refunded.to_string(),
            "digest": report.digest.to_string(),
            "fuel": report.fuel,
            "outputs": report.outputs.iter().map(|(n, b)| serde_json::json!({"path": out.join(n).display().to_string(), "bytes": b.len()})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("job      {}", report.job);
    println!("name     {}", report.name);
    println!("phases   {}", crate::demo::timeline(&report));
    for (node, amount) in &report.paid {
        println!("paid     {node} +{amount} PCL");
    }
    println!("refunded {} PCL", report.refunded);
    println!(
        "digest   {} (agreed by the majority of {} nodes)",
        report.digest,
        report.nodes.len()
    );
    println!("fuel     {}", report.fuel);
    for (name, bytes) in &report.outputs {
        println!(
            "output   {} ({} bytes)",
            out.join(name).display(),
            bytes.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_local(spec: PathBuf, out: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let out = out.unwrap_or_else(|| default_out(&spec));
    let executor = Executor::new(ExecutorConfig::default()).context("starting the sandbox")?;
    let run = peercloud_compute::local::run_local(&executor, &spec, &out)?;
    let o = &run.outcome;
    if json {
        let value = serde_json::json!({
            "spec": spec.display().to_string(),
            "module": run.module_path.display().to_string(),
            "module_cid": o.module_cid.to_string(),
            "exit_code": o.exit_code,
            "fuel_consumed": o.fuel_consumed,
            "wall_time_ms": o.wall_time_ms,
            "output_digest": o.output_digest.to_string(),
            "output_dir": run.output_dir.display().to_string(),
            "outputs": o.outputs,
            "stdout": String::from_utf8_lossy(&o.stdout),
            "stderr": String::from_utf8_lossy(&o.stderr),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&o.stdout)?;
        if !o.stdout.ends_with(b"\n") && !o.stdout.is_empty() {
            writeln!(stdout)?;
        }
        std::io::stderr().write_all(&o.stderr)?;
        writeln!(stdout, "---")?;
        writeln!(stdout, "exit status   {}", o.exit_code)?;
        writeln!(
            stdout,
            "fuel used     {} (limit {})",
            o.fuel_consumed, run.spec.limits.fuel
        )?;
        writeln!(stdout, "wall time     {} ms", o.wall_time_ms)?;
        writeln!(stdout, "output digest {}", o.output_digest)?;
        writeln!(stdout, "outputs in    {}", run.output_dir.display())?;
        for f in &o.outputs {
            writeln!(stdout, "  {:<24} {:>10} bytes", f.path, f.size)?;
        }
    }
    Ok(if o.exit_code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit_byte(o.exit_code))
    })
}

fn print_job(view: &JobView) {
    println!("job         {}", view.job);
    println!("poster      {}", view.poster);
    println!("state       {}", view.state);
    println!("redundancy  {}", view.redundancy);
    println!(
        "escrow      {} locked, {} released",
        display::pcl(&view.escrow_locked),
        display::pcl(&view.escrow_released)
    );
    println!(
        "deadline    {} ({})",
        view.deadline_ms,
        display::relative_time(view.deadline_ms)
    );
    match &view.agreed {
        Some(digest) => println!("agreed      {digest}"),
        None => println!("agreed      not yet"),
    }
    if view.awards.is_empty() {
        println!("awards      none");
    } else {
        println!("awards      {}", view.awards.len());
        for award in &view.awards {
            println!("  {}  {}", award.node, display::pcl(&award.price));
            println!("    owner  {}", award.owner);
            println!(
                "    digest {}",
                award
                    .digest
                    .map_or_else(|| "not submitted".to_owned(), |d| d.to_string())
            );
        }
    }
}

/// A module's exit code as a process exit status (1 when it does not fit a byte).
fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1)
}
