//! The request-response half of the swarm actor: outbound requests tracked
//! until their answer, lookups of unknown peers, and inbound requests waiting
//! for the node's [`Responder`].
//!
//! An outbound request to a peer that is neither connected nor in the routing
//! table is parked behind a Kademlia `get_closest_peers` lookup for that peer,
//! then sent with the addresses the lookup found. Inbound requests wait for the
//! node's answer at most their protocol's timeout. All three collections are
//! bounded ([`OUTBOUND_REQUESTS_MAX`], [`INBOUND_REQUESTS_MAX`]).

use libp2p::request_response::{self, ResponseChannel};
use libp2p::{Multiaddr, PeerId, kad};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use super::Actor;
use crate::config::{INBOUND_REQUESTS_MAX, OUTBOUND_REQUESTS_MAX};
use crate::error::{NetError, RequestFailure};
use crate::handle::{NetEvent, Responder};
use crate::metrics::bump;
use crate::protocol::Protocol;

/// An outbound request waiting for its response.
pub(super) struct PendingRequest {
    peer: PeerId,
    reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
}

/// An outbound request waiting for a Kademlia lookup of its peer.
pub(super) struct ParkedRequest {
    protocol: Protocol,
    data: Vec<u8>,
    reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
}

/// The node's answer (or silence) to one inbound request.
pub(super) struct Answer {
    peer: PeerId,
    protocol: Protocol,
    channel: ResponseChannel<Vec<u8>>,
    response: Option<Vec<u8>>,
}

impl Actor {
    /// Sends a request now if the peer is reachable as far as we know, or
    /// parks it behind a lookup of the peer.
    pub(super) fn request(
        &mut self,
        peer: PeerId,
        protocol: Protocol,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    ) {
        if self.outbound.len() + self.parked >= OUTBOUND_REQUESTS_MAX {
            let _ = reply.send(Err(NetError::Busy {
                what: "requests",
                max: OUTBOUND_REQUESTS_MAX,
            }));
            return;
        }
        if self.swarm.is_connected(&peer) || self.in_routing_table(&peer) {
            self.send_request(peer, protocol, data, Vec::new(), reply);
            return;
        }
        // Unknown peer: find it first. Requests for a peer already being looked
        // up join that lookup.
        let parked = ParkedRequest {
            protocol,
            data,
            reply,
        };
        self.parked += 1;
        match self.lookups.get_mut(&peer) {
            Some(waiting) => waiting.push(parked),
            None => {
                debug!(%peer, "looking up peer before requesting");
                bump(&self.metrics.lookups);
                self.swarm.behaviour_mut().kademlia.get_closest_peers(peer);
                self.lookups.insert(peer, vec![parked]);
            }
        }
    }

    fn send_request(
        &mut self,
        peer: PeerId,
        protocol: Protocol,
        data: Vec<u8>,
        addresses: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    ) {
        let request_id = self
            .swarm
            .behaviour_mut()
            .request_response(protocol)
            .send_request_with_addresses(&peer, data, addresses);
        bump(&self.metrics.requests_sent);
        self.outbound
            .insert((protocol, request_id), PendingRequest { peer, reply });
    }

    fn in_routing_table(&mut self, peer: &PeerId) -> bool {
        self.swarm
            .behaviour_mut()
            .kademlia
            .kbucket(*peer)
            .is_some_and(|bucket| bucket.iter().any(|entry| entry.node.key.preimage() == peer))
    }

    /// A lookup for `target` progressed: send its parked requests once the
    /// peer is found, or (on the last step) try them anyway; the dial then
    /// fails as `Unreachable` if nobody knew the peer.
    pub(super) fn on_lookup(&mut self, key: &[u8], peers: Vec<kad::PeerInfo>, last: bool) {
        let Ok(target) = PeerId::from_bytes(key) else {
            return;
        };
        let found = peers.into_iter().find(|info| info.peer_id == target);
        if found.is_none() && !last {
            return;
        }
        let Some(parked) = self.lookups.remove(&target) else {
            return;
        };
        self.parked -= parked.len();
        let addresses = found.map(|info| info.addrs).unwrap_or_default();
        debug!(peer = %target, ?addresses, "lookup finished");
        for request in parked {
            self.send_request(
                target,
                request.protocol,
                request.data,
                addresses.clone(),
                request.reply,
            );
        }
    }

    /// Passes the node's answer to libp2p, or drops the stream when the node
    /// gave none (or one over the protocol's limit): the asker sees an error.
    pub(super) fn on_answer(&mut self, answer: Answer) {
        let Answer {
            peer,
            protocol,
            channel,
            response,
        } = answer;
        let Some(data) = response else {
            debug!(%peer, protocol = protocol.name(), "inbound request left unanswered");
            bump(&self.metrics.requests_unanswered);
            return; // dropping the channel closes the stream
        };
        let max = protocol.response_bytes_max();
        if data.len() > max {
            warn!(
                %peer,
                protocol = protocol.name(),
                len = data.len(),
                max,
                "response over the protocol limit dropped"
            );
            bump(&self.metrics.requests_unanswered);
            return;
        }
        if self
            .swarm
            .behaviour_mut()
            .request_response(protocol)
            .send_response(channel, data)
            .is_err()
        {
            debug!(%peer, protocol = protocol.name(), "response came after the request ended");
        }
    }

    /// One event of `protocol`'s request-response behaviour.
    pub(super) async fn on_request_response(
        &mut self,
        protocol: Protocol,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                self.on_inbound_request(peer, protocol, request, channel)
                    .await
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(pending) = self.outbound.remove(&(protocol, request_id)) {
                    let _ = pending.reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(pending) = self.outbound.remove(&(protocol, request_id)) {
                    bump(&self.metrics.requests_failed);
                    let _ = pending.reply.send(Err(NetError::Request {
                        peer: pending.peer,
                        protocol,
                        reason: RequestFailure::from(&error),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, protocol = protocol.name(), %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    async fn on_inbound_request(
        &mut self,
        peer: PeerId,
        protocol: Protocol,
        data: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        if self.inbound.len() >= INBOUND_REQUESTS_MAX {
            warn!(%peer, protocol = protocol.name(), "too many unanswered requests: refused");
            bump(&self.metrics.requests_unanswered);
            return; // dropping the channel closes the stream
        }
        if protocol == Protocol::BulkOpen {
            self.open_bulk(peer, &data, channel);
            return;
        }
        let (sender, receiver) = oneshot::channel();
        let wait = self.config.timeout_of(protocol);
        self.inbound.push(Box::pin(async move {
            let response = tokio::time::timeout(wait, receiver)
                .await
                .ok()
                .and_then(Result::ok);
            Answer {
                peer,
                protocol,
                channel,
                response,
            }
        }));
        bump(&self.metrics.requests_received);
        let reply = Responder { sender };
        self.emit(NetEvent::Request {
            peer,
            protocol,
            data,
            reply,
        })
        .await;
    }

    /// Answers a bulk-open request here: a session of this node's bulk
    /// channel for `peer`, or a closed stream (so it asks over libp2p) when
    /// there is none or the request is not of a version this node speaks.
    fn open_bulk(&mut self, peer: PeerId, data: &[u8], channel: ResponseChannel<Vec<u8>>) {
        let grant = match &self.bulk {
            Some(server) if crate::bulk::speaks(data) => server.open(peer),
            _ => return,
        };
        let response = match grant {
            Ok(grant) => Some(grant),
            Err(error) => {
                warn!(%error, "no randomness for a bulk session");
                None
            }
        };
        self.inbound.push(Box::pin(std::future::ready(Answer {
            peer,
            protocol: Protocol::BulkOpen,
            channel,
            response,
        })));
    }
}
