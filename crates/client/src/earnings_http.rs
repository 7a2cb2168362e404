//! The farmer's call of [`NodeClient`]: `GET /v1/earnings`, what the node
//! earned from storage and how it stands.

use peercloud_api::EarningsView;

use crate::{ClientError, NodeClient};

impl NodeClient {
    /// `GET /v1/earnings[?limit=N]`: the node's storage earnings (totals,
    /// per bucket, the newest `limit` payments; the node's default when
    /// `None`) and its reputation and stakes.
    pub fn earnings(&self, limit: Option<u32>) -> Result<EarningsView, ClientError> {
        match limit {
            Some(limit) => self.get_json(&format!("/earnings?limit={limit}")),
            None => self.get_json("/earnings"),
        }
    }
}
