//! What the S3 gateway's tests share: a grid whose node 1 has an S3 key,
//! and the check that a real client is installed.

use std::path::Path;
use std::process::{Command, Output};

use peercloud_devnet::{Grid, node_dir};
use peercloud_node::s3::keys::{S3_KEYS_FILE, S3Key, S3Keys};
use peercloud_types::Amount;

/// Whether `client` is installed (`program probe…` succeeds). A missing one
/// skips its test, saying so, unless `PEERCLOUD_S3_CLIENTS=required` (CI
/// installs every client and sets it): then it fails the test.
pub fn client_present(client: &str, program: &str, probe: &[&str]) -> bool {
    let found = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var("PEERCLOUD_S3_CLIENTS").is_ok_and(|v| v == "required");
        assert!(
            !required,
            "{client} is not installed and PEERCLOUD_S3_CLIENTS=required"
        );
        eprintln!("skipping: {client} is not installed (.ci/run installs it)");
    }
    found
}

/// A grid of `providers` whose node 1 has an S3 key for the grid's user
/// (as `peercloud s3 key create` makes it); its S3 endpoint and the key.
pub fn gateway(dir: &Path, providers: usize) -> (Grid, String, S3Key) {
    let grid = Grid::start(dir, providers).expect("a grid");
    let key = S3Key::generate(grid.user(), grid.cluster(), Amount::from_tokens(5)).expect("a key");
    let node = node_dir(dir, 1);
    S3Keys {
        keys: vec![key.clone()],
    }
    .save(&node.join(S3_KEYS_FILE))
    .expect("the keys file");
    let endpoint = std::fs::read_to_string(node.join(peercloud_api::S3_ADDR_FILE))
        .expect("the S3 gateway's address")
        .trim()
        .to_owned();
    (grid, endpoint, key)
}

/// A client's stdout, once it succeeded; its output when it did not.
pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
