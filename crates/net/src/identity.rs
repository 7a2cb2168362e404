//! One key, two names: a node's [`NodeId`] and its libp2p [`PeerId`] are the
//! same ed25519 public key.
//!
//! libp2p names an ed25519 peer by the *identity* multihash of the protobuf
//! encoding of its public key (36 bytes, short enough to be inlined rather than
//! hashed), so both directions are exact and need no lookup table.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey as LibpPublicKey};
use peercloud_types::{NodeId, PublicKey};

/// Multihash code of the identity "hash" (the digest is the input itself).
const MULTIHASH_IDENTITY_CODE: u64 = 0x00;
/// The protobuf encoding of an ed25519 libp2p public key:
/// field 1 (key type) = 1 (Ed25519), field 2 (data) = 32 bytes.
const ED25519_PROTOBUF_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];

/// The libp2p key pair for a node's 32-byte ed25519 secret seed (the same
/// derivation as `peercloud_types::Keypair::from_seed`).
pub(crate) fn keypair_of(secret: &[u8; 32]) -> Keypair {
    let mut seed = *secret;
    // ed25519_from_bytes takes any 32 bytes as a seed (and zeroises our copy);
    // it fails only on a wrong length, which the array type rules out.
    #[allow(clippy::expect_used)]
    Keypair::ed25519_from_bytes(&mut seed).expect("any 32 bytes are an ed25519 seed")
}

/// The libp2p peer id of a node: the identity multihash of its public key.
///
/// Infallible: built from the key bytes as they are, so even bytes that are not
/// a valid curve point get a (never reachable) peer id.
pub fn peer_id_of(node: &NodeId) -> PeerId {
    let key = &node.key().0;
    // multihash = varint(code) varint(length) digest; both varints are one byte.
    let mut bytes = Vec::with_capacity(2 + ED25519_PROTOBUF_PREFIX.len() + key.len());
    bytes.push(MULTIHASH_IDENTITY_CODE as u8);
    bytes.push((ED25519_PROTOBUF_PREFIX.len() + key.len()) as u8);
    bytes.extend_from_slice(&ED25519_PROTOBUF_PREFIX);
    bytes.extend_from_slice(key);
    // A 36-byte identity multihash is always a valid (inline) peer id.
    #[allow(clippy::expect_used)]
    PeerId::from_bytes(&bytes).expect("an inline ed25519 identity multihash is a peer id")
}

/// The node behind a peer id, if the peer id inlines an ed25519 key (every
/// Peercloud node's does; RSA or hashed peer ids give `None`).
pub fn node_id_of(peer: &PeerId) -> Option<NodeId> {
    let multihash = peer.as_ref();
    if multihash.code() != MULTIHASH_IDENTITY_CODE {
        return None;
    }
    let key = LibpPublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed25519 = key.try_into_ed25519().ok()?;
    Some(NodeId(PublicKey(ed25519.to_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn peer_id_matches_libp2p_and_round_trips(seed in any::<[u8; 32]>()) {
            let node = peercloud_types::Keypair::from_seed(&seed).node_id();
            let from_libp2p = keypair_of(&seed).public().to_peer_id();
            prop_assert_eq!(peer_id_of(&node), from_libp2p);
            prop_assert_eq!(node_id_of(&from_libp2p), Some(node));
        }
    }

    #[test]
    fn foreign_peer_ids_have_no_node() {
        // A sha2-256 multihash peer id (as RSA keys get) inlines no key.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[9; 32]);
        let hashed = PeerId::from_bytes(&bytes).unwrap();
        assert_eq!(node_id_of(&hashed), None);
    }
}
