//! The lease calls of [`NodeClient`]: gathering bids, running a command in
//! a leased space, reading leases from the ledger.

use std::time::Duration;

use peercloud_api::{
    Canonical, LeaseOffersRequest, LeaseOffersResponse, LeaseView, SpaceCommandRequest,
    SpaceCommandResponse,
};
use peercloud_types::{AccountId, LeaseId, LeaseRequest, Signed, SpaceCommand, clock::now_ms};

use crate::{ClientError, NodeClient, REQUEST_TIMEOUT};

/// A command may run for a minute in its space.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(75);

impl NodeClient {
    /// `POST /v1/leases/offers`: answers when the request's offer window closes.
    pub fn lease_offers(&self, request: &LeaseRequest) -> Result<LeaseOffersResponse, ClientError> {
        let window = request.offers_until_ms.saturating_sub(now_ms());
        let timeout = Duration::from_millis(window).saturating_add(REQUEST_TIMEOUT);
        let body = LeaseOffersRequest {
            request: Canonical(request.clone()),
        };
        self.post_json("/leases/offers", &body, timeout)
    }

    /// `POST /v1/leases/command`: the command's output once it finished.
    pub fn space_command(
        &self,
        command: &Signed<SpaceCommand>,
    ) -> Result<SpaceCommandResponse, ClientError> {
        let body = SpaceCommandRequest {
            command: Canonical(command.clone()),
        };
        self.post_json("/leases/command", &body, COMMAND_TIMEOUT)
    }

    /// `GET /v1/leases/{id}`.
    pub fn lease(&self, lease: &LeaseId) -> Result<LeaseView, ClientError> {
        self.get_json(&format!("/leases/{}", lease.0))
    }

    /// `GET /v1/leases?user=`.
    pub fn leases_of(&self, user: &AccountId) -> Result<Vec<LeaseView>, ClientError> {
        self.get_json(&format!("/leases?user={user}"))
    }
}
