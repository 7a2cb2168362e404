//! The job spec: what a user writes (JSON) to run a WebAssembly module once on
//! the grid. Parsing names the offending field; [`JobSpec::validate`] checks
//! every bound. The JSON Schema is published at `schemas/job-spec.schema.json`.
//! [`paths`] holds the rules for paths inside `/input` (the files of a
//! directory input), which the local runner, the client and providers share.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::amount::Amount;
use crate::cid::ContentId;
use crate::encoding::Versioned;
use crate::hash::Hash32;
use crate::keys::AccountId;
use crate::resources::Resources;

pub mod paths;

pub use paths::{
    INPUT_PATH_BYTES_MAX, INPUT_PATH_DEPTH_MAX, InputPathError, StagedPathError, check_input_path,
    check_staged_paths, input_name_of,
};

/// The spec format this build reads and writes.
pub const SPEC_VERSION: u32 = 1;
/// Most arguments a module may get; a command line longer than this is a mistake.
pub const ARGS_MAX: usize = 256;
/// Longest single argument or environment value, in bytes.
pub const ARG_BYTES_MAX: usize = 4096;
/// Largest module a node accepts, in bytes: compiling 1.2 MiB takes about a
/// second, so this bounds a module's compile time at about a minute.
pub const MODULE_BYTES_MAX: usize = 64 << 20;
/// Most environment variables.
pub const ENV_MAX: usize = 128;
/// Most input files (each is staged and verified separately).
pub const INPUTS_MAX: usize = 256;
/// Most named outputs.
pub const OUTPUTS_MAX: usize = 256;
/// Most nodes a job may run on at once for verification.
pub const REDUNDANCY_MAX: u8 = 15;
/// wasm32 addresses at most 4 GiB of linear memory.
pub const MEMORY_BYTES_MAX: u64 = 4 << 30;
/// A run-once job longer than a day belongs in a reservation.
pub const WALL_TIME_MS_MAX: u64 = 24 * 3600 * 1000;
/// Most bytes a job may write under `/output` (`limits.output_bytes`). The
/// user's client holds a job's outputs in memory when it downloads them, so
/// they get the bound the client puts on a local input it holds in memory
/// (`peercloud_client::flow::INPUT_BYTES_MAX`, 1 GiB); a job with more to
/// return is split into several.
pub const OUTPUT_BYTES_MAX: u64 = 1 << 30;
/// Longest deadline a job may ask for, in seconds (a week).
pub const DEADLINE_SECS_MAX: u64 = 7 * 24 * 3600;
/// Longest file name in `/input` or `/output`.
pub const FILE_NAME_BYTES_MAX: usize = 255;
/// Bytes a job may keep in its scratch (working) directory by default
/// (`limits.scratch_bytes`): room for the temporary files of ordinary
/// programs, no more than the default output allowance.
pub const SCRATCH_BYTES_DEFAULT: u64 = 64 << 20;
/// Most bytes a job may keep in its scratch directory
/// (`limits.scratch_bytes`). The scratch lives on the provider's disk beside
/// the job's inputs, so it gets the bound a provider puts on one staged
/// input (4 GiB); a job that needs more belongs in storage.
pub const SCRATCH_BYTES_MAX: u64 = 4 << 30;

/// Where a module or input comes from: a local path (for `job run --local`,
/// resolved relative to the spec file) or a CID in the grid's storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Content already in storage.
    Cid(ContentId),
    /// A file on the user's machine.
    Path(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cid(cid) => write!(f, "{cid}"),
            Source::Path(p) => f.write_str(p),
        }
    }
}

impl FromStr for Source {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<ContentId>() {
            Ok(cid) => Source::Cid(cid),
            Err(_) => Source::Path(s.to_owned()),
        })
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.parse() {
            Ok(v) => v,
            Err(never) => match never {},
        })
    }
}

impl JsonSchema for Source {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Source".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "minLength": 1,
            "description": "A CID (bafk…, BLAKE3) of content in the grid's storage, or a local path relative to the spec file.",
        })
    }
}

/// One file, or one directory with its whole tree, placed read-only in the
/// module's `/input` directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Name inside `/input` (no slashes): the file, or the directory whose
    /// tree is placed under `/input/<name>/`.
    pub name: String,
    /// Where the content comes from: a CID, or a local path to a file or a
    /// directory (its files and subdirectories; names starting with `.` are
    /// refused, symbolic links are followed only to files inside it).
    pub source: Source,
}

/// Hard limits the sandbox enforces; exceeding one ends the run with a typed error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// WebAssembly fuel (about one unit per instruction).
    #[serde(deserialize_with = "whole_u64")]
    pub fuel: u64,
    /// Linear memory cap in bytes.
    #[serde(deserialize_with = "whole_u64")]
    pub memory_bytes: u64,
    /// Wall-clock cap in milliseconds.
    #[serde(deserialize_with = "whole_u64")]
    pub wall_time_ms: u64,
    /// Total bytes the module may write under `/output`.
    #[serde(deserialize_with = "whole_u64")]
    pub output_bytes: u64,
    /// Total bytes the module may keep in its scratch (working) directory,
    /// where relative paths lead; removed after the run, never an output.
    #[serde(deserialize_with = "whole_u64")]
    pub scratch_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            memory_bytes: 256 << 20,
            wall_time_ms: 60_000,
            output_bytes: 64 << 20,
            scratch_bytes: SCRATCH_BYTES_DEFAULT,
        }
    }
}

/// Who may run the job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Constraints {
    /// ISO 3166-1 alpha-2 country codes the node must be in; empty means anywhere.
    pub locations: Vec<String>,
    /// Farmer accounts allowed to run the job; empty means any.
    pub farmers: Vec<AccountId>,
    /// Least reputation (0–10000) a node needs.
    pub min_reputation: u32,
}

/// The highest reputation score.
pub const REPUTATION_MAX: u32 = 10_000;

/// A run-once job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Spec format version; this build reads 1.
    pub version: u32,
    /// A name for people; not interpreted.
    #[serde(default)]
    pub name: String,
    /// The WebAssembly module (wasm32-wasip1).
    pub module: Source,
    /// Arguments after the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables; the module sees these and nothing of the host's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Files and directories placed read-only in `/input`.
    #[serde(default)]
    pub inputs: Vec<Input>,
    /// The name of the input (a file) the module reads as its stdin; none
    /// means an empty stdin.
    #[serde(default)]
    pub stdin: Option<String>,
    /// File names expected in `/output`; empty means "whatever the module writes".
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Resources a node must have free to take the job.
    #[serde(default)]
    pub resources: Resources,
    /// Sandbox limits.
    #[serde(default)]
    pub limits: Limits,
    /// How many nodes run the job independently; their output digests must agree.
    #[serde(default = "default_redundancy")]
    pub redundancy: u8,
    /// Most the user pays each node for the job.
    pub max_price: Amount,
    /// Who may run it.
    #[serde(default)]
    pub constraints: Constraints,
    /// Seconds the grid has, from posting, to deliver before the escrow is refunded.
    #[serde(default = "default_deadline_secs", deserialize_with = "whole_u64")]
    pub deadline_secs: u64,
    /// Seed of the module's clock and random source: the same seed gives the
    /// same run on every node.
    #[serde(default, deserialize_with = "whole_u64")]
    pub seed: u64,
}

/// Reads a `u64` field, naming what is allowed when the number is negative,
/// fractional or beyond `u64::MAX`. JSON gives such numbers as floats, and
/// serde's own message ("invalid type: floating point `1.8446744073709552e19`,
/// expected u64") names neither the problem nor the range.
fn whole_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_u64(WholeU64)
}

/// The visitor of [`whole_u64`].
struct WholeU64;

impl WholeU64 {
    fn refuse<E: serde::de::Error>(reason: fmt::Arguments<'_>) -> E {
        E::custom(format_args!(
            "{reason}; must be a whole number from 0 to {} (u64::MAX)",
            u64::MAX
        ))
    }
}

impl serde::de::Visitor<'_> for WholeU64 {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number from 0 to {} (u64::MAX)", u64::MAX)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| Self::refuse(format_args!("is {v}, negative")))
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| Self::refuse(format_args!("is {v}, more than u64::MAX")))
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| Self::refuse(format_args!("is {v}, out of range")))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
        // 2^64, the first whole number past u64::MAX (exact as an f64).
        const PAST_U64: f64 = 18_446_744_073_709_551_616.0;
        Err(if v.is_nan() || v.fract() != 0.0 {
            Self::refuse(format_args!("is {v}, not a whole number"))
        } else if v < 0.0 {
            Self::refuse(format_args!("is {v}, negative"))
        } else if v >= PAST_U64 {
            Self::refuse(format_args!("is more than u64::MAX (about {v:e})"))
        } else {
            Self::refuse(format_args!(
                "is written as {v:e}; write it without a decimal point or exponent"
            ))
        })
    }
}

fn default_redundancy() -> u8 {
    1
}

fn default_deadline_secs() -> u64 {
    600
}

impl Versioned for JobSpec {
    const KIND: u8 = crate::encoding::Kind::JobSpec as u8;
    /// 2: `stdin` and `limits.scratch_bytes` (1 had neither). A spec is
    /// never stored alone, only carried in messages and hashed into
    /// `PostJob`, so no version-1 record needs reading.
    const VERSION: u8 = 2;
}

/// A job spec was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// The JSON does not parse into a spec.
    #[error("job spec: at `{path}` (line {line}, column {column}): {message}")]
    Json {
        /// Dotted path of the offending field (`.` for the document).
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A field parses but its value is not allowed.
    #[error("job spec: field `{field}` {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl JobSpec {
    /// Parses and validates a spec from JSON text.
    pub fn from_json(text: &str) -> Result<JobSpec, SpecError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let spec: JobSpec = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = (inner.line(), inner.column());
            // serde_json's text ends with the position, which the error shows already.
            let message = inner.to_string();
            let message = message
                .strip_suffix(&format!(" at line {line} column {column}"))
                .unwrap_or(&message)
                .to_owned();
            SpecError::Json {
                path,
                line,
                column,
                message,
            }
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// The spec's JSON Schema (draft 2020-12).
    pub fn json_schema() -> schemars::Schema {
        schemars::schema_for!(JobSpec)
    }

    /// BLAKE3 of the spec's canonical encoding: what `PostJob` commits to.
    pub fn digest(&self) -> Hash32 {
        Hash32::of(&crate::encoding::encode(self))
    }

    /// Checks every field against its bounds; the error names the field.
    /// Fields are checked in the order the struct declares them, and the first
    /// offending one is the one reported.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.check_version_and_module()?;
        self.check_args()?;
        self.check_env()?;
        self.check_inputs()?;
        self.check_stdin()?;
        self.check_outputs()?;
        self.check_limits()?;
        self.check_redundancy_and_price()?;
        self.check_constraints()?;
        self.check_deadline()
    }

    /// Checks `version` (this build's) and `module` (a non-empty path or a CID).
    fn check_version_and_module(&self) -> Result<(), SpecError> {
        if self.version != SPEC_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "is {}, this build reads version {SPEC_VERSION}",
                    self.version
                ),
            ));
        }
        if let Source::Path(p) = &self.module
            && p.trim().is_empty()
        {
            return Err(invalid("module", "is empty; give a .wasm path or a CID"));
        }
        Ok(())
    }

    /// Checks `args`: how many, and each one's length and bytes.
    fn check_args(&self) -> Result<(), SpecError> {
        if self.args.len() > ARGS_MAX {
            return Err(invalid(
                "args",
                format!("has {} entries, at most {ARGS_MAX}", self.args.len()),
            ));
        }
        for (i, arg) in self.args.iter().enumerate() {
            check_text(&format!("args[{i}]"), arg)?;
        }
        Ok(())
    }

    /// Checks `env`: how many, each name a variable name, each value's length and bytes.
    fn check_env(&self) -> Result<(), SpecError> {
        if self.env.len() > ENV_MAX {
            return Err(invalid(
                "env",
                format!("has {} entries, at most {ENV_MAX}", self.env.len()),
            ));
        }
        for (key, value) in &self.env {
            let valid_key = key.bytes().enumerate().all(|(i, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit())
            });
            if key.is_empty() || !valid_key {
                return Err(invalid(
                    format!("env.{key}"),
                    "is not a variable name: use letters, digits and _, not starting with a digit",
                ));
            }
            check_text(&format!("env.{key}"), value)?;
        }
        Ok(())
    }

    /// Checks `inputs`: how many, each a plain file name used once, no empty source path.
    fn check_inputs(&self) -> Result<(), SpecError> {
        if self.inputs.len() > INPUTS_MAX {
            return Err(invalid(
                "inputs",
                format!("has {} entries, at most {INPUTS_MAX}", self.inputs.len()),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, input) in self.inputs.iter().enumerate() {
            check_file_name(&format!("inputs[{i}].name"), &input.name)?;
            if !seen.insert(input.name.as_str()) {
                return Err(invalid(
                    format!("inputs[{i}].name"),
                    format!("repeats {:?}", input.name),
                ));
            }
            if let Source::Path(p) = &input.source
                && p.trim().is_empty()
            {
                return Err(invalid(format!("inputs[{i}].source"), "is empty"));
            }
        }
        Ok(())
    }

    /// Checks `stdin`: when given, the name of one of the inputs.
    fn check_stdin(&self) -> Result<(), SpecError> {
        let Some(name) = &self.stdin else {
            return Ok(());
        };
        if self.inputs.iter().any(|input| input.name == *name) {
            return Ok(());
        }
        let names: Vec<String> = self
            .inputs
            .iter()
            .map(|input| format!("{:?}", input.name))
            .collect();
        Err(invalid(
            "stdin",
            if names.is_empty() {
                format!("names the input {name:?}, but the spec has no inputs")
            } else {
                format!(
                    "names the input {name:?}, which is not one of the inputs ({})",
                    names.join(", ")
                )
            },
        ))
    }

    /// Checks `outputs`: how many, and each a plain file name.
    fn check_outputs(&self) -> Result<(), SpecError> {
        if self.outputs.len() > OUTPUTS_MAX {
            return Err(invalid(
                "outputs",
                format!("has {} entries, at most {OUTPUTS_MAX}", self.outputs.len()),
            ));
        }
        for (i, name) in self.outputs.iter().enumerate() {
            check_file_name(&format!("outputs[{i}]"), name)?;
        }
        Ok(())
    }

    /// Checks `limits` against their bounds, and the memory limit against
    /// `resources.memory_bytes` (the node must have what the module may use).
    /// Fuel has no bound but `u64::MAX`: the wall-time limit ends a run anyway.
    fn check_limits(&self) -> Result<(), SpecError> {
        let l = &self.limits;
        if l.fuel == 0 {
            return Err(invalid("limits.fuel", "is 0; a module needs fuel to run"));
        }
        if l.memory_bytes < 64 * 1024 || l.memory_bytes > MEMORY_BYTES_MAX {
            return Err(invalid(
                "limits.memory_bytes",
                format!(
                    "is {}, allowed 65536 (one wasm page) to {MEMORY_BYTES_MAX}",
                    l.memory_bytes
                ),
            ));
        }
        if l.wall_time_ms == 0 || l.wall_time_ms > WALL_TIME_MS_MAX {
            return Err(invalid(
                "limits.wall_time_ms",
                format!("is {}, allowed 1 to {WALL_TIME_MS_MAX}", l.wall_time_ms),
            ));
        }
        if l.output_bytes == 0 {
            return Err(invalid(
                "limits.output_bytes",
                format!(
                    "is 0; the module could not write its outputs (allowed 1 to {OUTPUT_BYTES_MAX})"
                ),
            ));
        }
        if l.output_bytes > OUTPUT_BYTES_MAX {
            return Err(invalid(
                "limits.output_bytes",
                format!("is {}, allowed 1 to {OUTPUT_BYTES_MAX}", l.output_bytes),
            ));
        }
        if l.scratch_bytes > SCRATCH_BYTES_MAX {
            return Err(invalid(
                "limits.scratch_bytes",
                format!("is {}, allowed 0 to {SCRATCH_BYTES_MAX}", l.scratch_bytes),
            ));
        }
        if self.resources.memory_bytes != 0 && l.memory_bytes > self.resources.memory_bytes {
            return Err(invalid(
                "limits.memory_bytes",
                "is more than resources.memory_bytes; the node must have the memory the module may use",
            ));
        }
        Ok(())
    }

    /// Checks `redundancy` (1 to [`REDUNDANCY_MAX`]) and `max_price` (not 0).
    fn check_redundancy_and_price(&self) -> Result<(), SpecError> {
        if self.redundancy == 0 || self.redundancy > REDUNDANCY_MAX {
            return Err(invalid(
                "redundancy",
                format!("is {}, allowed 1 to {REDUNDANCY_MAX}", self.redundancy),
            ));
        }
        if self.max_price.is_zero() {
            return Err(invalid("max_price", "is 0; no node works for nothing"));
        }
        Ok(())
    }

    /// Checks `constraints`: country codes, and the reputation scale.
    fn check_constraints(&self) -> Result<(), SpecError> {
        for (i, code) in self.constraints.locations.iter().enumerate() {
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid(
                    format!("constraints.locations[{i}]"),
                    format!("is {code:?}; use an ISO 3166 country code like \"DE\""),
                ));
            }
        }
        if self.constraints.min_reputation > REPUTATION_MAX {
            return Err(invalid(
                "constraints.min_reputation",
                format!(
                    "is {}, the scale is 0 to {REPUTATION_MAX}",
                    self.constraints.min_reputation
                ),
            ));
        }
        Ok(())
    }

    /// Checks `deadline_secs` (1 to [`DEADLINE_SECS_MAX`]).
    fn check_deadline(&self) -> Result<(), SpecError> {
        if self.deadline_secs == 0 || self.deadline_secs > DEADLINE_SECS_MAX {
            return Err(invalid(
                "deadline_secs",
                format!(
                    "is {}, allowed 1 to {DEADLINE_SECS_MAX}",
                    self.deadline_secs
                ),
            ));
        }
        Ok(())
    }
}

fn check_text(field: &str, text: &str) -> Result<(), SpecError> {
    if text.len() > ARG_BYTES_MAX {
        return Err(invalid(
            field,
            format!("is {} bytes, at most {ARG_BYTES_MAX}", text.len()),
        ));
    }
    if text.contains('\0') {
        return Err(invalid(field, "contains a NUL byte"));
    }
    Ok(())
}

fn check_file_name(field: &str, name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(invalid(field, format!("is {name:?}, not a file name")));
    }
    if name.len() > FILE_NAME_BYTES_MAX {
        return Err(invalid(
            field,
            format!("is longer than {FILE_NAME_BYTES_MAX} bytes"),
        ));
    }
    if name.contains(['/', '\\', '\0']) {
        return Err(invalid(
            field,
            format!("is {name:?}; a plain file name has no slashes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
