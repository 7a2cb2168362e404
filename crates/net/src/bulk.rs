//! The bulk channel: chunk-sized requests between nodes over plain TCP,
//! authenticated but not encrypted.
//!
//! Requests on a [`Protocol::bulk`] protocol carry chunks, a megabyte
//! each: on the libp2p connection, noise's ChaCha20-Poly1305 (which the
//! libp2p spec fixes) and yamux's framing were the largest CPU cost of a
//! put and a get after the copies. This channel seals with AES-256-GCM,
//! which the processor's AES instructions make several times cheaper. Here each connection belongs to a session the serving peer opens
//! over libp2p (`/peercloud/bulk-open/1`, so noise authenticates both ends
//! and hides the session key); every frame is sealed with that key
//! (AES-256-GCM, see [`frame`]), so a frame is the session's peer's own,
//! whole, in order and unread by anyone else, and a tampered one ends the
//! connection.
//!
//! ```text
//!  asker                                   server
//!   ├─ libp2p: bulk-open ────────────────►  session id + key (10 s to use, once)
//!   ├─ TCP connect to the peer's address, the granted port; hello(session)
//!   ├─ frame(seq, protocol, request) ─────► NetEvent::Request, as from libp2p
//!   ◄──────────────────── frame(seq, answer) ┘
//!   └─ the connection goes back to a small per-peer pool for the next request
//! ```
//!
//! A peer whose session cannot be opened or reached (an older node, a port
//! a firewall closes) is asked over libp2p instead, and not tried again
//! for [`UNAVAILABLE_RETRY`]. A connection that fails once a request is
//! sent fails that request: the asker cannot know whether it was served.

mod frame;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::{debug, warn};

use crate::actor::Command;
use crate::config::{IDLE_CONNECTION_TIMEOUT, NetConfig};
use crate::error::{NetError, RequestFailure};
use crate::handle::{NetEvent, NetHandle, Responder};
use crate::metrics::{NetMetrics, bump};
use crate::protocol::Protocol;
use frame::{Direction, FrameError, Grant, SESSION_BYTES, SessionKey};

/// How long a granted session waits for its connection.
const SESSION_TTL: Duration = Duration::from_secs(10);
/// Sessions granted and not yet connected, at most (the oldest go first).
const SESSIONS_PENDING_MAX: usize = 1024;
/// Bulk connections served at once.
const CONNECTIONS_MAX: usize = 256;
/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an asker waits for a connection: the peers are on this host or
/// its LAN, where a connection takes a millisecond; a port a firewall drops
/// costs this once per [`UNAVAILABLE_RETRY`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per peer for the next request.
const IDLE_PER_PEER_MAX: usize = 8;
/// An idle connection older than this is closed, not reused (the server
/// closes after [`IDLE_CONNECTION_TIMEOUT`]).
const IDLE_REUSE_MAX: Duration = Duration::from_secs(20);
/// How long a peer whose bulk channel failed to open is asked over libp2p
/// before the channel is tried again.
pub(crate) const UNAVAILABLE_RETRY: Duration = Duration::from_secs(300);
/// Answer codes.
const ANSWERED: u8 = 0;
const UNANSWERED: u8 = 1;

/// The wire code of a protocol in a frame: its place in [`Protocol::ALL`].
fn code_of(protocol: Protocol) -> u8 {
    Protocol::ALL
        .iter()
        .position(|p| *p == protocol)
        .map_or(u8::MAX, |i| i as u8)
}

/// Whether a bulk-open request asks for a version this node speaks.
pub(crate) fn speaks(request: &[u8]) -> bool {
    request == [frame::VERSION]
}

/// The serving side: the listener's port and the sessions granted.
#[derive(Debug)]
pub(crate) struct BulkServer {
    port: u16,
    sessions: Mutex<HashMap<[u8; SESSION_BYTES], Pending>>,
    /// Set when the node's network stops: the listener and every
    /// connection close.
    stopped: watch::Sender<bool>,
}

#[derive(Debug)]
struct Pending {
    peer: PeerId,
    key: [u8; frame::KEY_BYTES],
    granted: Instant,
}

/// What a served connection hands requests to.
#[derive(Debug, Clone)]
pub(crate) struct ServeContext {
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) metrics: Arc<NetMetrics>,
    /// Whose timeouts bound how long the node may take to answer.
    pub(crate) config: NetConfig,
}

impl BulkServer {
    /// Listens on `ip` (any free port) and serves connections in the background.
    pub(crate) async fn bind(ip: IpAddr, context: ServeContext) -> io::Result<Arc<BulkServer>> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let server = Arc::new(BulkServer {
            port: listener.local_addr()?.port(),
            sessions: Mutex::new(HashMap::new()),
            stopped: watch::Sender::new(false),
        });
        tokio::spawn(accept_loop(listener, server.clone(), context));
        Ok(server)
    }

    /// Grants `peer` a session: the answer to its bulk-open request.
    pub(crate) fn open(&self, peer: PeerId) -> Result<Vec<u8>, getrandom::Error> {
        let mut session = [0u8; SESSION_BYTES];
        let mut key = [0u8; frame::KEY_BYTES];
        getrandom::fill(&mut session)?;
        getrandom::fill(&mut key)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, p| p.granted.elapsed() < SESSION_TTL);
        if sessions.len() >= SESSIONS_PENDING_MAX
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, p)| p.granted)
                .map(|(id, _)| *id)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            session,
            Pending {
                peer,
                key,
                granted: Instant::now(),
            },
        );
        Ok(Grant {
            port: self.port,
            session,
            key,
        }
        .encode())
    }

    /// Closes the listener and every connection (the network stopped).
    pub(crate) fn stop(&self) {
        self.stopped.send_replace(true);
    }

    /// Takes the session a hello names, if granted and still fresh.
    fn claim(&self, session: &[u8; SESSION_BYTES]) -> Option<Pending> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions
            .remove(session)
            .filter(|p| p.granted.elapsed() < SESSION_TTL)
    }
}

async fn accept_loop(listener: TcpListener, server: Arc<BulkServer>, context: ServeContext) {
    let mut stopped = server.stopped.subscribe();
    tokio::select! {
        () = accept_until_stopped(listener, server, context) => {}
        _ = stopped.wait_for(|stopped| *stopped) => {}
    }
}

async fn accept_until_stopped(
    listener: TcpListener,
    server: Arc<BulkServer>,
    context: ServeContext,
) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        // At the limit, new connections wait in the listen backlog (and
        // their askers' timeouts) rather than being cut.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(%e, "bulk listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (server, context) = (server.clone(), context.clone());
        tokio::spawn(async move {
            let mut stopped = server.stopped.subscribe();
            tokio::select! {
                served = serve(stream, &server, &context) => {
                    if let Err(e) = served {
                        debug!(%from, %e, "bulk connection ended");
                    }
                }
                _ = stopped.wait_for(|stopped| *stopped) => {}
            }
            drop(slot);
        });
    }
}

/// Serves one connection: its hello, then request after request.
async fn serve(
    mut stream: TcpStream,
    server: &BulkServer,
    context: &ServeContext,
) -> Result<(), FrameError> {
    stream.set_nodelay(true)?;
    let (session, tag) = tokio::time::timeout(HELLO_TIMEOUT, frame::read_hello(&mut stream))
        .await
        .map_err(|_| FrameError::Io(io::ErrorKind::TimedOut.into()))??;
    let Some(pending) = server.claim(&session) else {
        return Err(FrameError::UnknownSession);
    };
    let key = SessionKey::new(&pending.key);
    if !frame::hello_valid(&key, &session, &tag) {
        return Err(FrameError::BadTag { seq: 0 });
    }
    // Nothing but a bulk protocol's request is read: the largest of those.
    let max = Protocol::ALL
        .iter()
        .filter(|p| p.bulk())
        .map(|p| p.request_bytes_max())
        .max()
        .unwrap_or(0);
    let mut seq = 0u64;
    loop {
        let read = frame::read_frame(&mut stream, &key, Direction::Request, seq, max);
        let Some((code, data)) = tokio::time::timeout(IDLE_CONNECTION_TIMEOUT, read)
            .await
            .map_err(|_| FrameError::Io(io::ErrorKind::TimedOut.into()))??
        else {
            return Ok(());
        };
        let Some(protocol) = Protocol::ALL
            .get(usize::from(code))
            .copied()
            .filter(|p| p.bulk())
        else {
            return Err(FrameError::UnknownProtocol { code });
        };
        if data.len() > protocol.request_bytes_max() {
            return Err(FrameError::TooLarge {
                len: data.len(),
                max: protocol.request_bytes_max(),
            });
        }
        let answer = answer(pending.peer, protocol, data, context).await;
        let (code, payload) = match answer {
            Some(bytes) if bytes.len() <= protocol.response_bytes_max() => (ANSWERED, bytes),
            _ => {
                bump(&context.metrics.requests_unanswered);
                (UNANSWERED, Vec::new())
            }
        };
        frame::write_frame(&mut stream, &key, Direction::Answer, seq, code, payload).await?;
        seq += 1;
    }
}

/// Hands one request to the node as libp2p would, and waits for its answer.
async fn answer(
    peer: PeerId,
    protocol: Protocol,
    data: Vec<u8>,
    context: &ServeContext,
) -> Option<Vec<u8>> {
    let (sender, receiver) = oneshot::channel();
    bump(&context.metrics.requests_received);
    bump(&context.metrics.bulk_requests_received);
    let event = NetEvent::Request {
        peer,
        protocol,
        data,
        reply: Responder { sender },
    };
    context.events.send(event).await.ok()?;
    let wait = context.config.timeout_of(protocol);
    tokio::time::timeout(wait, receiver).await.ok()?.ok()
}

/// The asking side: idle connections by peer, and peers to ask over libp2p.
#[derive(Debug, Default)]
pub(crate) struct BulkPool {
    idle: Mutex<HashMap<PeerId, Vec<Connection>>>,
    unavailable: Mutex<HashMap<PeerId, Instant>>,
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    key: SessionKey,
    seq: u64,
    used: Instant,
}

impl Connection {
    /// Whether the server has not closed it while it sat in the pool (a
    /// closed one reads end of file at once; a live one has nothing to read).
    fn open(&self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Why a bulk request did not return an answer.
#[derive(Debug)]
pub(crate) enum BulkFailure {
    /// Nothing was sent: ask over libp2p (the request's bytes, back).
    Unavailable(String, Vec<u8>),
    /// The request was sent and failed: the caller's error.
    Failed(NetError),
}

impl BulkPool {
    fn take(&self, peer: &PeerId) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = idle.get_mut(peer)?;
        connections.retain(|c| c.used.elapsed() < IDLE_REUSE_MAX && c.open());
        let taken = connections.pop();
        if connections.is_empty() {
            idle.remove(peer);
        }
        taken
    }

    fn give_back(&self, peer: PeerId, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let connections = idle.entry(peer).or_default();
        if connections.len() < IDLE_PER_PEER_MAX {
            connections.push(connection);
        }
    }

    fn available(&self, peer: &PeerId) -> bool {
        let mut unavailable = self
            .unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match unavailable.get(peer) {
            Some(since) if since.elapsed() < UNAVAILABLE_RETRY => false,
            Some(_) => {
                unavailable.remove(peer);
                true
            }
            None => true,
        }
    }

    fn mark_unavailable(&self, peer: PeerId) {
        self.unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer, Instant::now());
    }
}

/// Sends `data` to `peer` on `protocol` over the bulk channel (`handle`'s
/// pool, or a new session) and waits `wait` at most for the answer.
pub(crate) async fn request(
    handle: &NetHandle,
    peer: PeerId,
    protocol: Protocol,
    data: Vec<u8>,
    wait: Duration,
) -> Result<Vec<u8>, BulkFailure> {
    let pool = &handle.bulk;
    let mut connection = match pool.take(&peer) {
        Some(connection) => connection,
        None if !pool.available(&peer) => {
            return Err(BulkFailure::Unavailable(
                "opened before and failed".into(),
                data,
            ));
        }
        None => match connect(handle, peer).await {
            Ok(connection) => connection,
            // Unreachable over libp2p too: asking there again would only
            // wait as long once more.
            Err(NoChannel::Unreached(error)) => {
                bump(&handle.metrics.requests_failed);
                let error = match error {
                    NetError::Request { reason, .. } => NetError::Request {
                        peer,
                        protocol,
                        reason,
                    },
                    other => other,
                };
                return Err(BulkFailure::Failed(error));
            }
            Err(NoChannel::Refused(reason)) => {
                debug!(%peer, %reason, "no bulk channel: asking over libp2p");
                pool.mark_unavailable(peer);
                return Err(BulkFailure::Unavailable(reason, data));
            }
        },
    };
    let failed = |reason: RequestFailure| {
        bump(&handle.metrics.requests_failed);
        BulkFailure::Failed(NetError::Request {
            peer,
            protocol,
            reason,
        })
    };
    let seq = connection.seq;
    let written = frame::write_frame(
        &mut connection.stream,
        &connection.key,
        Direction::Request,
        seq,
        code_of(protocol),
        data,
    )
    .await;
    if let Err(e) = written {
        return Err(failed(RequestFailure::Stream {
            reason: e.to_string(),
        }));
    }
    bump(&handle.metrics.bulk_requests_sent);
    let read = frame::read_frame(
        &mut connection.stream,
        &connection.key,
        Direction::Answer,
        seq,
        protocol.response_bytes_max(),
    );
    let answer = match tokio::time::timeout(wait, read).await {
        Err(_) => return Err(failed(RequestFailure::Timeout)),
        Ok(Err(e)) => {
            return Err(failed(RequestFailure::Stream {
                reason: e.to_string(),
            }));
        }
        Ok(Ok(None)) => return Err(failed(RequestFailure::ConnectionClosed)),
        Ok(Ok(Some((ANSWERED, answer)))) => answer,
        // The peer dropped the request or let it time out, as libp2p
        // reports a stream the responder closed.
        Ok(Ok(Some(_))) => return Err(failed(RequestFailure::ConnectionClosed)),
    };
    connection.seq += 1;
    connection.used = Instant::now();
    pool.give_back(peer, connection);
    Ok(answer)
}

/// Opens a session with `peer` over libp2p and connects to it.
async fn connect(handle: &NetHandle, peer: PeerId) -> Result<Connection, NoChannel> {
    let grant = handle
        .call(|reply| Command::Request {
            peer,
            protocol: Protocol::BulkOpen,
            data: vec![frame::VERSION],
            reply,
        })
        .await
        .and_then(|answer| answer)
        .map_err(|e| match e {
            NetError::Closed
            | NetError::Request {
                reason: RequestFailure::Unreachable | RequestFailure::Timeout,
                ..
            } => NoChannel::Unreached(e),
            refused => NoChannel::Refused(format!("opening a session: {refused}")),
        })?;
    connect_granted(handle, peer, &grant)
        .await
        .map_err(NoChannel::Refused)
}

/// Why no bulk connection could be had.
#[derive(Debug)]
enum NoChannel {
    /// The peer could not be reached at all (over libp2p either): the
    /// request's error. No sign the peer has no channel.
    Unreached(NetError),
    /// The peer has no channel for us (it refused the session, speaks no
    /// bulk-open, or its port does not connect): ask it over libp2p, and
    /// keep doing so for [`UNAVAILABLE_RETRY`].
    Refused(String),
}

/// Connects to the session `grant` (the peer's answer) names.
async fn connect_granted(
    handle: &NetHandle,
    peer: PeerId,
    grant: &[u8],
) -> Result<Connection, String> {
    let grant = Grant::decode(grant).map_err(|e| e.to_string())?;
    let ip = handle
        .call(|reply| Command::PeerIp { peer, reply })
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no address of the peer's connection")?;
    let addr = SocketAddr::new(ip, grant.port);
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr}: timed out"))?
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("{addr}: {e}"))?;
    frame::write_hello(&mut stream, &grant)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(Connection {
        stream,
        key: grant.sealer(),
        seq: 0,
        used: Instant::now(),
    })
}

/// The frame reader and writer under a fixed key, for the fuzz targets
/// (a node's keys come only from sessions). Synchronous: they run the
/// async reader on an in-memory input.
#[doc(hidden)]
pub mod fuzzing {
    use super::frame::{self, Direction, Grant, SESSION_BYTES, SessionKey};
    use futures::executor::block_on;

    /// The key every fuzz input is sealed under.
    pub const KEY: [u8; frame::KEY_BYTES] = [7; frame::KEY_BYTES];

    /// A request frame as an asker writes it.
    pub fn seal(seq: u64, code: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let key = SessionKey::new(&KEY);
        let written = block_on(frame::write_frame(
            &mut out,
            &key,
            Direction::Request,
            seq,
            code,
            payload.to_vec(),
        ));
        match written {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }

    /// Reads one request frame from `input` as a server does (sequence
    /// `seq`, payloads of at most `max` bytes): its code, payload and the
    /// bytes it took, `None` at a clean end, or why it was refused.
    pub fn open(
        input: &[u8],
        seq: u64,
        max: usize,
    ) -> Result<Option<(u8, Vec<u8>, usize)>, String> {
        let mut rest = input;
        let key = SessionKey::new(&KEY);
        let read = block_on(frame::read_frame(
            &mut rest,
            &key,
            Direction::Request,
            seq,
            max,
        ));
        match read {
            Ok(Some((code, payload))) => Ok(Some((code, payload, input.len() - rest.len()))),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The hello naming `session` under [`KEY`].
    pub fn hello(session: [u8; SESSION_BYTES]) -> Vec<u8> {
        let grant = Grant {
            port: 0,
            session,
            key: KEY,
        };
        let mut out = Vec::new();
        match block_on(frame::write_hello(&mut out, &grant)) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }

    /// Reads a hello from `input`: the session it names and whether it
    /// checks under [`KEY`], or why it was refused.
    pub fn read_hello(input: &[u8]) -> Result<([u8; SESSION_BYTES], bool), String> {
        let mut rest = input;
        let (session, tag) = block_on(frame::read_hello(&mut rest)).map_err(|e| e.to_string())?;
        Ok((
            session,
            frame::hello_valid(&SessionKey::new(&KEY), &session, &tag),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn server() -> (Arc<BulkServer>, mpsc::Receiver<NetEvent>) {
        let (events, received) = mpsc::channel(8);
        let context = ServeContext {
            events,
            metrics: Arc::default(),
            config: NetConfig::new([1; 32]),
        };
        let server = BulkServer::bind(IpAddr::from([127, 0, 0, 1]), context)
            .await
            .expect("binding on loopback");
        (server, received)
    }

    async fn connected(server: &BulkServer, grant: &Grant) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .expect("connecting");
        frame::write_hello(&mut stream, grant).await.expect("hello");
        stream
    }

    /// Sends one request frame.
    async fn request(
        stream: &mut TcpStream,
        key: &SessionKey,
        seq: u64,
        code: u8,
        payload: Vec<u8>,
    ) {
        frame::write_frame(stream, key, Direction::Request, seq, code, payload)
            .await
            .expect("request");
    }

    /// Whether the server closed `stream` (it reads nothing more).
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_granted_session_serves_its_peer_once_and_a_forged_frame_ends_it() {
        let (server, mut events) = server().await;
        let peer = PeerId::random();
        let grant = Grant::decode(&server.open(peer).expect("randomness")).expect("a grant");
        let mut stream = connected(&server, &grant).await;

        let code = code_of(Protocol::Chunk);
        request(&mut stream, &grant.sealer(), 0, code, b"get x".to_vec()).await;
        let Some(NetEvent::Request {
            peer: from,
            protocol,
            data,
            reply,
        }) = events.recv().await
        else {
            panic!("no request reached the node");
        };
        assert_eq!(
            (from, protocol, &data[..]),
            (peer, Protocol::Chunk, &b"get x"[..])
        );
        reply.send(b"x bytes".to_vec());
        let answer = frame::read_frame(&mut stream, &grant.sealer(), Direction::Answer, 0, 1 << 20)
            .await
            .expect("an answer");
        assert_eq!(answer, Some((ANSWERED, b"x bytes".to_vec())));

        // The session is spent: a second connection naming it is closed.
        let mut again = connected(&server, &grant).await;
        assert!(closed(&mut again).await);

        // A frame sealed under another key ends the connection, unanswered.
        request(
            &mut stream,
            &SessionKey::new(&[0; frame::KEY_BYTES]),
            1,
            code,
            b"forged".to_vec(),
        )
        .await;
        assert!(closed(&mut stream).await);
        assert!(
            events.try_recv().is_err(),
            "the forged request reached the node"
        );
    }

    #[tokio::test]
    async fn a_hello_under_the_wrong_key_or_for_no_session_is_refused() {
        let (server, mut events) = server().await;
        let grant =
            Grant::decode(&server.open(PeerId::random()).expect("randomness")).expect("a grant");
        let forged = Grant {
            key: [7; frame::KEY_BYTES],
            ..grant.clone()
        };
        let mut stream = connected(&server, &forged).await;
        assert!(closed(&mut stream).await);
        let unknown = Grant {
            session: [1; SESSION_BYTES],
            ..grant
        };
        let mut stream = connected(&server, &unknown).await;
        assert!(closed(&mut stream).await);
        // A protocol with no bulk channel is refused even in a good session.
        let grant =
            Grant::decode(&server.open(PeerId::random()).expect("randomness")).expect("a grant");
        let mut stream = connected(&server, &grant).await;
        let code = code_of(Protocol::Offer);
        request(&mut stream, &grant.sealer(), 0, code, b"offer".to_vec()).await;
        assert!(closed(&mut stream).await);
        assert!(events.try_recv().is_err());
    }
}
