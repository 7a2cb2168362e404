//! `peercloud_node::wire::Message::from_bytes`: the payload of every gossip
//! topic and request-response protocol, straight from a peer.
//!
//! Properties:
//! - whatever `from_bytes` accepts, `to_bytes` gives back byte for byte, and
//!   those bytes decode to an equal message;
//! - the signed records and blocks a message carries round-trip on their own
//!   (they are re-encoded and hashed on their way into the ledger);
//! - the checks a node runs next on a message's contents (signature checks,
//!   the tx root, validating and hashing the job spec) do not panic on decoded
//!   values;
//! - the job spec a capacity request or a dispatch carries (its canonical
//!   encoding since wire version 2) round-trips on its own, and when it
//!   validates, its JSON parses back to an equal spec (see `check_peer_spec`);
//! - an error's code renders.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peercloud_fuzz::{check_peer_spec, same_after_round_trip, verbose};
use peercloud_ledger::{Block, TxKind, tx_root, verify_tx_signatures};
use peercloud_node::wire::Message;
use peercloud_types::Signed;

fn check_tx(tx: &Signed<peercloud_ledger::Tx>) {
    same_after_round_trip(tx);
    let _ = tx.verify();
    if let TxKind::AwardJob { offers, .. } = &tx.body.kind {
        for offer in offers {
            same_after_round_trip(offer);
        }
    }
}

fn check_block(block: &Block) {
    same_after_round_trip(block);
    same_after_round_trip(&block.header);
    let _ = block.header.verify();
    let _ = tx_root(&block.txs);
    for tx in &block.txs {
        check_tx(tx);
    }
    let _ = verify_tx_signatures(&block.txs);
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::from_bytes(data) else {
        return;
    };
    if verbose() {
        eprintln!("accepted: {message:?}");
    }
    let again = message.to_bytes();
    assert!(
        again == data,
        "Message::from_bytes accepted a non-canonical form\n input: {data:02x?}\n canonical: {again:02x?}"
    );
    let back = Message::from_bytes(&again).expect("to_bytes output must decode");
    assert_eq!(back, message, "message changed across to_bytes/from_bytes");

    match &message {
        Message::Tx(tx) => check_tx(tx),
        Message::Block(block) => check_block(block),
        Message::Blocks(blocks) => blocks.iter().for_each(check_block),
        Message::CapacityRequest(request) => {
            same_after_round_trip(request);
            check_peer_spec(&request.spec);
        }
        Message::Offer(offer) => {
            same_after_round_trip(offer);
            let _ = offer.verify();
        }
        Message::Dispatch(dispatch) => {
            check_peer_spec(&dispatch.spec);
            let _ = dispatch.module.cid.to_string();
        }
        Message::ChunkPut { cid, bytes, .. } => {
            let _ = cid.matches(bytes);
        }
        Message::IndexPut {
            entries,
            usages,
            receipts,
            repairs,
            inline,
        } => {
            // What a replica runs on every entry before any ledger lookup.
            for entry in entries {
                let _ = peercloud_ledger::object_entry::check_key(&entry.body.key);
                let _ = entry.verify();
            }
            usages.iter().for_each(|u| {
                let _ = u.verify();
            });
            receipts.iter().for_each(|r| {
                let _ = r.verify();
            });
            repairs.iter().for_each(|r| {
                let _ = r.verify();
            });
            // An inline object's manifest is hashed and decoded before its
            // chunks are compared with what it lists.
            for object in inline {
                let _ = object.manifest();
                if let Some(first) = object.chunks.first() {
                    let _ = peercloud_store::Manifest::decode(first);
                }
            }
        }
        Message::RepairPut {
            cid,
            bytes,
            previous,
            ..
        } => {
            let _ = cid.matches(bytes);
            if let Some(previous) = previous {
                let _ = previous.verify();
            }
        }
        Message::RepairAck(receipt) => {
            same_after_round_trip(&receipt.body);
            let _ = receipt.verify();
        }
        Message::Error { code, .. } => {
            let _ = code.http_status();
            let _ = code.to_string();
        }
        _ => {}
    }
});
