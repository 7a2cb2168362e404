//! `peercloud_types::encoding::decode` for every record that crosses the
//! network or is read back from disk.
//!
//! Properties:
//! - whatever decodes re-encodes to exactly the input bytes, and decodes again
//!   to an equal value (the encoding is canonical: one value, one byte form);
//! - the parts of a decoded record (a block's header and transactions, an
//!   award's offers, a genesis's block) round-trip on their own too;
//! - `Block` and `BlockHeader` share `Kind::Block`: no input is both;
//! - `Manifest::decode` (decode + validate) accepts only what `decode` accepts,
//!   and the validators and signature checks run on decoded values without
//!   panicking;
//! - a decoded job spec (alone or in a capacity request) that validates has a
//!   JSON form `JobSpec::from_json` reads back as an equal spec.
//!
//! Each `decode::<T>` checks the kind byte first, so trying every type costs
//! little: only the type(s) of the input's kind parse the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peercloud_fuzz::{canonical, check_peer_spec, same_after_round_trip};
use peercloud_ledger::records::Meta;
use peercloud_ledger::{
    Account, Block, BlockHeader, JobRecord, LeaseRecord, NodeRecord, Tx, TxKind, tx_root,
    verify_tx_signatures,
};
use peercloud_node::genesis::Genesis;
use peercloud_node::wire::CapacityRequest;
use peercloud_store::{ChunkMeta, Manifest};
use peercloud_types::{JobSpec, LeaseOffer, LeaseProbe, LeaseRequest, Offer, Signed, SpaceCommand};

fn check_signed_tx(tx: &Signed<Tx>) {
    same_after_round_trip(tx);
    same_after_round_trip(&tx.body);
    let _ = tx.verify();
    let _ = tx.hash();
    if let TxKind::AwardJob { offers, .. } = &tx.body.kind {
        for offer in offers {
            same_after_round_trip(offer);
            let _ = offer.verify();
        }
    }
}

fn check_block(block: &Block) {
    same_after_round_trip(&block.header);
    same_after_round_trip(&block.header.body);
    let _ = block.header.verify();
    let _ = block.hash();
    let _ = block.context();
    let _ = tx_root(&block.txs);
    for tx in &block.txs {
        check_signed_tx(tx);
    }
    let bad = verify_tx_signatures(&block.txs);
    assert!(
        bad.windows(2).all(|w| w[0] < w[1]) && bad.iter().all(|&i| i < block.txs.len()),
        "verify_tx_signatures named indices out of order or range: {bad:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    // Network-facing records.
    if let Some(offer) = canonical::<Signed<Offer>>(data) {
        same_after_round_trip(&offer.body);
        let _ = offer.verify();
    }
    canonical::<Offer>(data);
    if let Some(repair) = canonical::<Signed<peercloud_ledger::RepairReceipt>>(data) {
        same_after_round_trip(&repair.body);
        let _ = repair.verify();
    }
    if let Some(tx) = canonical::<Signed<Tx>>(data) {
        check_signed_tx(&tx);
    }
    canonical::<Tx>(data);
    // Leases: the request (hashed into every bid), sealed bids, probes and
    // a user's commands for a space.
    if let Some(request) = canonical::<LeaseRequest>(data) {
        let _ = request.digest();
    }
    if let Some(offer) = canonical::<Signed<LeaseOffer>>(data) {
        same_after_round_trip(&offer.body);
        let _ = offer.verify();
    }
    if let Some(probe) = canonical::<Signed<LeaseProbe>>(data) {
        let _ = probe.verify();
    }
    if let Some(command) = canonical::<Signed<SpaceCommand>>(data) {
        same_after_round_trip(&command.body);
        let _ = command.verify();
    }
    let as_block = canonical::<Block>(data);
    if let Some(block) = &as_block {
        check_block(block);
    }
    let as_header = canonical::<BlockHeader>(data);
    assert!(
        as_block.is_none() || as_header.is_none(),
        "one input decodes both as a Block and as a BlockHeader (they share a kind byte)"
    );
    if let Some(header) = canonical::<Signed<BlockHeader>>(data) {
        let _ = header.verify();
    }
    let manifest = canonical::<Manifest>(data);
    match Manifest::decode(data) {
        Ok(validated) => assert_eq!(
            Some(&validated),
            manifest.as_ref(),
            "Manifest::decode accepted what decode::<Manifest> did not, or read it differently"
        ),
        Err(_) => {
            if let Some(m) = &manifest {
                let _ = m.cid();
            }
        }
    }
    if let Some(spec) = canonical::<JobSpec>(data) {
        // PostJob commits to this form's digest, and the wire carries it.
        check_peer_spec(&spec);
    }
    if let Some(request) = canonical::<CapacityRequest>(data) {
        check_peer_spec(&request.spec);
    }
    if let Some(genesis) = canonical::<Genesis>(data) {
        let _ = genesis.params.validate();
        let _ = genesis.params.digest();
        check_block(&genesis.block);
    }

    // Records read back from disk (chunk store metadata, ledger state entries;
    // the state entries share `Kind::StateEntry`, their table tells them apart).
    canonical::<ChunkMeta>(data);
    canonical::<Account>(data);
    canonical::<NodeRecord>(data);
    canonical::<JobRecord>(data);
    canonical::<Meta>(data);
    canonical::<LeaseRecord>(data);
});
