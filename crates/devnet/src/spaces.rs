//! Leased spaces in tests and benches: whether this machine's container
//! engine can run them (or must: `PEERCLOUD_DOCKER=required`, as `.ci/run`
//! sets), and removing a lease's space when a test's devnet stops before
//! its grace would.

use peercloud_space::{ContainerEngine, lease_space_name};
use peercloud_types::LeaseId;

fn runtime() -> tokio::runtime::Runtime {
    #[allow(clippy::expect_used)] // test support: no runtime, no test
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Whether a container engine answers. Without one, a test says it is
/// skipped and returns, unless `PEERCLOUD_DOCKER=required`, when it panics.
pub fn engine_present() -> bool {
    match runtime().block_on(ContainerEngine::connect()) {
        Ok(_) => true,
        Err(error) if std::env::var("PEERCLOUD_DOCKER").as_deref() == Ok("required") => {
            panic!("PEERCLOUD_DOCKER=required and {error}")
        }
        Err(error) => {
            eprintln!("skipped: {error}");
            false
        }
    }
}

/// Removes the spaces of `leases` (and their data), wherever their nodes are.
pub fn remove_lease_spaces(leases: &[LeaseId]) -> Result<(), peercloud_space::SpaceError> {
    runtime().block_on(async {
        let engine = ContainerEngine::connect().await?;
        for space in engine.list().await? {
            if leases.iter().any(|l| lease_space_name(l) == space.name) {
                engine.remove(&space).await?;
            }
        }
        Ok(())
    })
}
