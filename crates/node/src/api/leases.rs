//! The lease calls of the API.
//!
//! ```text
//!   POST /v1/leases/offers   LeaseOffersRequest  ─► Service::lease_offers  ─► LeaseOffersResponse
//!   POST /v1/leases/command  SpaceCommandRequest ─► Service::space_command ─► SpaceCommandResponse
//!   GET  /v1/leases/{id}                         ─► Service::lease         ─► LeaseView
//!   GET  /v1/leases?user=pc1…                    ─► Service::leases_of     ─► [LeaseView]
//! ```

use axum::extract::{Path, Query, State};
use peercloud_api::{
    ApiError, Canonical, ErrorCode, HexBytes, LeaseOfferView, LeaseOffersRequest,
    LeaseOffersResponse, LeaseView, LeasesQuery, SpaceCommandRequest, SpaceCommandResponse,
};
use peercloud_ledger::{check_lease_offer, lease_settles_at_ms};
use peercloud_net::Protocol;
use peercloud_types::{AccountId, LeaseId};

use super::server::{Body, Failure, parse, rejection};
use super::service::Service;
use crate::daemon::{AskError, LeaseOfferError};
use crate::wire::Message;

/// A bid must stay valid at least this long after it is handed to the
/// user: time to sign the award and for it to land.
const BID_MARGIN_MS: u64 = 10_000;

impl Service {
    /// `POST /v1/leases/offers`: the sealed bids for `request` from every
    /// node that makes one before its offer window closes, cheapest first.
    pub async fn lease_offers(
        &self,
        request: LeaseOffersRequest,
    ) -> Result<LeaseOffersResponse, ApiError> {
        let request = request.request.0;
        let offers = self
            .inner()
            .gather_lease_offers(&request)
            .await
            .map_err(|e| match e {
                LeaseOfferError::Window { .. } => ApiError::bad_request(e.to_string()),
                LeaseOfferError::Net(_) => ApiError::new(ErrorCode::Unavailable, e.to_string()),
            })?;
        let chain = self.inner().chain();
        let state = chain.state();
        // Only bids the ledger would take (one it refuses refuses the whole
        // award), for a while yet, and none of the user's own nodes.
        let valid_from = crate::daemon::now_ms() + BID_MARGIN_MS;
        let digest = request.digest();
        let mut offers: Vec<LeaseOfferView> = offers
            .into_iter()
            .filter_map(|offer| {
                check_lease_offer(state, &request, &digest, 0, &offer, valid_from).ok()?;
                let node = state.node(&offer.body.node)?;
                (node.owner != request.user).then_some(())?;
                Some(LeaseOfferView {
                    reputation: node.reputation,
                    location: node.location.clone(),
                    owner: node.owner,
                    offer: Canonical(offer),
                })
            })
            .collect();
        offers.sort_by_key(|o| (o.offer.0.body.price_per_period, o.offer.0.body.node));
        // The ledger takes at most this many bids; the cheapest decide the award.
        offers.truncate(peercloud_ledger::params::LEASE_OFFERS_MAX);
        Ok(LeaseOffersResponse { offers })
    }

    /// `POST /v1/leases/command`: runs the user's signed command on the
    /// node that holds the lease's space (this one or another).
    pub async fn space_command(
        &self,
        request: SpaceCommandRequest,
    ) -> Result<SpaceCommandResponse, ApiError> {
        let command = request.command.0;
        let lease = command.body.lease;
        let node = self
            .inner()
            .chain()
            .state()
            .lease(&lease)
            .map(|l| l.node)
            .ok_or_else(|| ApiError::not_found(format!("{lease} is not on the ledger")))?;
        let answer = if node == self.inner().node_id() {
            crate::daemon::run_space_command(self.inner(), command).await
        } else {
            match self
                .inner()
                .ask(&node, Protocol::Space, &Message::SpaceCommand(command))
                .await
            {
                Ok(answer) => answer,
                Err(AskError::Refused { code, message, .. }) => {
                    return Err(ApiError::new(code, message));
                }
                Err(error @ AskError::Net { .. }) => {
                    return Err(ApiError::new(ErrorCode::Unavailable, error.to_string()));
                }
            }
        };
        match answer {
            Message::SpaceOutput {
                exit_code,
                stdout,
                stderr,
            } => Ok(SpaceCommandResponse {
                exit_code,
                stdout: HexBytes(stdout),
                stderr: HexBytes(stderr),
            }),
            Message::Error { code, message } => Err(ApiError::new(code, message)),
            _ => Err(ApiError::internal("the space answered something else")),
        }
    }

    /// `GET /v1/leases/{id}`.
    pub fn lease(&self, lease: &LeaseId) -> Result<LeaseView, ApiError> {
        let chain = self.inner().chain();
        let record = chain
            .state()
            .lease(lease)
            .ok_or_else(|| ApiError::not_found(format!("{lease} is not on the ledger")))?;
        Ok(LeaseView::of(*lease, record, lease_settles_at_ms(record)))
    }

    /// `GET /v1/leases?user=`: the user's leases, newest activity last.
    pub fn leases_of(&self, user: &AccountId) -> Vec<LeaseView> {
        let chain = self.inner().chain();
        let mut views: Vec<LeaseView> = chain
            .state()
            .leases()
            .filter(|(_, l)| l.user == *user)
            .map(|(id, l)| LeaseView::of(*id, l, lease_settles_at_ms(l)))
            .collect();
        views.sort_by_key(|v| (v.activate_by_ms, v.id));
        views
    }
}

pub(super) async fn offers(
    State(service): State<Service>,
    Body(body): Body<LeaseOffersRequest>,
) -> Result<axum::Json<LeaseOffersResponse>, Failure> {
    Ok(axum::Json(service.lease_offers(body).await?))
}

pub(super) async fn command(
    State(service): State<Service>,
    Body(body): Body<SpaceCommandRequest>,
) -> Result<axum::Json<SpaceCommandResponse>, Failure> {
    Ok(axum::Json(service.space_command(body).await?))
}

pub(super) async fn one(
    State(service): State<Service>,
    Path(id): Path<String>,
) -> Result<axum::Json<LeaseView>, Failure> {
    let lease: LeaseId = parse(&id, "a lease id")?;
    Ok(axum::Json(service.lease(&lease)?))
}

pub(super) async fn of_user(
    State(service): State<Service>,
    query: Result<Query<LeasesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Vec<LeaseView>>, Failure> {
    let Query(query) = query.map_err(|e| rejection(e.status(), e.body_text()))?;
    Ok(axum::Json(service.leases_of(&query.user)))
}
