//! The manifest's tests: round trips, bounds, erasure groups, access.

use super::*;
use proptest::prelude::*;

fn arb_redundancy() -> impl Strategy<Value = Redundancy> {
    prop_oneof![
        (1..=REPLICAS_MAX).prop_map(Redundancy::Replicas),
        (1u8..=16, 1u8..=8).prop_map(|(data, parity)| Redundancy::Erasure { data, parity }),
    ]
}

prop_compose! {
    fn arb_manifest()(
        sizes in proptest::collection::vec(1..=CHUNK_BYTES_MAX, 0..40),
        seed in any::<u64>(),
        redundancy in arb_redundancy(),
        wrapped_key in proptest::collection::vec(any::<u8>(), SEALED_KEY_BYTES),
        sealed_info in proptest::collection::vec(any::<u8>(), TAG_BYTES..200),
        public in any::<bool>(),
        name in proptest::option::of("[a-z/.]{0,40}"),
    ) -> Manifest {
        let access = if public {
            Access::Public {
                info: ObjectInfo {
                    plaintext_hash: Hash32::of(&seed.to_le_bytes()),
                    content_type: Some("text/html".into()),
                    name,
                },
            }
        } else {
            Access::Sealed { wrapped_key, sealed_info }
        };
        let chunks = (0..sizes.len())
            .map(|i| ContentId::of(&[seed.to_le_bytes(), (i as u64).to_le_bytes()].concat()))
            .collect();
        let total_bytes = sizes.iter().map(|&s| u64::from(s)).sum();
        let mut manifest = Manifest {
            chunks,
            chunk_sizes: sizes,
            parity_chunks: Vec::new(),
            total_bytes,
            redundancy,
            access,
        };
        let parity = manifest.group_count() * redundancy.parity_per_group();
        manifest.parity_chunks = (0..parity)
            .map(|i| ContentId::of(&[seed.to_be_bytes(), (i as u64).to_be_bytes()].concat()))
            .collect();
        manifest
    }
}

proptest! {
    #[test]
    fn manifests_round_trip(manifest in arb_manifest()) {
        let bytes = manifest.encode();
        prop_assert_eq!(&bytes[..2], &[Kind::Manifest as u8, MANIFEST_VERSION]);
        prop_assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
    }

    #[test]
    fn a_flipped_byte_never_decodes_to_the_same_manifest(
        manifest in arb_manifest(), at in any::<usize>(), flip in 1u8..,
    ) {
        let mut bytes = manifest.encode();
        let i = at % bytes.len();
        bytes[i] ^= flip;
        if let Ok(other) = Manifest::decode(&bytes) {
            prop_assert_ne!(other, manifest);
        }
    }

    #[test]
    fn truncated_bytes_never_decode(manifest in arb_manifest(), cut in any::<usize>()) {
        let bytes = manifest.encode();
        let len = cut % bytes.len();
        prop_assert!(Manifest::decode(&bytes[..len]).is_err());
    }

    #[test]
    fn inconsistent_manifests_are_refused(manifest in arb_manifest(), extra in 1u64..1000) {
        let mut wrong_total = manifest.clone();
        wrong_total.total_bytes += extra;
        let is_size_mismatch =
            matches!(Manifest::decode(&wrong_total.encode()), Err(ManifestError::SizeMismatch { .. }));
        prop_assert!(is_size_mismatch);
        let mut short_list = manifest.clone();
        short_list.chunk_sizes.push(1);
        let is_list_mismatch = matches!(
            Manifest::decode(&short_list.encode()),
            Err(ManifestError::ChunkListMismatch { .. })
        );
        prop_assert!(is_list_mismatch);
    }
}

fn valid() -> Manifest {
    Manifest {
        chunks: vec![ContentId::of(b"a")],
        chunk_sizes: vec![10],
        parity_chunks: Vec::new(),
        total_bytes: 10,
        redundancy: Redundancy::default(),
        access: Access::Sealed {
            wrapped_key: vec![0; SEALED_KEY_BYTES],
            sealed_info: vec![0; TAG_BYTES],
        },
    }
}

fn public() -> Manifest {
    Manifest {
        access: Access::Public {
            info: ObjectInfo {
                plaintext_hash: Hash32::of(b"x"),
                content_type: Some("text/html".into()),
                name: Some("index.html".into()),
            },
        },
        ..valid()
    }
}

#[test]
fn a_public_object_has_its_description_in_the_clear_and_no_key() {
    let m = public();
    assert_eq!(Manifest::decode(&m.encode()), Ok(m.clone()));
    assert!(m.is_public());
    assert_eq!(
        m.open_info(None).unwrap().name.as_deref(),
        Some("index.html")
    );
    let owner = crypto_box::SecretKey::from([7; 32]);
    assert_eq!(m.unwrap_key(&owner), Err(SealError::PublicObject));
    assert_eq!(m.stored_len(10), 10, "public chunks carry no tag");
    assert_eq!(m.sealed_bytes(), 10);
    assert_eq!(valid().stored_len(10), 10 + TAG_BYTES);
    assert!(matches!(
        valid().open_info(None),
        Err(ManifestError::InfoSeal {
            source: SealError::NoKey
        })
    ));
    let mut long = public();
    long.access = Access::Public {
        info: ObjectInfo {
            plaintext_hash: Hash32::ZERO,
            content_type: None,
            name: Some("n".repeat(NAME_BYTES_MAX + 1)),
        },
    };
    assert!(matches!(
        Manifest::decode(&long.encode()),
        Err(ManifestError::NameTooLong { .. })
    ));
}

#[test]
fn bounds_are_enforced() {
    assert_eq!(valid().validate(), Ok(()));
    let mut m = valid();
    m.chunk_sizes = vec![0];
    m.total_bytes = 0;
    assert!(matches!(
        m.validate(),
        Err(ManifestError::ChunkSizeOutOfRange { size: 0, .. })
    ));
    let mut m = valid();
    m.access = Access::Sealed {
        wrapped_key: vec![0; SEALED_KEY_BYTES - 1],
        sealed_info: vec![0; TAG_BYTES],
    };
    assert!(matches!(
        m.validate(),
        Err(ManifestError::WrappedKeyLength { .. })
    ));
    let mut m = valid();
    m.access = Access::Sealed {
        wrapped_key: vec![0; SEALED_KEY_BYTES],
        sealed_info: vec![0; SEALED_INFO_BYTES_MAX + 1],
    };
    assert!(matches!(
        m.validate(),
        Err(ManifestError::SealedInfoLength { .. })
    ));
    let mut m = valid();
    m.redundancy = Redundancy::Replicas(0);
    assert!(matches!(m.validate(), Err(ManifestError::Replicas { .. })));
    m.redundancy = Redundancy::Replicas(REPLICAS_MAX + 1);
    assert!(matches!(m.validate(), Err(ManifestError::Replicas { .. })));
    m.redundancy = Redundancy::Erasure {
        data: 200,
        parity: 100,
    };
    assert!(matches!(m.validate(), Err(ManifestError::Erasure { .. })));
}

/// An RS(`data`+`parity`) manifest of `chunks` chunks of 10 bytes.
fn erasure(chunks: usize, data: u8, parity: u8) -> Manifest {
    let mut m = valid();
    m.chunks = (0..chunks as u32)
        .map(|i| ContentId::of(&i.to_le_bytes()))
        .collect();
    m.chunk_sizes = vec![10; chunks];
    m.total_bytes = 10 * chunks as u64;
    m.redundancy = Redundancy::Erasure { data, parity };
    m.parity_chunks = (0..m.group_count() * usize::from(parity))
        .map(|i| ContentId::of(&[b'p', i as u8]))
        .collect();
    m
}

#[test]
fn erasure_groups_take_data_chunks_in_order_and_the_last_may_be_short() {
    let m = erasure(10, 4, 2);
    assert_eq!(m.validate(), Ok(()));
    assert_eq!(m.group_count(), 3);
    assert_eq!(m.parity_chunks.len(), 6);
    let groups: Vec<ChunkGroup> = (0..3).map(|g| m.group(g).unwrap()).collect();
    assert_eq!(groups[0].data, 0..4);
    assert_eq!(groups[1].parity, 2..4);
    assert_eq!(groups[2].data, 8..10, "the last group holds what is left");
    assert_eq!(groups[2].parity, 4..6, "and still all its parity");
    assert_eq!(m.group(3), None);
    assert_eq!(m.group_of(9), Some(groups[2].clone()));
    assert_eq!(m.group_of(3), Some(groups[0].clone()));
    assert_eq!(m.all_chunks().count(), 16);
    // Shards are the longest sealed chunk (10 + 16 bytes) of their group.
    assert_eq!(m.parity_bytes(), 6 * 26);
    let empty = erasure(0, 4, 2);
    assert_eq!(empty.validate(), Ok(()));
    assert_eq!(empty.group_count(), 0);
    assert_eq!(valid().group_of(0), None, "replicas have no groups");
}

#[test]
fn every_group_must_have_exactly_its_parity_chunks() {
    let mut m = erasure(10, 4, 2);
    m.parity_chunks.pop();
    assert_eq!(
        m.validate(),
        Err(ManifestError::ParityCount {
            groups: 3,
            parity: 2,
            expected: 6,
            found: 5
        })
    );
    let mut m = valid();
    m.parity_chunks.push(ContentId::of(b"p"));
    assert!(
        matches!(
            Manifest::decode(&m.encode()),
            Err(ManifestError::ParityCount {
                expected: 0,
                found: 1,
                ..
            })
        ),
        "a replicated object has no parity"
    );
    let m = erasure(10, 4, 2);
    assert_eq!(Manifest::decode(&m.encode()), Ok(m));
}

#[test]
fn an_older_manifest_is_refused_by_its_version() {
    let mut bytes = valid().encode();
    bytes[1] = 2;
    assert!(matches!(
        Manifest::decode(&bytes),
        Err(ManifestError::Decode {
            source: DecodeError::UnsupportedVersion {
                found: 2,
                supported: 3
            }
        })
    ));
}

#[test]
fn other_kinds_of_record_are_not_manifests() {
    let meta = crate::store::ChunkMeta { size_bytes: 5 };
    let err = Manifest::decode(&encode(&meta)).unwrap_err();
    assert!(matches!(
        err,
        ManifestError::Decode {
            source: DecodeError::WrongKind { .. }
        }
    ));
    assert!(matches!(
        Manifest::decode(b"random bytes"),
        Err(ManifestError::Decode { .. })
    ));
}

#[test]
fn description_seals_and_opens_only_under_its_key() {
    let key = ObjectKey::generate().unwrap();
    let info = ObjectInfo {
        plaintext_hash: Hash32::of(b"x"),
        content_type: Some("text/plain".into()),
        name: Some("notes.txt".into()),
    };
    let mut m = valid();
    m.access = Access::Sealed {
        wrapped_key: vec![0; SEALED_KEY_BYTES],
        sealed_info: info.seal(&key.cipher()).unwrap(),
    };
    assert_eq!(m.open_info(Some(&key)).unwrap(), info);
    let other = ObjectKey::generate().unwrap();
    assert!(matches!(
        m.open_info(Some(&other)),
        Err(ManifestError::InfoSeal { .. })
    ));
    let long = ObjectInfo {
        name: Some("n".repeat(NAME_BYTES_MAX + 1)),
        ..info
    };
    assert!(matches!(
        long.seal(&key.cipher()),
        Err(ManifestError::NameTooLong { .. })
    ));
}
