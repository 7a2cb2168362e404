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

/// A user-side flow's error, with what to do about it when the node
/// refused, and, once a job was posted, the commands that show (and, if it
/// may still be open, close) it.
fn remote_error(e: peercloud_client::RemoteError) -> anyhow::Error {
    use peercloud_client::RemoteError;
    let Some(job) = e.job() else {
        return match e {
            RemoteError::Client(c) => explain(c),
            other => anyhow::Error::new(other),
        };
    };
    let hint = match e {
        RemoteError::InJob { .. } | RemoteError::NotClosable { .. } => format!(
            "`peercloud job status {job}` shows the job; `peercloud job close {job}` closes it \
             (settled if its results agree, else expired and refunded once it can be)"
        ),
        _ => format!("`peercloud job status {job}` shows the job"),
    };
    anyhow::Error::new(WithHint { error: e, hint })
}

/// A flow error followed by what the user can do next, on a line of its own.
#[derive(Debug, thiserror::Error)]
#[error("{error}\n{hint}")]
struct WithHint {
    error: peercloud_client::RemoteError,
    hint: String,
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
    // Before anything is posted: no money is spent on a run whose outputs
    // cannot be written.
    let out = OutDir::prepare(out.unwrap_or_else(|| default_out(&spec_path)))?;
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
        on_waiting: Some(|job, why| {
            eprintln!(
                "job {job}: {why}; waiting on the ledger for the other nodes' results (the job \
                 ends as soon as no majority can form, at its deadline at the latest)"
            );
        }),
    };
    let report = run_job(&client, &wallet, &bundle, &options).map_err(remote_error)?;
    let written = out.write(&report.outputs).with_context(|| {
        format!(
            "job {} settled, but its outputs could not be written; `peercloud job status {}` \
             shows it",
            report.job, report.job
        )
    })?;
    let code = if report.exit_code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit_byte(report.exit_code))
    };
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
            "exit_code": report.exit_code,
            "stderr": report.stderr,
            "outputs": report.outputs.iter().zip(&written).map(|((_, b), path)| serde_json::json!({"path": path.display().to_string(), "bytes": b.len()})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(code);
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
    if report.exit_code != 0 {
        println!(
            "exit     {} (the module's exit code: a result the nodes agreed on, and were paid for)",
            report.exit_code
        );
        if !report.stderr.is_empty() {
            eprintln!("--- the module's stderr ---");
            eprintln!("{}", report.stderr.trim_end_matches('\n'));
        }
    }
    for ((_, bytes), path) in report.outputs.iter().zip(&written) {
        println!("output   {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(code)
}

/// The directory a grid run's outputs go to: checked (or created) before
/// the job is posted; what was created is removed again if the run left it
/// empty.
struct OutDir {
    path: PathBuf,
    /// The directories `prepare` created, deepest first.
    created: Vec<PathBuf>,
}

impl OutDir {
    /// An empty, writable directory at `path`, created if missing.
    fn prepare(path: PathBuf) -> anyhow::Result<OutDir> {
        let refuse = |why: String| anyhow::anyhow!("--out {}: {why}", path.display());
        // Dropped on a refusal: removes what it created.
        let mut dir = OutDir {
            path: path.clone(),
            created: Vec::new(),
        };
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => return Err(refuse("is not a directory".into())),
            Ok(_) => {
                let mut entries = std::fs::read_dir(&path).map_err(|e| refuse(e.to_string()))?;
                if entries.next().is_some() {
                    return Err(refuse(
                        "is not empty; outputs go to an empty directory so nothing is \
                         overwritten (nothing was posted)"
                            .into(),
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                dir.created = path
                    .ancestors()
                    .take_while(|at| !at.as_os_str().is_empty() && at.symlink_metadata().is_err())
                    .map(Path::to_path_buf)
                    .collect();
                std::fs::create_dir_all(&path)
                    .map_err(|e| refuse(format!("cannot create it: {e}")))?;
            }
            Err(e) => return Err(refuse(e.to_string())),
        }
        tempfile::tempfile_in(&dir.path)
            .map_err(|e| refuse(format!("cannot write in it: {e} (nothing was posted)")))?;
        Ok(dir)
    }

    /// Writes each output under the directory; returns where each went.
    fn write(&self, outputs: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = Vec::with_capacity(outputs.len());
        for (name, bytes) in outputs {
            let path = output_path(&self.path, name)?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        for dir in &self.created {
            // Removes only an empty directory: never an output.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Where the output `name` (a path under `/output`, as the node reported it)
/// goes under `out`: only a plain relative path, so no report leads a write
/// outside the directory.
fn output_path(out: &Path, name: &str) -> anyhow::Result<PathBuf> {
    use std::path::Component;
    let relative = Path::new(name);
    let plain = !name.is_empty()
        && relative
            .components()
            .all(|part| matches!(part, Component::Normal(_)));
    if !plain {
        anyhow::bail!("the output path {name:?} is not a plain relative path; it was not written");
    }
    Ok(out.join(relative))
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
            let digest = match (award.digest, award.fuel) {
                (Some(digest), Some(fuel)) => format!("{digest} (fuel {fuel})"),
                (Some(digest), None) => digest.to_string(),
                (None, _) if award.withdrawn => "withdrawn (the node will not deliver)".to_owned(),
                (None, _) => "not submitted".to_owned(),
            };
            println!("    digest {digest}");
        }
    }
}

/// A module's exit code as a process exit status (1 when it does not fit a byte).
fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1)
}
