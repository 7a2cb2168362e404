//! The local runner: `peercloud job run SPEC.json --local`.
//!
//! It does what a provider does with an awarded job, minus the network:
//! resolves the module and inputs (local paths, relative to the spec file),
//! stages the inputs into a private `/input` directory, runs the module in the
//! sandbox under the spec's limits and seed, and checks the outputs the spec
//! names are there. The output digest it prints is the one a provider would
//! submit, so a user can compare it with what the grid returns.

use std::path::{Path, PathBuf};

use crate::{ComputeError, Executor, RunOutcome, RunRequest};
use peercloud_types::job::Source;
use peercloud_types::{JobSpec, SpecError};

/// Largest input file staged for a local run; the same bound a provider puts
/// on one staged input (larger data belongs in storage, fetched by CID).
pub const INPUT_BYTES_MAX: u64 = 4 << 30;

/// A finished local run.
#[derive(Debug)]
pub struct LocalRun {
    /// The parsed spec.
    pub spec: JobSpec,
    /// The module's path on this machine.
    pub module_path: PathBuf,
    /// Where the outputs were written.
    pub output_dir: PathBuf,
    /// What the sandbox reported.
    pub outcome: RunOutcome,
}

/// A local run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LocalRunError {
    /// The spec file could not be read.
    #[error("reading job spec {}: {source}", path.display())]
    ReadSpec {
        /// The spec file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The spec is malformed or invalid.
    #[error("{}: {source}", path.display())]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong.
        source: SpecError,
    },
    /// A CID where a local run needs a path.
    #[error(
        "`{field}` is the CID {cid}; a local run reads local files, so give a path (CIDs are fetched from the grid's storage by a node)"
    )]
    NeedsPath {
        /// The spec field.
        field: String,
        /// The CID given.
        cid: String,
    },
    /// A module or input file is missing or unreadable.
    #[error("`{field}`: cannot read {}: {source}{hint}", path.display())]
    ReadFile {
        /// The spec field.
        field: String,
        /// The resolved path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
        /// A hint for the usual cause, or empty.
        hint: &'static str,
    },
    /// An input is larger than [`INPUT_BYTES_MAX`].
    #[error("`{field}`: {} is {size} bytes, a staged input may be at most {INPUT_BYTES_MAX}", path.display())]
    InputTooLarge {
        /// The spec field.
        field: String,
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The output directory is unusable.
    #[error("output directory {}: {reason}", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Staging inputs failed.
    #[error("staging inputs in {}: {source}", path.display())]
    Staging {
        /// Where.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The sandbox refused or stopped the run.
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// The module finished but did not write an output the spec names.
    #[error(
        "the module exited with code {exit_code} without writing `{name}`, which the spec lists in `outputs`"
    )]
    MissingOutput {
        /// The missing file.
        name: String,
        /// The module's exit code.
        exit_code: i32,
    },
}

const MODULE_HINT: &str = " (build the examples first: cargo build --release --target wasm32-wasip1 --manifest-path examples/Cargo.toml)";

fn local_path(field: &str, source: &Source, base: &Path) -> Result<PathBuf, LocalRunError> {
    match source {
        Source::Path(p) => Ok(base.join(p)),
        Source::Cid(cid) => Err(LocalRunError::NeedsPath {
            field: field.to_owned(),
            cid: cid.to_string(),
        }),
    }
}

/// Runs the job at `spec_path` in `executor`, writing outputs to `output_dir`
/// (created if missing; must be empty).
pub fn run_local(
    executor: &Executor,
    spec_path: &Path,
    output_dir: &Path,
) -> Result<LocalRun, LocalRunError> {
    let text = std::fs::read_to_string(spec_path).map_err(|source| LocalRunError::ReadSpec {
        path: spec_path.to_owned(),
        source,
    })?;
    let spec = JobSpec::from_json(&text).map_err(|source| LocalRunError::Spec {
        path: spec_path.to_owned(),
        source,
    })?;
    let base = spec_path.parent().unwrap_or(Path::new("."));

    let module_path = local_path("module", &spec.module, base)?;
    let module = std::fs::read(&module_path).map_err(|source| LocalRunError::ReadFile {
        field: "module".into(),
        hint: if source.kind() == std::io::ErrorKind::NotFound {
            MODULE_HINT
        } else {
            ""
        },
        path: module_path.clone(),
        source,
    })?;

    prepare_output_dir(output_dir)?;
    let staging = tempfile::Builder::new()
        .prefix("peercloud-input-")
        .tempdir()
        .map_err(|source| LocalRunError::Staging {
            path: std::env::temp_dir(),
            source,
        })?;
    for (i, input) in spec.inputs.iter().enumerate() {
        let field = format!("inputs[{i}].source");
        let from = local_path(&field, &input.source, base)?;
        let read_err = |source| LocalRunError::ReadFile {
            field: field.clone(),
            path: from.clone(),
            source,
            hint: "",
        };
        let size = std::fs::metadata(&from).map_err(read_err)?.len();
        if size > INPUT_BYTES_MAX {
            return Err(LocalRunError::InputTooLarge {
                field,
                path: from,
                size,
            });
        }
        let to = staging.path().join(&input.name);
        std::fs::copy(&from, &to).map_err(|source| LocalRunError::Staging { path: to, source })?;
    }

    let request = RunRequest::for_job(
        &spec,
        module,
        Some(staging.path().to_owned()),
        output_dir.to_owned(),
    );
    let outcome = executor.run(&request)?;
    for name in &spec.outputs {
        if !outcome.outputs.iter().any(|f| f.path == *name) {
            return Err(LocalRunError::MissingOutput {
                name: name.clone(),
                exit_code: outcome.exit_code,
            });
        }
    }
    Ok(LocalRun {
        spec,
        module_path,
        output_dir: output_dir.to_owned(),
        outcome,
    })
}

fn prepare_output_dir(dir: &Path) -> Result<(), LocalRunError> {
    let err = |reason: String| LocalRunError::OutputDir {
        path: dir.to_owned(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
    if entries.next().is_some() {
        return Err(err(
            "is not empty; outputs go to an empty directory so nothing is overwritten".into(),
        ));
    }
    Ok(())
}
