//! The client against a tiny server speaking the API's JSON: error mapping,
//! tokens, node directories, signed submits and the store over HTTP.

use std::sync::atomic::Ordering;

use peercloud_ledger::{Tx, TxKind};
use peercloud_store::{
    ChunkInventory, ChunkStore, PutOptions, StoreError, VerifiedChunk, get_object, put_object,
};
use peercloud_types::{Amount, ContentId, Hash32, JobId, Keypair, Signed};

use super::test_server::{self, NEXT_NONCE, TOKEN, TX_HEIGHT};
use super::*;

fn client(server: &test_server::TestServer) -> NodeClient {
    NodeClient::new(&server.base, TOKEN.to_owned()).unwrap()
}

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn connection_refused_is_unreachable_naming_the_address() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let client = NodeClient::new(&base, String::new()).unwrap();
    let err = client.status().unwrap_err();
    assert!(
        matches!(&err, ClientError::Unreachable { url, .. } if *url == base),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("node not reachable at {base}")),
        "{text}"
    );
    assert!(text.contains("is `peercloud node` running?"), "{text}");
}

#[test]
fn an_api_error_body_becomes_api_with_its_code_and_message() {
    let server = test_server::start();
    let err = client(&server)
        .job(
            &JobId(Hash32::of(b"nothing")),
            peercloud_api::WaitQuery::NOW,
        )
        .unwrap_err();
    match &err {
        ClientError::Api {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 404);
            assert_eq!(*code, ErrorCode::NotFound);
            assert!(message.starts_with("no job "), "{message}");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(err.is_not_found());
    assert!(err.to_string().contains("no job "), "{err}");
}

#[test]
fn the_token_is_sent_and_a_wrong_one_is_refused() {
    let server = test_server::start();
    let status = client(&server).status().unwrap();
    assert_eq!(status.height, Some(TX_HEIGHT));

    let wrong = NodeClient::new(&server.base, "wrong".to_owned()).unwrap();
    let err = wrong.status().unwrap_err();
    assert_eq!(err.api_code(), Some(ErrorCode::Unauthorized), "{err:?}");
    let none = NodeClient::new(&server.base, String::new()).unwrap();
    assert_eq!(
        none.status().unwrap_err().api_code(),
        Some(ErrorCode::Unauthorized)
    );
}

#[test]
fn an_answer_without_an_api_error_body_keeps_its_status() {
    let server = test_server::start();
    // No such route on this server: axum answers 404 with an empty body.
    let err = client(&server)
        .offers(
            &JobId(Hash32::of(b"x")),
            &peercloud_api::OffersRequest {
                spec: peercloud_types::JobSpec::from_json(
                    r#"{"version": 1, "module": "m.wasm", "max_price": "1"}"#,
                )
                .unwrap(),
                window_ms: 10,
                enough: 0,
            },
        )
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.api_code(), Some(ErrorCode::NotFound));
}

#[test]
fn an_answer_that_is_not_the_expected_json_is_a_decode_error() {
    let server = test_server::start();
    let err = client(&server).ledger().unwrap_err();
    assert!(
        matches!(&err, ClientError::Decode { url, .. } if url.ends_with("/v1/ledger")),
        "{err:?}"
    );
}

#[test]
fn submit_signed_uses_the_next_nonce_and_a_stale_nonce_is_refused() {
    let server = test_server::start();
    let client = client(&server);
    let key = Keypair::from_seed(&[7; 32]);
    let kind = TxKind::Transfer {
        to: Keypair::from_seed(&[8; 32]).account_id(),
        amount: "1.5".parse().unwrap(),
    };
    let receipt = submit_signed(&client, &key, kind.clone(), true).unwrap();
    assert_eq!(receipt.height, Some(TX_HEIGHT));
    let expected = Signed::new(
        Tx {
            chain: test_server::CHAIN,
            nonce: NEXT_NONCE,
            fee: test_server::FEE,
            kind: kind.clone(),
        },
        &key,
    );
    assert_eq!(receipt.hash, expected.hash());

    let stale = Signed::new(
        Tx {
            chain: test_server::CHAIN,
            nonce: NEXT_NONCE - 1,
            fee: Amount::ZERO,
            kind,
        },
        &key,
    );
    let err = client.submit(&stale, false).unwrap_err();
    assert_eq!(err.api_code(), Some(ErrorCode::TxRefused), "{err:?}");
    assert!(err.to_string().contains("is not the next nonce"), "{err}");
}

#[test]
fn a_node_dir_gives_the_address_and_token() {
    let server = test_server::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = NodeClient::from_node_dir(dir.path()).unwrap_err();
    assert!(
        matches!(missing, ClientError::NoApiAddress { .. }),
        "{missing:?}"
    );
    assert!(missing.to_string().contains("api.addr"), "{missing}");

    // A bare host:port with a newline, as a shell `echo` would write it.
    let host_port = server.base.trim_start_matches("http://");
    std::fs::write(dir.path().join(API_ADDR_FILE), format!("{host_port}\n")).unwrap();
    let no_token = NodeClient::from_node_dir(dir.path()).unwrap_err();
    assert!(no_token.to_string().contains("api.token"), "{no_token}");

    std::fs::write(dir.path().join(TOKEN_FILE), format!("{TOKEN}\n")).unwrap();
    let client = NodeClient::from_node_dir(dir.path()).unwrap();
    assert_eq!(client.base(), server.base);
    assert!(client.status().is_ok());
}

#[test]
fn bad_addresses_are_refused_naming_what_is_wrong() {
    for (text, why) in [
        ("", "empty"),
        ("https://127.0.0.1:8080", "https"),
        ("ftp://127.0.0.1:8080", "not http"),
        ("http://127.0.0.1:8080/?x=1", "query"),
    ] {
        let err = NodeClient::new(text, String::new()).unwrap_err();
        assert!(matches!(err, ClientError::BadUrl { .. }), "{text}: {err:?}");
        assert!(err.to_string().contains(why), "{text}: {err}");
    }
    let ok = NodeClient::new("127.0.0.1:8080/", String::new()).unwrap();
    assert_eq!(ok.base(), "http://127.0.0.1:8080");
}

#[test]
fn objects_round_trip_through_the_api_store() {
    let server = test_server::start();
    let store = ApiStore::new(client(&server));
    let owner = Keypair::from_seed(&[3; 32]);
    // Four 1 MiB chunks and a partial one, plus the manifest.
    let content: Vec<u8> = (0..(4 << 20) + 12_345u32)
        .map(|i| (i % 251) as u8)
        .collect();
    let receipt = put_object(
        &store,
        content.as_slice(),
        &owner.public(),
        &PutOptions::default(),
    )
    .unwrap();
    assert_eq!(receipt.manifest.chunks.len(), 5);
    assert_eq!(server.shared.chunks.usage().unwrap().chunks, 6);
    assert!(store.has(&receipt.manifest_cid).unwrap());

    let mut back = Vec::new();
    get_object(
        &store,
        &receipt.manifest_cid,
        &owner.x25519_secret(),
        &mut back,
    )
    .unwrap();
    assert!(back == content, "the object came back different");
}

#[test]
fn put_many_overlaps_requests_up_to_the_bound() {
    let server = test_server::start();
    let store = ApiStore::new(client(&server));
    // Three requests' worth of chunks per worker the bound allows.
    let chunks_max = peercloud_api::CHUNK_BATCH_CHUNKS_MAX as u32;
    let bodies: Vec<Vec<u8>> = (0..3 * PUT_CONCURRENCY_MAX as u32 * chunks_max)
        .map(|i| i.to_le_bytes().repeat(4))
        .collect();
    let chunks: Vec<VerifiedChunk<'_>> = bodies.iter().map(|b| VerifiedChunk::new(b)).collect();
    store.put_many(&chunks).unwrap();
    for chunk in &chunks {
        assert!(server.shared.chunks.has(chunk.cid()).unwrap());
    }
    let most = server.shared.in_flight_max.load(Ordering::SeqCst);
    assert!(most <= PUT_CONCURRENCY_MAX, "{most} puts at once");
    assert!(most >= 2, "puts never overlapped");
}

#[test]
fn a_tampered_or_missing_chunk_is_an_error_never_data() {
    let server = test_server::start();
    let store = ApiStore::new(client(&server));
    let bytes = b"sealed chunk bytes".to_vec();
    let cid = ContentId::of(&bytes);
    store.put(&cid, &bytes).unwrap();
    assert_eq!(store.get(&cid).unwrap(), bytes);

    server.shared.tamper.store(true, Ordering::SeqCst);
    let mut buf = Vec::new();
    let err = store.get_into(&cid, &mut buf).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { cid: c, .. } if c == cid),
        "{err:?}"
    );
    assert!(buf.is_empty(), "tampered bytes were left in the buffer");

    let absent = ContentId::of(b"never stored");
    let err = store.get(&absent).unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { cid } if cid == absent),
        "{err:?}"
    );
    assert!(!store.has(&absent).unwrap());
}

#[test]
fn an_unreachable_node_is_named_in_store_errors() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let store = ApiStore::new(NodeClient::new(&base, String::new()).unwrap());
    let err = store.get(&ContentId::of(b"x")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&base) && text.contains("not reachable"),
        "{text}"
    );
}

#[test]
fn the_api_store_keeps_the_chunk_store_contract() {
    let server = test_server::start();
    let node = client(&server);
    peercloud_store::testing::contract_suite(|| ApiStore::new(node.clone()));
}
