//! The chunk-store contract (`peercloud_store::testing::contract_suite`) on
//! the network stores, against the real daemons of an in-process grid: the
//! network as a node reaches it (`NetStore`), and as a user's client reaches
//! it through a node's API, over HTTP (`ApiStore<NodeClient>`) and in process
//! (`ApiStore<InProcessNode>`).

use peercloud_client::{ApiStore, NodeClient};
use peercloud_devnet::{Grid, node_dir};
use peercloud_node::daemon::NetStore;
use peercloud_store::testing::contract_suite;

#[test]
fn every_network_store_keeps_the_chunk_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let grid = Grid::start(dir.path(), 3).unwrap();
    let node = grid.node(1).unwrap();

    contract_suite(|| ApiStore::new(node.clone()));

    let http = NodeClient::from_node_dir(&node_dir(dir.path(), 2)).unwrap();
    contract_suite(|| ApiStore::new(http.clone()));

    let inner = grid.node(3).unwrap().service().inner().clone();
    contract_suite(|| NetStore::new(inner.clone(), grid.runtime()));
}
