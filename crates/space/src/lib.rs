//! Peercloud's resource spaces: what a lease gives its user on a farmer's
//! machine. This crate owns the container kind: a container on the node's
//! Docker engine (through `bollard`) whose limits the kernel enforces.
//!
//! ```text
//!  Resources (the lease's) ──► SpaceLimits ──► ContainerEngine::create ──► Space
//!                                               │  base image: a root filesystem built in memory
//!                                               │  (busybox, or the host's own shell and tools)
//!                                               │  and imported once, named by its hash
//!                                               ▼
//!            exec (commands, stdin) · upload / download (files in /data) · state · remove
//! ```
//!
//! What a space is, on purpose:
//! - no network (`none`): it reaches nothing and nothing reaches it except
//!   through the node, which forwards a user's port through an exec inside
//!   the space (as `kubectl port-forward` does);
//! - a read-only root, a `/data` volume held in memory and capped at the
//!   lease's storage (a full disk is `ENOSPC`; a stopped space loses it:
//!   this engine's overlay filesystem has no quotas a disk could use), a
//!   small `/tmp`;
//! - memory capped at the lease's memory plus its storage (the volume's
//!   pages count against the cgroup), no swap beyond it; CPU capped at the
//!   lease's millicores; at most [`PIDS_MAX`] processes (a fork bomb stops
//!   there);
//! - every capability dropped, `no-new-privileges`; the user's commands
//!   run as `nobody` (65534), the keep-alive as root without capabilities
//!   (so a command cannot stop the space by killing it); the user's key is
//!   recorded on the container and the node lets only that key's signed
//!   requests in; each command's output is kept up to [`OUTPUT_BYTES_MAX`].
//!
//! The crate knows neither the ledger nor the network: the node decides
//! when a space is made and removed, and who may reach it.

mod container;
mod error;
mod image;
mod limits;

pub use container::{
    ContainerEngine, ExecOutput, OUTPUT_BYTES_MAX, Space, SpaceState, container_name,
    lease_of_space, lease_space_name,
};
pub use error::SpaceError;
pub use image::{BaseImage, base_image_rootfs};
pub use limits::{PIDS_MAX, SpaceLimits};
