//! The farmer's call of [`NodeClient`]: `GET /v1/earnings`, what the node
//! earned from storage, how it stands and how it is audited.

use peercloud_api::EarningsView;

use crate::{ClientError, NodeClient};

impl NodeClient {
    /// `GET /v1/earnings[?limit=N]`: the node's storage earnings (totals,
    /// per bucket, the newest `limit` payments; the node's default when
    /// `None`), its reputation and stakes, and its audits (counts by
    /// outcome, the newest `limit` answers, reports and judgements).
    pub fn earnings(&self, limit: Option<u32>) -> Result<EarningsView, ClientError> {
        match limit {
            Some(limit) => self.get_json(&format!("/earnings?limit={limit}")),
            None => self.get_json("/earnings"),
        }
    }
}
