//! What can go wrong with a space, named so a farmer or a user can act on it.

/// A space operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    /// The Docker engine is not reachable (not installed, not running, or
    /// its socket not readable by this user).
    #[error(
        "no container engine: {reason} (is Docker running, and may this user use /var/run/docker.sock?)"
    )]
    NoEngine {
        /// What connecting said.
        reason: String,
    },
    /// The engine refused or failed an operation.
    #[error("container engine: {during} failed: {source}")]
    Engine {
        /// What was being done.
        during: &'static str,
        /// The engine's answer.
        #[source]
        source: bollard::errors::Error,
    },
    /// The base image could not be assembled from this machine's files.
    #[error("cannot build the space base image: {reason}")]
    BaseImage {
        /// What is missing or wrong.
        reason: String,
    },
    /// A lease asks for less than a space can run with, or more than fits.
    #[error("a space needs {what} of at least {min}, the lease gives {given}")]
    TooSmall {
        /// Which resource.
        what: &'static str,
        /// The least a space runs with.
        min: u64,
        /// What the lease gives.
        given: u64,
    },
    /// A number the engine takes as a signed 64-bit value is too large.
    #[error("the lease's {what} ({given}) is more than the engine can take")]
    TooLarge {
        /// Which resource.
        what: &'static str,
        /// What the lease gives.
        given: u64,
    },
    /// A command did not finish in time (it keeps running within the
    /// space's limits until the space is removed).
    #[error("the command in space {space} did not finish within {seconds} s")]
    ExecTimeout {
        /// The space.
        space: String,
        /// The time allowed.
        seconds: u64,
    },
    /// A file asked for is not in the space, or is larger than allowed.
    #[error("{path} in space {space}: {reason}")]
    File {
        /// The space.
        space: String,
        /// The path asked for.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A name that is not a plain file name (no `/`, no `..`, not empty).
    #[error("{name:?} is not a plain file name")]
    BadName {
        /// The name given.
        name: String,
    },
}

impl SpaceError {
    /// Wraps an engine error with what was being done.
    pub(crate) fn engine(
        during: &'static str,
    ) -> impl FnOnce(bollard::errors::Error) -> SpaceError {
        move |source| SpaceError::Engine { during, source }
    }
}
