//! The local runner: `peercloud job run SPEC.json --local`.
//!
//! It does what a provider does with an awarded job, minus the network:
//! resolves the module and inputs (local paths, relative to the spec file),
//! stages the inputs (files, and directory trees: [`inputs`]) into a private
//! `/input` directory, runs the module in the
//! sandbox under the spec's limits and seed, and checks the outputs the spec
//! names are there. The output digest it prints is the one a provider would
//! submit, so a user can compare it with what the grid returns.
//!
//! The module writes into a hidden directory inside the output directory,
//! whose contents move into place only once the run succeeded: after a
//! failed run (a limit, a trap, a missing output) the output directory holds
//! nothing of it, and the directories the run created are removed again.

use std::path::{Path, PathBuf};

use crate::{ComputeError, Executor, RunOutcome, RunRequest};
use peercloud_types::job::Source;
use peercloud_types::{JobSpec, SpecError};

pub mod inputs;

pub use inputs::INPUT_DIR_FILES_MAX;

/// Largest input staged for a local run, a file or a directory's files in
/// all; the same bound a provider puts on one staged input (larger data
/// belongs in storage, fetched by CID).
pub const INPUT_BYTES_MAX: u64 = 4 << 30;
/// Name prefix of the hidden directory inside the output directory that the
/// module writes into; named so that one left by a killed run says what it is.
pub const PARTIAL_DIR_PREFIX: &str = ".peercloud-partial-";

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
    /// An input (or a file of a directory input) cannot be staged.
    #[error("`{field}`: {}: {reason}", path.display())]
    Input {
        /// The spec field, `inputs[N].source`.
        field: String,
        /// The file or directory on this machine.
        path: PathBuf,
        /// What is wrong.
        reason: String,
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
/// (created if missing; must be empty). When the run fails, `output_dir` is
/// left as it was: nothing the module wrote, and gone again if it was created.
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

    let output = Output::prepare(output_dir)?;
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
        if spec.stdin.as_deref() == Some(input.name.as_str()) && from.is_dir() {
            return Err(LocalRunError::Spec {
                path: spec_path.to_owned(),
                source: SpecError::Invalid {
                    field: "stdin".into(),
                    reason: format!(
                        "names the input {:?}, whose source {} is a directory; stdin reads a file",
                        input.name,
                        from.display()
                    ),
                },
            });
        }
        inputs::stage_input(
            &field,
            &input.name,
            &from,
            &staging.path().join(&input.name),
        )?;
    }

    let request = RunRequest::for_job(
        &spec,
        module,
        Some(staging.path().to_owned()),
        output.partial().to_owned(),
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
    output.commit()?;
    Ok(LocalRun {
        spec,
        module_path,
        output_dir: output_dir.to_owned(),
        outcome,
    })
}

/// The output directory of a local run until the run succeeded. Dropped
/// without [`Output::commit`] (the run failed, or panicked), it removes the
/// hidden directory the module wrote into and the directories
/// [`Output::prepare`] created; nothing that was there before is touched.
struct Output {
    /// The directory the user named.
    dir: PathBuf,
    /// Directories `prepare` created (removed when dropped, if empty).
    created: Created,
    /// Where the module writes (removed when dropped).
    partial: tempfile::TempDir,
    /// Whether the outputs were moved into place.
    committed: bool,
}

impl Output {
    /// Creates `dir` (and missing parents) or checks it is empty, and the
    /// hidden directory the module writes into.
    fn prepare(dir: &Path) -> Result<Output, LocalRunError> {
        let err = |reason: String| LocalRunError::OutputDir {
            path: dir.to_owned(),
            reason,
        };
        let mut created = Vec::new();
        let mut missing = Some(dir);
        while let Some(at) = missing.filter(|p| !p.as_os_str().is_empty()) {
            if at.symlink_metadata().is_ok() {
                break;
            }
            created.push(at.to_owned());
            missing = at.parent();
        }
        // Removes what it created if a step below fails.
        let created = Created(created);
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        let mut entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
        if entries.next().is_some() {
            return Err(err(
                "is not empty; outputs go to an empty directory so nothing is overwritten".into(),
            ));
        }
        let partial = tempfile::Builder::new()
            .prefix(PARTIAL_DIR_PREFIX)
            .tempdir_in(dir)
            .map_err(|e| err(format!("cannot create a directory in it: {e}")))?;
        Ok(Output {
            dir: dir.to_owned(),
            created,
            partial,
            committed: false,
        })
    }

    /// Where the module writes.
    fn partial(&self) -> &Path {
        self.partial.path()
    }

    /// Moves the outputs into place and keeps them. If a move fails, what
    /// was moved is removed again and the run fails.
    fn commit(mut self) -> Result<(), LocalRunError> {
        let err = |reason: String| LocalRunError::OutputDir {
            path: self.dir.clone(),
            reason,
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.partial.path()).map_err(|e| err(e.to_string()))? {
            names.push(entry.map_err(|e| err(e.to_string()))?.file_name());
        }
        let mut moved: Vec<PathBuf> = Vec::new();
        for name in names {
            let to = self.dir.join(&name);
            // Something that appeared during the run is not replaced.
            let result = if to.symlink_metadata().is_ok() {
                Err(format!(
                    "{} appeared during the run; it is not overwritten",
                    to.display()
                ))
            } else {
                std::fs::rename(self.partial.path().join(&name), &to)
                    .map_err(|e| format!("cannot move the output {}: {e}", to.display()))
            };
            if let Err(reason) = result {
                for path in &moved {
                    remove_output(path);
                }
                return Err(err(reason));
            }
            moved.push(to);
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if self.committed {
            // The directories now hold the outputs; the (empty) hidden one
            // goes with `partial`.
            self.created.0.clear();
        } else {
            // Now, so that `created` (dropped next) finds its directories empty.
            let _ = std::fs::remove_dir_all(self.partial.path());
        }
    }
}

/// Directories a run created, deepest first; each removed when dropped if
/// it is empty.
struct Created(Vec<PathBuf>);

impl Drop for Created {
    fn drop(&mut self) {
        for dir in &self.0 {
            // `remove_dir` removes only an empty directory: never the user's files.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Removes an output this run moved into place (a file or a directory tree).
fn remove_output(path: &Path) {
    let _ = match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    };
}
