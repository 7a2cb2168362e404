//! Tests of the audit primitive: honest proofs at every length, each way a
//! proof can fail named, challenges as a function of their inputs, the
//! encoding and its bound, and a property test over lengths and seeds.

use peercloud_types::encoding::{DecodeError, decode, encode};
use proptest::prelude::*;

use super::*;
use crate::{CHUNK_BYTES_MAX, TAG_BYTES};

/// `len` pseudo-random bytes (sealed chunks look random).
fn chunk(len: usize, tag: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&[tag])
        .finalize_xof()
        .fill(&mut out);
    out
}

fn seed(n: u64) -> Hash32 {
    Hash32::of(&n.to_le_bytes())
}

/// Lengths at the edges of leaves, groups and the largest chunk.
const LENGTHS: [usize; 9] = [
    1,
    1000,
    1024,
    1025,
    4096,
    16 << 10,
    (16 << 10) + 1,
    (1 << 20) + TAG_BYTES,
    CHUNK_BYTES_MAX as usize + TAG_BYTES,
];

#[test]
fn an_honest_proof_verifies_at_every_length() {
    for (i, &len) in LENGTHS.iter().enumerate() {
        let bytes = chunk(len, i as u8);
        let cid = ContentId::of(&bytes);
        for n in 0..3 {
            let challenge = Challenge::derive(&seed(n), &cid, len as u64);
            let proof = prove(&bytes, &challenge).unwrap();
            assert_eq!(
                verify(&cid, len as u64, &challenge, &proof),
                Ok(()),
                "{len}"
            );
            assert!(proof.encoded_bytes() <= AUDIT_PROOF_BYTES_MAX, "{len}");
        }
    }
}

#[test]
fn the_empty_chunk_proves_its_one_empty_leaf() {
    let cid = ContentId::of(b"");
    let challenge = Challenge::derive(&seed(0), &cid, 0);
    assert_eq!(challenge.leaves(), &[0]);
    let proof = prove(b"", &challenge).unwrap();
    assert_eq!(verify(&cid, 0, &challenge, &proof), Ok(()));
    let other = ContentId::of(b"x");
    assert_eq!(
        verify(&other, 0, &challenge, &proof),
        Err(AuditError::WrongRoot { cid: other })
    );
}

#[test]
fn a_flipped_byte_fails_as_a_wrong_root_inside_or_outside_the_leaves() {
    let len = (1 << 20) + TAG_BYTES;
    let bytes = chunk(len, 1);
    let cid = ContentId::of(&bytes);
    let challenge = Challenge::derive(&seed(7), &cid, len as u64);
    let inside = challenge.leaves()[1] * AUDIT_LEAF_BYTES + 17;
    let outside = (0..leaves_of(len as u64))
        .find(|p| !challenge.leaves().contains(p))
        .unwrap()
        * AUDIT_LEAF_BYTES;
    for at in [inside, outside] {
        let mut bad = bytes.clone();
        bad[at as usize] ^= 0x40;
        let proof = prove(&bad, &challenge).unwrap();
        assert_eq!(
            verify(&cid, len as u64, &challenge, &proof),
            Err(AuditError::WrongRoot { cid }),
            "byte {at}"
        );
    }
}

#[test]
fn altered_leaf_bytes_or_hashes_fail_where_they_were_altered() {
    let len = 300_000;
    let bytes = chunk(len, 2);
    let cid = ContentId::of(&bytes);
    let challenge = Challenge::derive(&seed(1), &cid, len as u64);
    let proof = prove(&bytes, &challenge).unwrap();
    // The last bytes are the last leaf's data; the first 64 the root pair.
    let mut tail = proof.clone();
    *tail.encoded.last_mut().unwrap() ^= 1;
    let last = *challenge.leaves().last().unwrap();
    assert_eq!(
        verify(&cid, len as u64, &challenge, &tail),
        Err(AuditError::WrongHash {
            cid,
            part: ProofPart::Leaf { first_leaf: last }
        })
    );
    let mut head = proof.clone();
    head.encoded[3] ^= 1;
    assert_eq!(
        verify(&cid, len as u64, &challenge, &head),
        Err(AuditError::WrongRoot { cid })
    );
}

#[test]
fn a_proof_of_other_leaves_fails_as_a_wrong_range() {
    let len = 1 << 20;
    let bytes = chunk(len, 3);
    let cid = ContentId::of(&bytes);
    let asked = Challenge::derive(&seed(1), &cid, len as u64);
    let other = Challenge::derive(&seed(2), &cid, len as u64);
    assert_ne!(asked, other);
    let proof = prove(&bytes, &other).unwrap();
    assert_eq!(
        verify(&cid, len as u64, &asked, &proof),
        Err(AuditError::WrongRange {
            cid,
            asked: asked.leaves().to_vec(),
            proved: other.leaves().to_vec(),
        })
    );
    // The same proof claiming the asked leaves: its hashes lead elsewhere.
    let mut lying = proof;
    lying.leaves = asked.leaves().to_vec();
    let err = verify(&cid, len as u64, &asked, &lying).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::WrongHash { .. } | AuditError::Truncated { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_wrong_chunk_or_length_is_named() {
    let len = 50_000;
    let bytes = chunk(len, 4);
    let cid = ContentId::of(&bytes);
    let challenge = Challenge::derive(&seed(0), &cid, len as u64);
    let proof = prove(&bytes, &challenge).unwrap();
    let other = ContentId::of(b"another chunk");
    assert_eq!(
        verify(&other, len as u64, &challenge, &proof),
        Err(AuditError::WrongRoot { cid: other })
    );
    assert_eq!(
        verify(&cid, len as u64 + 1, &challenge, &proof),
        Err(AuditError::WrongLength {
            cid,
            expected: len as u64 + 1,
            proved: len as u64,
        })
    );
    // A prover whose copy lost its last byte.
    let short = prove(&bytes[..len - 1], &challenge).unwrap();
    assert!(matches!(
        verify(&cid, len as u64, &challenge, &short),
        Err(AuditError::WrongLength { proved, .. }) if proved == len as u64 - 1
    ));
}

#[test]
fn truncated_padded_oversized_or_garbage_proofs_fail_cleanly() {
    let len = 200_000;
    let bytes = chunk(len, 5);
    let cid = ContentId::of(&bytes);
    let challenge = Challenge::derive(&seed(3), &cid, len as u64);
    let proof = prove(&bytes, &challenge).unwrap();
    let full = proof.encoded.len();
    for cut in [0, 1, 63, 64, 65, 200, full - 1024, full - 1] {
        let mut short = proof.clone();
        short.encoded.truncate(cut);
        assert!(
            matches!(
                verify(&cid, len as u64, &challenge, &short),
                Err(AuditError::Truncated { .. })
            ),
            "cut at {cut} of {full}"
        );
    }
    let mut padded = proof.clone();
    padded.encoded.extend_from_slice(&[0; 5]);
    assert_eq!(
        verify(&cid, len as u64, &challenge, &padded),
        Err(AuditError::TrailingBytes { cid, extra: 5 })
    );
    let mut huge = proof.clone();
    huge.encoded.resize(AUDIT_PROOF_BYTES_MAX + 1, 0);
    assert_eq!(
        verify(&cid, len as u64, &challenge, &huge),
        Err(AuditError::TooLarge {
            cid,
            bytes: AUDIT_PROOF_BYTES_MAX + 1
        })
    );
    let mut garbage = proof.clone();
    garbage.encoded = chunk(full, 99);
    assert_eq!(
        verify(&cid, len as u64, &challenge, &garbage),
        Err(AuditError::WrongRoot { cid })
    );
    // Garbage as an encoded record never decodes into a proof that passes.
    for junk in [vec![], vec![Kind::AuditProof as u8], chunk(64, 7)] {
        if let Ok(p) = decode::<AuditProof>(&junk) {
            assert!(verify(&cid, len as u64, &challenge, &p).is_err());
        }
    }
}

#[test]
fn bad_challenges_are_refused_by_both_sides() {
    let bytes = chunk(10_000, 6);
    let cid = ContentId::of(&bytes);
    let len = bytes.len() as u64;
    let honest = prove(&bytes, &Challenge::derive(&seed(0), &cid, len)).unwrap();
    let cases = [
        (vec![], AuditError::ChallengeSize { leaves: 0 }),
        (vec![0, 1, 2, 3, 4], AuditError::ChallengeSize { leaves: 5 }),
        (
            vec![3, 1],
            AuditError::ChallengeOrder { leaves: vec![3, 1] },
        ),
        (
            vec![2, 2],
            AuditError::ChallengeOrder { leaves: vec![2, 2] },
        ),
        (
            vec![1, 10],
            AuditError::ChallengeOutOfRange {
                leaf: 10,
                len,
                leaves: 10,
            },
        ),
    ];
    for (leaves, expected) in cases {
        let challenge = Challenge { leaves };
        assert_eq!(prove(&bytes, &challenge), Err(expected.clone()));
        assert_eq!(verify(&cid, len, &challenge, &honest), Err(expected));
    }
}

#[test]
fn challenges_are_a_function_of_seed_cid_and_length() {
    let cid = ContentId::of(b"chunk");
    let len = 1 << 20;
    let first = Challenge::derive(&seed(1), &cid, len);
    assert_eq!(first, Challenge::derive(&seed(1), &cid, len));
    assert_eq!(first.leaves().len(), AUDIT_LEAVES);
    assert_eq!(first.check(len), Ok(()));
    let by_seed: std::collections::HashSet<Challenge> = (0..64)
        .map(|n| Challenge::derive(&seed(n), &cid, len))
        .collect();
    assert!(by_seed.len() >= 63, "seeds pick other leaves");
    assert_ne!(
        first,
        Challenge::derive(&seed(1), &ContentId::of(b"chunk 2"), len)
    );
    assert_ne!(first, Challenge::derive(&seed(1), &cid, len - 1));
    // Small chunks: every leaf, once.
    for (len, leaves) in [
        (1, vec![0]),
        (3000, vec![0, 1, 2]),
        (4096, vec![0, 1, 2, 3]),
    ] {
        assert_eq!(Challenge::derive(&seed(5), &cid, len).leaves(), leaves);
    }
    // Every leaf of a 5-leaf chunk gets drawn under some seed.
    let drawn: BTreeSet<u64> = (0..64)
        .flat_map(|n| Challenge::derive(&seed(n), &cid, 5 * 1024).leaves)
        .collect();
    assert_eq!(drawn, (0..5).collect());
}

#[test]
fn the_proof_encoding_round_trips_within_its_bound() {
    // The largest chunk, leaves spread so their paths share the fewest pairs.
    let len = CHUNK_BYTES_MAX as usize + TAG_BYTES;
    let bytes = chunk(len, 8);
    let cid = ContentId::of(&bytes);
    let last = leaves_of(len as u64) - 1;
    let spread = Challenge {
        leaves: vec![0, last / 3, 2 * last / 3, last],
    };
    let proof = prove(&bytes, &spread).unwrap();
    assert_eq!(verify(&cid, len as u64, &spread, &proof), Ok(()));
    assert!(
        proof.encoded_bytes() <= 7_616,
        "{} bytes",
        proof.encoded_bytes()
    );
    let wire = encode(&proof);
    assert!(wire.len() <= AUDIT_PROOF_BYTES_MAX + 64, "{}", wire.len());
    assert_eq!(&wire[..2], &[Kind::AuditProof as u8, AUDIT_PROOF_VERSION]);
    assert_eq!(decode::<AuditProof>(&wire).unwrap(), proof);
    let mut other = wire.clone();
    other[0] = Kind::ChunkMeta as u8;
    assert!(matches!(
        decode::<AuditProof>(&other),
        Err(DecodeError::WrongKind { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_length_and_seed_proves_and_a_flip_in_a_leaf_fails(
        len in 1usize..=1_153_434,
        seed_bytes: [u8; 32],
        which: prop::sample::Index,
        offset in 0u64..AUDIT_LEAF_BYTES,
        flip in 1u8..,
    ) {
        let bytes = chunk(len, (len % 251) as u8);
        let cid = ContentId::of(&bytes);
        let challenge = Challenge::derive(&Hash32(seed_bytes), &cid, len as u64);
        prop_assert_eq!(challenge.check(len as u64), Ok(()));
        let proof = prove(&bytes, &challenge).unwrap();
        prop_assert_eq!(verify(&cid, len as u64, &challenge, &proof), Ok(()));
        prop_assert!(proof.encoded_bytes() <= AUDIT_PROOF_BYTES_MAX);
        prop_assert_eq!(decode::<AuditProof>(&encode(&proof)).unwrap(), proof);

        let leaf = *which.get(challenge.leaves());
        let at = (leaf * AUDIT_LEAF_BYTES + offset).min(len as u64 - 1) as usize;
        let mut bad = bytes;
        bad[at] ^= flip;
        let forged = prove(&bad, &challenge).unwrap();
        prop_assert_eq!(
            verify(&cid, len as u64, &challenge, &forged),
            Err(AuditError::WrongRoot { cid })
        );
    }
}
