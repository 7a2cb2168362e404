//! How a node's swarm is configured, and every bound the network layer keeps.
//!
//! [`NetConfig`] is what the node fills in (identity, addresses, timeouts); the
//! constants below are the fixed limits, each with the reason for its value.

use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol as AddrProtocol;

use crate::protocol::Protocol;

/// Capacity of the handle -> actor command queue. A full queue makes callers
/// wait (backpressure) rather than grow memory; 1024 covers bursts of chunk
/// requests from the store without making the actor a bottleneck.
pub const COMMAND_QUEUE_CAPACITY: usize = 1024;
/// Capacity of the actor -> node event queue. When full, the actor waits for
/// requests and connection events and drops gossip (gossip is re-sent by peers).
pub const EVENT_QUEUE_CAPACITY: usize = 1024;
/// Outbound requests (including those parked during a Kademlia lookup) in
/// flight at once; past this, [`crate::NetError::Busy`]. Each is bounded in
/// time by its protocol's timeout; this bounds them in number.
pub const OUTBOUND_REQUESTS_MAX: usize = 4096;
/// Inbound requests handed to the node and not yet answered. Past this an
/// inbound request is refused (its stream is closed) instead of queued.
pub const INBOUND_REQUESTS_MAX: usize = 4096;
/// Explicit dials awaiting their outcome.
pub const DIALS_PENDING_MAX: usize = 256;
/// Yamux streams per connection. Chosen for the receive windows it implies,
/// not for the count: yamux 0.14 gives each stream a 256 KiB window and lets
/// windows grow only into what the connection's 1 GiB receive budget (its
/// fixed default, not configurable through libp2p) leaves over the streams'
/// minimum. At 4093 streams that surplus is 768 KiB, so no stream is ever
/// granted more than 1 MiB of window — the largest frame body rust-yamux
/// accepts. A foreign implementation that sends frames as large as the
/// window it is granted (js-libp2p does) therefore never sends a frame this
/// node refuses by closing the connection. Streams per protocol are bounded
/// much lower by [`STREAMS_PER_CONNECTION_MAX`].
pub const YAMUX_STREAMS_MAX: usize = 4093;
/// rust-yamux's per-stream initial window and its largest accepted frame body.
const YAMUX_DEFAULT_WINDOW: usize = 256 << 10;
const YAMUX_FRAME_BODY_MAX: usize = 1 << 20;
const YAMUX_CONNECTION_WINDOW: usize = 1 << 30;
const _: () = assert!(
    YAMUX_CONNECTION_WINDOW - YAMUX_STREAMS_MAX * YAMUX_DEFAULT_WINDOW + YAMUX_DEFAULT_WINDOW
        <= YAMUX_FRAME_BODY_MAX,
    "a stream's window could grow past the largest frame yamux accepts"
);

/// Failed dials in a row after which a peer (not a bootstrap peer) is taken
/// out of the Kademlia routing table as departed.
pub const DEPARTED_AFTER_DIAL_FAILURES: u32 = 3;
/// Peers whose failed dials are counted at once; past it the counts restart.
pub const DIAL_FAILURES_TRACKED_MAX: usize = 1024;
/// Concurrent streams per connection per request-response protocol: enough
/// for a pipeline of chunk transfers, small enough that one peer cannot make us
/// hold thousands of buffers.
pub const STREAMS_PER_CONNECTION_MAX: usize = 64;

/// Established connections in all, both directions. A node talks to the
/// validator, its gossip mesh (a dozen peers) and whoever it exchanges
/// chunks or jobs with; 256 leaves room for a busy network while bounding
/// what hostile peers can hold open (each connection may buffer up to its
/// streams' message bounds).
pub const CONNECTIONS_MAX_DEFAULT: u32 = 256;
/// Established connections per peer: one each way when two nodes dial each
/// other at once, a relayed one and the direct one hole punching makes of
/// it, and AutoNAT's dial-back (a new connection by design: refused, it
/// would tell a reachable node it is behind NAT). More only wastes sockets.
pub const CONNECTIONS_PER_PEER_MAX_DEFAULT: u32 = 5;
/// Incoming connections still in their handshake (noise, yamux).
pub const CONNECTIONS_PENDING_INCOMING_MAX: u32 = 64;
/// New connections are refused while the process uses more than this share
/// of the machine's memory, so connections cannot starve the jobs and the
/// farmer's own programs.
pub const CONNECTIONS_MEMORY_SHARE_MAX: f64 = 0.75;

/// Default request-response timeout: a 1 MiB chunk over a slow home uplink
/// (~1 Mbit/s) takes ~9 s, so 30 s leaves room without hiding a dead peer long.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Job dispatch waits for the provider to fetch inputs and start the job
/// before it answers; ten minutes, so staging is not counted as a failure.
pub const JOB_DISPATCH_REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);
/// A connection with no active stream is kept this long, so gossip peers stay
/// connected between messages and meshes do not churn.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`crate::spawn`] waits for its listeners to report an address.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// When, counted from start, the actor runs extra Kademlia bootstraps: nodes
/// that start together query their bootstrap peer before it has learnt the
/// others' addresses, and Kademlia's own periodic bootstrap comes only every
/// five minutes. Three quick retries cover a devnet starting at once.
pub const STARTUP_REBOOTSTRAP_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(15),
];

/// Gossipsub heartbeat: small test networks and devnets form meshes within a
/// few hundred milliseconds; the control traffic of 5 beats per second is tiny.
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(200);
/// Largest gossipsub frame: 8 MiB, so a full block fits.
pub const GOSSIP_TRANSMIT_BYTES_MAX: usize = 8 << 20;
/// Room in a gossipsub frame for its envelope (topic, source, sequence number,
/// signature, public key, protobuf framing); generous against all of them.
pub const GOSSIP_ENVELOPE_BYTES_MAX: usize = 4 * 1024;
/// Largest payload [`crate::NetHandle::publish`] accepts.
pub const GOSSIP_DATA_BYTES_MAX: usize = GOSSIP_TRANSMIT_BYTES_MAX - GOSSIP_ENVELOPE_BYTES_MAX;

/// Relay reservations a node keeps while it is not reachable directly: two,
/// so losing one relay leaves it reachable while it finds another.
pub const RELAY_RESERVATIONS_WANTED: usize = 2;
/// How often the NAT state is looked at (reservations topped up, a relay
/// that refused us tried again).
pub const NAT_TICK: Duration = Duration::from_secs(3);
/// How long a relay that refused or dropped a reservation is passed over.
pub const RELAY_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Relay candidates remembered (peers that offer the relay protocol).
pub const RELAY_CANDIDATES_MAX: usize = 64;
/// Reservations a relaying node holds for others at once.
pub const RELAY_RESERVATIONS_MAX: usize = 128;
/// Circuits a relaying node carries at once.
pub const RELAY_CIRCUITS_MAX: usize = 64;
/// Circuits a relaying node carries for one peer at once.
pub const RELAY_CIRCUITS_PER_PEER_MAX: usize = 8;
/// A relayed connection's lifetime and volume: long and large enough for a
/// stream of chunks where hole punching fails, bounded so a relaying farmer
/// is not anybody's free pipe (the peers connect again after).
pub const RELAY_CIRCUIT_DURATION: Duration = Duration::from_secs(3600);
/// Bytes a relayed connection carries, both ways together.
pub const RELAY_CIRCUIT_BYTES_MAX: u64 = 1 << 30;
/// AutoNAT's first probe: soon after start (peers connect within a second).
pub const AUTONAT_BOOT_DELAY: Duration = Duration::from_secs(2);
/// AutoNAT's next probe while it is unsure.
pub const AUTONAT_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// AutoNAT's re-check once it is sure.
pub const AUTONAT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// How long before the same peer is asked to probe us again.
pub const AUTONAT_THROTTLE_SERVER_PERIOD: Duration = Duration::from_secs(5);
/// QUIC streams per connection: every protocol's
/// [`STREAMS_PER_CONNECTION_MAX`] at once, with room.
pub const QUIC_STREAMS_MAX: u32 = 1024;

/// Provider lookups in flight at once; past it a lookup finds nobody.
pub const PROVIDER_QUERIES_MAX: usize = 256;

/// Kademlia protocol name: our own, so a Peercloud DHT never merges with IPFS's.
pub const KADEMLIA_PROTOCOL: &str = "/peercloud/kad/1.0.0";
/// Identify protocol version string: tells peers which network we belong to.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/peercloud/1.0.0";

/// Everything the swarm needs to start.
#[derive(Clone)]
pub struct NetConfig {
    /// The node's ed25519 secret seed (32 bytes); the libp2p identity is derived
    /// from it, so PeerId <-> NodeId are the same key.
    pub secret: [u8; 32],
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start; each address ends in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Timeout of a request-response exchange (all protocols but job dispatch).
    pub request_timeout: Duration,
    /// Timeout of a [`Protocol::JobDispatch`] exchange.
    pub job_dispatch_request_timeout: Duration,
    /// Established connections in all ([`CONNECTIONS_MAX_DEFAULT`]).
    pub connections_max: u32,
    /// Established connections per peer ([`CONNECTIONS_PER_PEER_MAX_DEFAULT`]).
    pub connections_per_peer_max: u32,
    /// Whether chunks go over the bulk channel (a second TCP listener whose
    /// frames are sealed with AES-256-GCM; see the `bulk` module) with
    /// peers that offer it. Off: every request goes over libp2p.
    pub bulk: bool,
    /// Relays to reserve a slot on while this node is not reachable
    /// directly (each ending in `/p2p/<peer id>`); when empty, relays are
    /// picked among connected peers that offer to relay.
    pub relays: Vec<Multiaddr>,
    /// Whether this node relays for peers behind NAT once it knows it is
    /// reachable itself (a confirmed external address).
    pub relay_service: bool,
    /// Addresses others reach this node at (a public IP, a forwarded
    /// port), taken as confirmed.
    pub external: Vec<Multiaddr>,
    /// The peers are on a private network (a LAN, a lab): private
    /// addresses count as reachable for AutoNAT.
    pub private_network: bool,
}

impl std::fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("NetConfig")
            .field("secret", &"<redacted>")
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("request_timeout", &self.request_timeout)
            .field(
                "job_dispatch_request_timeout",
                &self.job_dispatch_request_timeout,
            )
            .field("connections_max", &self.connections_max)
            .field("connections_per_peer_max", &self.connections_per_peer_max)
            .field("bulk", &self.bulk)
            .field("relays", &self.relays)
            .field("relay_service", &self.relay_service)
            .field("external", &self.external)
            .field("private_network", &self.private_network)
            .finish()
    }
}

impl NetConfig {
    /// A configuration for this secret seed: listens on a free loopback TCP port,
    /// no bootstrap peers, default timeouts.
    pub fn new(secret: [u8; 32]) -> Self {
        let loopback = Multiaddr::empty()
            .with(AddrProtocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
            .with(AddrProtocol::Tcp(0));
        NetConfig {
            secret,
            listen: vec![loopback],
            bootstrap: Vec::new(),
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            job_dispatch_request_timeout: JOB_DISPATCH_REQUEST_TIMEOUT_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            connections_per_peer_max: CONNECTIONS_PER_PEER_MAX_DEFAULT,
            bulk: true,
            relays: Vec::new(),
            relay_service: true,
            external: Vec::new(),
            private_network: false,
        }
    }

    /// The timeout of one exchange on `protocol`.
    pub fn timeout_of(&self, protocol: Protocol) -> Duration {
        match protocol {
            // A space's command may run as long as a job's staging.
            Protocol::JobDispatch | Protocol::Space => self.job_dispatch_request_timeout,
            Protocol::Offer
            | Protocol::Chunk
            | Protocol::JobResult
            | Protocol::BlockSync
            | Protocol::Index
            | Protocol::BulkOpen => self.request_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_and_give_job_dispatch_the_long_timeout() {
        let config = NetConfig::new([7; 32]);
        assert_eq!(config.listen.len(), 1);
        assert_eq!(config.listen[0].to_string(), "/ip4/127.0.0.1/tcp/0");
        assert!(config.bootstrap.is_empty());
        assert_eq!(config.timeout_of(Protocol::Chunk), REQUEST_TIMEOUT_DEFAULT);
        assert_eq!(
            config.timeout_of(Protocol::JobDispatch),
            Duration::from_secs(600)
        );
        assert!(!format!("{config:?}").contains("[7, 7"));
    }
}
