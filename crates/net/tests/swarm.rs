//! Real swarms on loopback: three nodes (B and C bootstrap to A) exchange gossip
//! on every topic and requests on every protocol, including B -> C where B was
//! never told C's address. Every test is bounded by a timeout.

#![allow(clippy::unwrap_used)] // helpers are test code too

use std::collections::BTreeSet;
use std::time::Duration;

use peercloud_net::{
    GossipTopic, Multiaddr, NetConfig, NetError, NetEvent, NetHandle, PeerId, Protocol,
    RequestFailure, Verdict, node_id_of, peer_id_of, spawn,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

/// Bound on a whole test.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a test retries while meshes and routing tables form.
const FORMATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between retries.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Request timeout of the test nodes: short, so failures show fast.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A request payload the test responder refuses by dropping its responder.
const REFUSE: &[u8] = b"refuse";
/// A request payload the test responder answers with an oversized response.
const ANSWER_TOO_LARGE: &[u8] = b"answer-too-large";

type Gossip = (GossipTopic, Option<PeerId>, Vec<u8>);

struct TestNode {
    handle: NetHandle,
    gossip: mpsc::Receiver<Gossip>,
}

/// A request payload prefix the test responder answers only after 100 ms.
const SLOW: &[u8] = b"slow";

/// The answer the test responder gives: the protocol name, a colon, the request.
fn expected_answer(protocol: Protocol, data: &[u8]) -> Vec<u8> {
    [protocol.name().as_bytes(), b":", data].concat()
}

async fn start(seed: u8, bootstrap: Vec<Multiaddr>) -> TestNode {
    let mut config = NetConfig::new([seed; 32]);
    config.bootstrap = bootstrap;
    start_with(config).await
}

async fn start_with(mut config: NetConfig) -> TestNode {
    config.request_timeout = REQUEST_TIMEOUT;
    let (handle, mut events) = spawn(config).await.unwrap();
    let (gossip_sender, gossip) = mpsc::channel(1024);
    let validator = handle.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetEvent::Gossip {
                    topic,
                    source,
                    data,
                    id,
                } => {
                    // The test node's rule: payloads starting with "bad" are invalid.
                    let verdict = if data.starts_with(b"bad") {
                        Verdict::Reject
                    } else {
                        Verdict::Accept
                    };
                    validator.validate(id, verdict).await;
                    let _ = gossip_sender.send((topic, source, data)).await;
                }
                NetEvent::Request {
                    protocol,
                    data,
                    reply,
                    ..
                } => {
                    if data == REFUSE {
                        drop(reply);
                    } else if data.starts_with(SLOW) {
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            reply.send(expected_answer(protocol, &data));
                        });
                    } else if data == ANSWER_TOO_LARGE {
                        reply.send(vec![0; protocol.response_bytes_max() + 1]);
                    } else {
                        reply.send(expected_answer(protocol, &data));
                    }
                }
                NetEvent::PeerConnected(_) | NetEvent::PeerDisconnected(_) => {}
            }
        }
    });
    TestNode { handle, gossip }
}

/// A, then B and C bootstrapping to A.
async fn three_nodes(first_seed: u8) -> (TestNode, TestNode, TestNode) {
    let a = start(first_seed, Vec::new()).await;
    let a_addrs = a.handle.listen_addrs();
    assert!(!a_addrs.is_empty());
    let b = start(first_seed + 1, a_addrs.clone()).await;
    let c = start(first_seed + 2, a_addrs).await;
    (a, b, c)
}

/// Publishes, retrying while no peer is subscribed yet (meshes take a heartbeat).
async fn publish_when_meshed(node: &NetHandle, topic: GossipTopic, data: Vec<u8>) {
    let deadline = Instant::now() + FORMATION_TIMEOUT;
    loop {
        match node.publish(topic, data.clone()).await {
            Ok(()) => return,
            Err(NetError::NoPeers { .. }) if Instant::now() < deadline => sleep(RETRY_PAUSE).await,
            Err(error) => panic!("publish on {topic:?} failed: {error}"),
        }
    }
}

/// Waits until `node` has a connection to every peer in `peers`.
async fn wait_connected(node: &NetHandle, peers: &[PeerId]) {
    let deadline = Instant::now() + FORMATION_TIMEOUT;
    loop {
        let connected = node.connected_peers().await.unwrap();
        if peers.iter().all(|peer| connected.contains(peer)) {
            return;
        }
        assert!(Instant::now() < deadline, "peers never connected");
        sleep(RETRY_PAUSE).await;
    }
}

/// Waits until `node` sees every peer in `peers` subscribed to `topic`.
async fn wait_subscribed(node: &NetHandle, topic: GossipTopic, peers: &[PeerId]) {
    let deadline = Instant::now() + FORMATION_TIMEOUT;
    loop {
        let subscribed = node.subscribed_peers(topic).await.unwrap();
        if peers.iter().all(|peer| subscribed.contains(peer)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peers never subscribed to {topic:?}"
        );
        sleep(RETRY_PAUSE).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_on_every_topic_reaches_every_other_node_and_never_its_publisher() {
    timeout(TEST_TIMEOUT, async {
        let (a, b, c) = three_nodes(10).await;
        let mut nodes = [a, b, c];
        // Gossip is not a reliable log: a message published before a peer has
        // joined the topic is not replayed to it. So wait until every node sees
        // the other two subscribed to every topic; then a publish reaches both.
        let ids: Vec<PeerId> = nodes.iter().map(|node| node.handle.peer_id()).collect();
        for node in &nodes {
            let others: Vec<PeerId> = ids
                .iter()
                .copied()
                .filter(|id| *id != node.handle.peer_id())
                .collect();
            for topic in GossipTopic::ALL {
                wait_subscribed(&node.handle, topic, &others).await;
            }
        }
        let mut sent = Vec::new();
        for (index, node) in nodes.iter().enumerate() {
            for topic in GossipTopic::ALL {
                let data = format!("{} from node {index}", topic.name()).into_bytes();
                publish_when_meshed(&node.handle, topic, data.clone()).await;
                sent.push((index, topic, node.handle.peer_id(), data));
            }
        }

        for (index, node) in nodes.iter_mut().enumerate() {
            let expected: BTreeSet<Gossip> = sent
                .iter()
                .filter(|(from, ..)| *from != index)
                .map(|(_, topic, source, data)| (*topic, Some(*source), data.clone()))
                .collect();
            let mut received = BTreeSet::new();
            while received.len() < expected.len() {
                let gossip = node.gossip.recv().await.unwrap();
                assert!(expected.contains(&gossip), "node {index} got {gossip:?}");
                received.insert(gossip);
            }
        }
        // Nothing more arrives: no node hears its own messages, none twice.
        sleep(Duration::from_millis(500)).await;
        for (index, node) in nodes.iter_mut().enumerate() {
            assert!(
                node.gossip.try_recv().is_err(),
                "node {index} got extra gossip"
            );
        }
        // The same payload published again (a retry after an outage: signed
        // records are byte-identical) is a new message and reaches the others.
        let (_, topic, source, data) = sent[0].clone();
        nodes[0].handle.publish(topic, data.clone()).await.unwrap();
        for node in &mut nodes[1..] {
            let gossip = timeout(FORMATION_TIMEOUT, node.gossip.recv())
                .await
                .unwrap();
            assert_eq!(gossip, Some((topic, Some(source), data.clone())));
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_round_trip_on_every_protocol_including_to_a_peer_found_by_kademlia() {
    timeout(TEST_TIMEOUT, async {
        let (a, b, c) = three_nodes(20).await;
        let (a_id, b_id, c_id) = (a.handle.peer_id(), b.handle.peer_id(), c.handle.peer_id());
        wait_connected(&a.handle, &[b_id, c_id]).await;

        for protocol in Protocol::ALL.into_iter().filter(|p| p.node()) {
            let data = format!("hello on {}", protocol.name()).into_bytes();
            for (from, to) in [(&b.handle, a_id), (&a.handle, b_id), (&c.handle, a_id)] {
                let answer = from.request(to, protocol, data.clone()).await.unwrap();
                assert_eq!(answer, expected_answer(protocol, &data));
            }
        }

        // B was never given C's address: it finds C through A (Kademlia, fed by
        // identify). Routing tables settle within a few round trips.
        let deadline = Instant::now() + FORMATION_TIMEOUT;
        for protocol in Protocol::ALL.into_iter().filter(|p| p.node()) {
            let data = format!("b to c on {}", protocol.name()).into_bytes();
            let answer = loop {
                match b.handle.request(c_id, protocol, data.clone()).await {
                    Ok(answer) => break answer,
                    Err(NetError::Request {
                        reason: RequestFailure::Unreachable,
                        ..
                    }) if Instant::now() < deadline => sleep(RETRY_PAUSE).await,
                    Err(error) => panic!("B -> C on {}: {error}", protocol.name()),
                }
            };
            assert_eq!(answer, expected_answer(protocol, &data));
        }

        // A message of exactly the limit goes through.
        let chunk = vec![7u8; Protocol::Chunk.request_bytes_max() - 64];
        let answer = a
            .handle
            .request(c_id, Protocol::Chunk, chunk.clone())
            .await
            .unwrap();
        assert_eq!(answer, expected_answer(Protocol::Chunk, &chunk));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_to_a_peer_only_the_dht_knows_runs_a_lookup() {
    timeout(TEST_TIMEOUT, async {
        let a = start(25, Vec::new()).await;
        let b = start(26, a.handle.listen_addrs()).await;
        wait_connected(&b.handle, &[a.handle.peer_id()]).await;
        // D dials nobody; only A is told where it listens.
        let d = start(27, Vec::new()).await;
        let d_id = d.handle.peer_id();
        let d_addr = d.handle.listen_addrs()[0].clone();
        a.handle.add_address(d_id, d_addr).await.unwrap();

        let lookups_before = b.handle.metrics().lookups;
        let answer = b
            .handle
            .request(d_id, Protocol::BlockSync, b"from b".to_vec())
            .await
            .unwrap();
        assert_eq!(answer, expected_answer(Protocol::BlockSync, b"from b"));
        assert_eq!(b.handle.metrics().lookups, lookups_before + 1);
        assert!(d.handle.metrics().requests_received >= 1);

        // A peer nobody knows: the lookup finds nothing and the request fails.
        let stranger = peer_id_of(&peercloud_types::Keypair::from_seed(&[28; 32]).node_id());
        let error = b
            .handle
            .request(stranger, Protocol::Offer, b"anyone?".to_vec())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                NetError::Request {
                    reason: RequestFailure::Unreachable,
                    ..
                }
            ),
            "{error}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_refused_and_self_requests_fail_without_reaching_the_peer() {
    timeout(TEST_TIMEOUT, async {
        let a = start(30, Vec::new()).await;
        let b = start(31, a.handle.listen_addrs()).await;
        let a_id = a.handle.peer_id();
        wait_connected(&b.handle, &[a_id]).await;

        for protocol in Protocol::ALL.into_iter().filter(|p| p.node()) {
            let max = protocol.request_bytes_max();
            let error = b
                .handle
                .request(a_id, protocol, vec![0; max + 1])
                .await
                .unwrap_err();
            assert!(
                matches!(error, NetError::TooLarge { protocol: p, len, max: m }
                    if p == protocol && len == max + 1 && m == max),
                "{error}"
            );

            // A dropped responder is an error for the asker, not a hang.
            let error = b
                .handle
                .request(a_id, protocol, REFUSE.to_vec())
                .await
                .unwrap_err();
            assert!(matches!(error, NetError::Request { .. }), "{error}");

            // An oversized answer never leaves the responder.
            let error = b
                .handle
                .request(a_id, protocol, ANSWER_TOO_LARGE.to_vec())
                .await
                .unwrap_err();
            assert!(matches!(error, NetError::Request { .. }), "{error}");
        }

        let error = b
            .handle
            .request(b.handle.peer_id(), Protocol::Offer, b"me".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            NetError::Request {
                reason: RequestFailure::SelfRequest,
                ..
            }
        ));

        let error = b
            .handle
            .publish(GossipTopic::Blocks, vec![0; 9 << 20])
            .await
            .unwrap_err();
        assert!(matches!(error, NetError::GossipTooLarge { .. }), "{error}");

        // The connection survived all of it.
        let answer = b
            .handle
            .request(a_id, Protocol::Offer, b"still here".to_vec())
            .await;
        assert_eq!(
            answer.unwrap(),
            expected_answer(Protocol::Offer, b"still here")
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_to_a_peer_that_shut_down_fails_in_bounded_time() {
    timeout(TEST_TIMEOUT, async {
        let a = start(40, Vec::new()).await;
        let b = start(41, a.handle.listen_addrs()).await;
        let a_id = a.handle.peer_id();
        wait_connected(&b.handle, &[a_id]).await;
        let answer = b
            .handle
            .request(a_id, Protocol::JobResult, b"x".to_vec())
            .await;
        assert_eq!(answer.unwrap(), expected_answer(Protocol::JobResult, b"x"));

        a.handle.shutdown().await;
        assert!(matches!(
            a.handle.connected_peers().await,
            Err(NetError::Closed)
        ));
        // Within the request timeout plus slack, whatever the failure mode
        // (connection closed, dial refused).
        let started = Instant::now();
        let result = timeout(
            REQUEST_TIMEOUT * 2,
            b.handle.request(a_id, Protocol::JobResult, b"y".to_vec()),
        )
        .await
        .expect("the request did not fail in time");
        assert!(
            matches!(result, Err(NetError::Request { peer, .. }) if peer == a_id),
            "{result:?}"
        );
        assert!(started.elapsed() < REQUEST_TIMEOUT * 2);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_forwarded_only_once_accepted_and_a_peer_sending_invalid_messages_is_ignored() {
    timeout(TEST_TIMEOUT, async {
        // X - A - C in a line: X and C may hold one connection each (to A),
        // so whatever C hears from X, A forwarded.
        let mut a = start(70, Vec::new()).await;
        let a_addrs = a.handle.listen_addrs();
        let leaf = |seed: u8| {
            let mut config = NetConfig::new([seed; 32]);
            config.bootstrap = a_addrs.clone();
            config.connections_max = 1;
            start_with(config)
        };
        let x = leaf(71).await;
        let mut c = leaf(72).await;
        let topic = GossipTopic::Transactions;
        let (a_id, x_id, c_id) = (a.handle.peer_id(), x.handle.peer_id(), c.handle.peer_id());
        wait_subscribed(&a.handle, topic, &[x_id, c_id]).await;
        wait_subscribed(&x.handle, topic, &[a_id]).await;
        wait_subscribed(&c.handle, topic, &[a_id]).await;
        assert!(!c.handle.connected_peers().await.unwrap().contains(&x_id));

        publish_when_meshed(&x.handle, topic, b"good 1".to_vec()).await;
        assert_eq!(next(&mut a).await.2, b"good 1");
        assert_eq!(next(&mut c).await, (topic, Some(x_id), b"good 1".to_vec()));

        // A rejects: C never sees it.
        x.handle.publish(topic, b"bad 1".to_vec()).await.unwrap();
        assert_eq!(next(&mut a).await.2, b"bad 1");
        sleep(Duration::from_millis(1_000)).await;
        assert!(
            c.gossip.try_recv().is_err(),
            "a rejected message was forwarded"
        );
        assert_eq!(a.handle.metrics().gossip_rejected, 1);

        // A few more and A stops listening to X altogether.
        for i in 2..6 {
            x.handle
                .publish(topic, format!("bad {i}").into_bytes())
                .await
                .unwrap();
            sleep(Duration::from_millis(100)).await;
        }
        sleep(Duration::from_millis(500)).await;
        while a.gossip.try_recv().is_ok() {}
        assert_eq!(
            a.handle.metrics().gossip_rejected,
            3,
            "heard until graylisted"
        );
        x.handle.publish(topic, b"good 2".to_vec()).await.unwrap();
        sleep(Duration::from_millis(1_500)).await;
        let heard = a.gossip.try_recv();
        assert!(
            heard.is_err(),
            "a graylisted peer was still heard: {heard:?}"
        );
        assert!(c.gossip.try_recv().is_err());
        // C, which sent nothing wrong, is still heard.
        c.handle.publish(topic, b"good 3".to_vec()).await.unwrap();
        assert_eq!(next(&mut a).await.2, b"good 3");
    })
    .await
    .unwrap();
}

/// The next gossip `node` hears, within the formation timeout.
async fn next(node: &mut TestNode) -> Gossip {
    timeout(FORMATION_TIMEOUT, node.gossip.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_refused() {
    timeout(TEST_TIMEOUT, async {
        let mut config = NetConfig::new([55; 32]);
        config.connections_max = 2;
        let a = start_with(config).await;
        let a_addr = a.handle.listen_addrs()[0].clone();
        let mut others = Vec::new();
        let mut refused = 0;
        for seed in 56..60 {
            let other = start(seed, Vec::new()).await;
            if other.handle.dial(a_addr.clone()).await.is_err() {
                refused += 1;
            }
            others.push(other);
        }
        // Settle: a connection the limit refuses is closed right after the
        // handshake, so a dial may report success and then lose it.
        sleep(Duration::from_millis(500)).await;
        let connected = a.handle.connected_peers().await.unwrap();
        assert_eq!(connected.len(), 2, "{connected:?}");
        // The refused side learns it when the connection closes under it.
        let deadline = Instant::now() + FORMATION_TIMEOUT;
        let kept = loop {
            let mut kept = 0;
            for other in &others {
                if other
                    .handle
                    .connected_peers()
                    .await
                    .unwrap()
                    .contains(&a.handle.peer_id())
                {
                    kept += 1;
                }
            }
            if kept == 2 || Instant::now() >= deadline {
                break kept;
            }
            sleep(RETRY_PAUSE).await;
        };
        assert!(a.handle.connected_peers().await.unwrap().len() <= 2);
        assert_eq!(kept, 2, "{refused} dials reported refused");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_connects_and_reports_failure_and_lone_node_has_no_peers() {
    timeout(TEST_TIMEOUT, async {
        let a = start(50, Vec::new()).await;
        let b = start(51, Vec::new()).await;
        assert!(matches!(
            a.handle
                .publish(GossipTopic::Transactions, b"tx".to_vec())
                .await,
            Err(NetError::NoPeers {
                topic: GossipTopic::Transactions
            })
        ));
        assert!(a.handle.connected_peers().await.unwrap().is_empty());

        let b_addr = b.handle.listen_addrs()[0].clone();
        a.handle.dial(b_addr.clone()).await.unwrap();
        assert!(
            a.handle
                .connected_peers()
                .await
                .unwrap()
                .contains(&b.handle.peer_id())
        );
        // Dialling a connected peer again is fine.
        a.handle.dial(b_addr).await.unwrap();

        // A port nobody listens on: B shuts down and its address goes dead.
        let c = start(52, Vec::new()).await;
        let c_addr = c.handle.listen_addrs()[0].clone();
        c.handle.shutdown().await;
        let error = a.handle.dial(c_addr).await.unwrap_err();
        assert!(matches!(error, NetError::Dial { .. }), "{error}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_id_is_the_node_key() {
    timeout(TEST_TIMEOUT, async {
        let seed = [60u8; 32];
        let node = peercloud_types::Keypair::from_seed(&seed).node_id();
        let (handle, _events) = spawn(NetConfig::new(seed)).await.unwrap();
        assert_eq!(handle.peer_id(), peer_id_of(&node));
        assert_eq!(node_id_of(&handle.peer_id()), Some(node));
        for addr in handle.listen_addrs() {
            assert!(
                addr.to_string()
                    .ends_with(&format!("/p2p/{}", handle.peer_id()))
            );
        }
        handle.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_lists_are_checked_and_may_name_the_node_itself() {
    timeout(TEST_TIMEOUT, async {
        let mut config = NetConfig::new([70; 32]);
        config.bootstrap = vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()];
        assert!(matches!(
            spawn(config).await,
            Err(NetError::BootstrapAddress { .. })
        ));
        // A shared bootstrap list may name the node itself (devnets hand every
        // node the same list): that entry is skipped, the others are used.
        let a = start(72, Vec::new()).await;
        let a_id = a.handle.peer_id();
        let own = peer_id_of(&peercloud_types::Keypair::from_seed(&[73; 32]).node_id());
        let mut config = NetConfig::new([73; 32]);
        config.bootstrap = vec![format!("/ip4/127.0.0.1/tcp/1/p2p/{own}").parse().unwrap()];
        config.bootstrap.extend(a.handle.listen_addrs());
        let (b, _events) = spawn(config).await.unwrap();
        wait_connected(&b, &[a_id]).await;
        assert_eq!(b.connected_peers().await.unwrap(), vec![a_id]);

        let mut config = NetConfig::new([71; 32]);
        config.listen = vec!["/ip4/127.0.0.1/udp/0".parse().unwrap()];
        assert!(matches!(spawn(config).await, Err(NetError::Listen { .. })));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_peer_leaves_the_routing_table_and_a_bootstrap_peer_stays() {
    timeout(TEST_TIMEOUT, async {
        let a = start(80, Vec::new()).await;
        let (a_id, a_addrs) = (a.handle.peer_id(), a.handle.listen_addrs());
        let b = start(81, a_addrs).await;
        let c = start(82, Vec::new()).await;
        let c_id = c.handle.peer_id();
        b.handle
            .add_address(c_id, c.handle.listen_addrs()[0].clone())
            .await
            .unwrap();
        let answer = b.handle.request(c_id, Protocol::Chunk, b"x".to_vec()).await;
        assert_eq!(answer.unwrap(), expected_answer(Protocol::Chunk, b"x"));
        let routing = b.handle.routing_peers().await.unwrap();
        assert!(
            routing.contains(&c_id) && routing.contains(&a_id),
            "{routing:?}"
        );

        // C leaves for good; A (B's bootstrap peer) goes down too.
        c.handle.shutdown().await;
        a.handle.shutdown().await;
        let mut attempts = 0;
        while b.handle.routing_peers().await.unwrap().contains(&c_id) {
            attempts += 1;
            assert!(
                attempts <= 10,
                "C is still routed after {attempts} failed requests"
            );
            let result = b.handle.request(c_id, Protocol::Chunk, b"y".to_vec()).await;
            assert!(result.is_err(), "C is gone: {result:?}");
            // A stays, however often it fails: it is how B finds the network again.
            let _ = b.handle.request(a_id, Protocol::Chunk, b"y".to_vec()).await;
        }
        println!("C left the routing table after {attempts} failed requests");
        assert!(b.handle.routing_peers().await.unwrap().contains(&a_id));
        assert_eq!(b.handle.metrics().peers_forgotten, 1);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_past_the_peers_stream_limit_waits_its_turn_and_all_succeed() {
    timeout(TEST_TIMEOUT, async {
        let a = start(90, Vec::new()).await;
        let b = start(91, a.handle.listen_addrs()).await;
        let a_id = a.handle.peer_id();
        wait_connected(&b.handle, &[a_id]).await;
        // Three times what a peer takes at once on one connection, each
        // answered slowly, so they would all be open together.
        let burst = 3 * peercloud_net::STREAMS_PER_CONNECTION_MAX;
        let requests = (0..burst).map(|i| {
            let handle = b.handle.clone();
            async move {
                let data = [SLOW, format!("{i}").as_bytes()].concat();
                let answer = handle.request(a_id, Protocol::Index, data.clone()).await;
                (answer.map_err(|e| e.to_string()), data)
            }
        });
        for (answer, data) in futures::future::join_all(requests).await {
            assert_eq!(answer, Ok(expected_answer(Protocol::Index, &data)));
        }
    })
    .await
    .expect("the burst completes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_go_over_the_bulk_channel_and_everything_else_over_libp2p() {
    timeout(TEST_TIMEOUT, async {
        let a = start(100, Vec::new()).await;
        let b = start(101, a.handle.listen_addrs()).await;
        let a_id = a.handle.peer_id();
        wait_connected(&b.handle, &[a_id]).await;

        // A burst of chunk-sized requests, all answered whole and in the
        // right place, on connections the pool then reuses.
        let chunk_bytes = Protocol::Chunk.request_bytes_max() - 64;
        let requests = (0..24u8).map(|i| {
            let handle = b.handle.clone();
            async move {
                let data = vec![i; chunk_bytes];
                let answer = handle.request(a_id, Protocol::Chunk, data.clone()).await;
                (answer.map_err(|e| e.to_string()), data)
            }
        });
        for (answer, data) in futures::future::join_all(requests).await {
            assert_eq!(answer, Ok(expected_answer(Protocol::Chunk, &data)));
        }
        let answer = b
            .handle
            .request(a_id, Protocol::Offer, b"small".to_vec())
            .await
            .unwrap();
        assert_eq!(answer, expected_answer(Protocol::Offer, b"small"));
        let (sent, served) = (b.handle.metrics(), a.handle.metrics());
        assert_eq!(sent.bulk_requests_sent, 24);
        assert_eq!(sent.bulk_fallbacks, 0);
        assert_eq!(served.bulk_requests_received, 24);
        assert_eq!(served.requests_received, 25, "the offer came over libp2p");

        // A dropped responder or an oversized answer fails the request over
        // the bulk channel too, and the channel keeps serving.
        for data in [REFUSE, ANSWER_TOO_LARGE] {
            let error = b
                .handle
                .request(a_id, Protocol::Chunk, data.to_vec())
                .await
                .unwrap_err();
            assert!(matches!(error, NetError::Request { .. }), "{error}");
        }
        let answer = b
            .handle
            .request(a_id, Protocol::Chunk, b"again".to_vec())
            .await
            .unwrap();
        assert_eq!(answer, expected_answer(Protocol::Chunk, b"again"));
        assert_eq!(b.handle.metrics().bulk_fallbacks, 0);

        // The network layer's own protocol is not the node's to ask on.
        let error = b
            .handle
            .request(a_id, Protocol::BulkOpen, vec![1])
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                NetError::Request {
                    reason: RequestFailure::Unsupported,
                    ..
                }
            ),
            "{error}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_bulk_channel_gets_chunks_over_libp2p() {
    timeout(TEST_TIMEOUT, async {
        let mut config = NetConfig::new([110; 32]);
        config.bulk = false;
        let a = start_with(config).await;
        let b = start(111, a.handle.listen_addrs()).await;
        let a_id = a.handle.peer_id();
        wait_connected(&b.handle, &[a_id]).await;
        for round in 0..3u8 {
            let data = vec![round; 200_000];
            let answer = b
                .handle
                .request(a_id, Protocol::Chunk, data.clone())
                .await
                .unwrap();
            assert_eq!(answer, expected_answer(Protocol::Chunk, &data));
        }
        let (sent, served) = (b.handle.metrics(), a.handle.metrics());
        assert_eq!(sent.bulk_requests_sent, 0);
        assert_eq!(sent.bulk_fallbacks, 3);
        assert_eq!(served.bulk_requests_received, 0);
        assert_eq!(served.requests_received, 3);

        // The other way, A asks over libp2p without trying a channel.
        let answer = a
            .handle
            .request(b.handle.peer_id(), Protocol::Chunk, b"back".to_vec())
            .await
            .unwrap();
        assert_eq!(answer, expected_answer(Protocol::Chunk, b"back"));
        assert_eq!(a.handle.metrics().bulk_fallbacks, 0);
        assert_eq!(b.handle.metrics().bulk_requests_received, 0);
    })
    .await
    .unwrap();
}
