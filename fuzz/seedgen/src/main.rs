//! Writes valid seed inputs for the fuzz targets to `fuzz/seeds/<target>/`.
//!
//! Everything is deterministic (fixed keys, fixed times), so rerunning this
//! after a format change rewrites the same files for unchanged types.
//! The node's records (`wire::Message`, `CapacityRequest`, `Genesis`) are
//! written from their postcard layout without depending on peercloud-node
//! (which would pull wasmtime into this plain build): an enum is its variant
//! index as a varint, then its fields; a struct is its fields in order. Their
//! fields of other crates' types (`JobSpec`, `ErrorCode`, ...) are those
//! types themselves, serialised by postcard as the node does.
//!
//! The api_json seeds are the HTTP request bodies (`peercloud_api`), written
//! with serde_json as a client writes them.

use std::fs;
use std::path::{Path, PathBuf};

use peercloud_api::{
    Canonical, DispatchRequest, ErrorCode, HexBytes, NodeKeys, ObjectRef, OffersRequest, SubmitTx,
};
use peercloud_ledger::records::Meta;
use peercloud_ledger::{
    Account, Award, BandwidthReceipt, BucketId, BucketUsage, ClusterId, ClusterTerms,
    GenesisConfig, JobRecord, JobState, NodeRecord, ObjectEntry, Params, RepairReceipt,
    ResultClaim, Tx, TxKind, registration_proof,
};
use peercloud_store::audit::{Challenge, prove};
use peercloud_store::seal::SEALED_KEY_BYTES;
use peercloud_store::{Access, ChunkMeta, Manifest, ObjectInfo, Redundancy, TAG_BYTES};
use peercloud_types::encoding::{Kind, encode, encode_body_into};
use peercloud_types::{
    Amount, ContentId, Decline, Hash32, JobId, JobSpec, Keypair, Offer, PriceSheet, Resources,
    Signed,
};
use serde::Serialize;

const SPEC: &str = r#"{
    "version": 1,
    "name": "count words",
    "module": "wordcount.wasm",
    "args": ["--top", "10"],
    "env": {"LANG": "C"},
    "inputs": [{"name": "book.txt", "source": "book.txt"}],
    "outputs": ["counts.json"],
    "resources": {"cpu_millicores": 1000, "memory_bytes": 268435456},
    "limits": {"fuel": 1000000000, "memory_bytes": 67108864, "wall_time_ms": 10000, "output_bytes": 1048576},
    "redundancy": 2,
    "max_price": "0.5",
    "constraints": {"locations": ["DE", "FR"], "min_reputation": 5000}
}"#;

const MINIMAL_SPEC: &str = r#"{"version":1,"module":"m.wasm","max_price":"0.000000001"}"#;

struct Seeds {
    root: PathBuf,
}

impl Seeds {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// `[kind][version]` then the postcard body of `fields`.
fn record<F: Serialize>(kind: Kind, version: u8, fields: &F) -> Vec<u8> {
    let mut out = vec![kind as u8, version];
    encode_body_into(fields, &mut out);
    out
}

/// `wire::Message`'s version: 2 carries specs in their canonical encoding
/// and the API's `ErrorCode`; 3 signs declines; 4 names a chunk put's
/// cluster; 5 carries repair receipts in index writes and evidence; 6
/// carries inline objects in index puts, lists and answers; 7 a usage per
/// coalesced write in an index put and several keys in an index get.
const MESSAGE_VERSION: u8 = 7;
/// `wire::CapacityRequest`'s version: 2 carries the spec in its canonical encoding.
const CAPACITY_REQUEST_VERSION: u8 = 2;

/// A `wire::Message` (kind 8, version 7): variant index, then its fields.
fn message<F: Serialize>(variant: u32, fields: &F) -> Vec<u8> {
    record(Kind::Message, MESSAGE_VERSION, &(variant, fields))
}

/// The body of an encoded record (its bytes after the kind and version).
fn body<T: peercloud_types::Versioned + Serialize>(value: &T) -> Vec<u8> {
    encode(value)[2..].to_vec()
}

/// The wire seed named `name`.
fn w_bytes(wire: &[(&str, Vec<u8>)], name: &str) -> Vec<u8> {
    wire.iter().find(|(n, _)| *n == name).unwrap().1.clone()
}

/// A frame for the net_codec target: `[flags][chunk]`, the 4-byte length, the body.
fn frame(flags: u8, chunk: u8, len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![flags, chunk];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An API body as compact JSON, as a client sends it.
fn json<T: Serialize>(body: &T) -> String {
    serde_json::to_string(body).unwrap()
}

/// Bytes already in postcard form, written as they are.
struct Raw(Vec<u8>);

impl Serialize for Raw {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for b in &self.0 {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let seeds = Seeds { root };

    let validator = Keypair::from_seed(&[1; 32]);
    let user = Keypair::from_seed(&[2; 32]);
    let node = Keypair::from_seed(&[3; 32]);
    let node2 = Keypair::from_seed(&[4; 32]);
    let farmer = Keypair::from_seed(&[5; 32]);

    let spec = JobSpec::from_json(SPEC).unwrap();
    let job = JobId::derive(&user.account_id(), 1);
    let offer = Offer {
        job,
        node: node.node_id(),
        price: Amount::from_tokens(1),
        valid_until_ms: 1_700_000_060_000,
    };
    let offer2 = Offer {
        node: node2.node_id(),
        ..offer.clone()
    };
    let signed_offer = Signed::new(offer.clone(), &node);
    let signed_offer2 = Signed::new(offer2, &node2);
    let prices = PriceSheet {
        cpu_core_sec: Amount::from_base_units(1_000),
        job_base: Amount::from_base_units(5_000_000),
        ..PriceSheet::default()
    };
    let resources = Resources {
        cpu_millicores: 4000,
        memory_bytes: 8 << 30,
        storage_bytes: 100 << 30,
        bandwidth_bytes_per_sec: 100 << 20,
        gpus: 0,
    };

    let params = Params {
        genesis_authority: validator.account_id(),
        validator: validator.public(),
        treasury: validator.account_id(),
        min_fee: Amount::from_base_units(1_000),
        stake_min_to_serve: Amount::from_tokens(10),
        slash_bps: 1_000,
    };
    // Every transaction names its chain: the digest of the chain's params.
    let chain = params.digest();
    let tx = |nonce: u64, kind: TxKind, key: &Keypair| {
        Signed::new(
            Tx {
                chain,
                nonce,
                fee: Amount::from_base_units(1_000),
                kind,
            },
            key,
        )
    };
    let cluster_terms = ClusterTerms {
        redundancy: peercloud_ledger::Redundancy::ReedSolomon { data: 4, parity: 2 },
        price_per_gib_month: Amount::from_base_units(1_000_000),
        price_per_gib_served: Amount::from_base_units(500_000),
        manager_fee_bps: 500,
        node_stake: Amount::from_tokens(10),
        billing_period_ms: 86_400_000,
        grace_ms: 3 * 86_400_000,
    };
    let bucket = BucketId::derive(&user.account_id(), 6);
    let txs = vec![
        (
            "transfer",
            tx(
                1,
                TxKind::Transfer {
                    to: farmer.account_id(),
                    amount: Amount::from_tokens(10),
                },
                &user,
            ),
        ),
        (
            "register_node",
            tx(
                1,
                TxKind::RegisterNode {
                    node: node.node_id(),
                    proof: registration_proof(&node, &farmer.account_id()),
                    resources,
                    location: "eu-west".into(),
                    prices,
                },
                &farmer,
            ),
        ),
        (
            "stake",
            tx(
                2,
                TxKind::Stake {
                    amount: Amount::from_tokens(100),
                },
                &farmer,
            ),
        ),
        (
            "post_job",
            tx(
                2,
                TxKind::PostJob {
                    spec_digest: spec.digest(),
                    redundancy: 2,
                    max_price_per_node: Amount::from_tokens(1),
                    deadline_ms: 1_700_000_600_000,
                },
                &user,
            ),
        ),
        (
            "award_job",
            tx(
                3,
                TxKind::AwardJob {
                    job,
                    offers: vec![signed_offer.clone(), signed_offer2.clone()],
                },
                &user,
            ),
        ),
        (
            "submit_result",
            tx(
                1,
                TxKind::SubmitResult {
                    job,
                    output_digest: Hash32::of(b"output"),
                    fuel_used: 12_345,
                },
                &node,
            ),
        ),
        ("settle_job", tx(4, TxKind::SettleJob { job }, &user)),
        (
            "withdraw_result",
            tx(1, TxKind::WithdrawResult { job }, &node2),
        ),
        (
            "create_cluster",
            tx(
                5,
                TxKind::CreateCluster {
                    managers: vec![user.account_id(), farmer.account_id()],
                    threshold: 2,
                    terms: cluster_terms,
                },
                &user,
            ),
        ),
        (
            "bill_bucket",
            tx(
                3,
                TxKind::BillBucket {
                    bucket,
                    period: 0,
                    usage: Some(Signed::new(
                        BucketUsage {
                            bucket,
                            stored_bytes: 3 << 30,
                            seq: 7,
                            at_ms: 1_700_000_050_000,
                        },
                        &user,
                    )),
                    receipts: vec![Signed::new(
                        BandwidthReceipt {
                            bucket,
                            node: node.node_id(),
                            period: 0,
                            bytes: 1 << 29,
                            receiver: user.account_id(),
                        },
                        &user,
                    )],
                    repairs: vec![Signed::new(
                        RepairReceipt {
                            bucket,
                            period: 0,
                            repairer: validator.node_id(),
                            receiver: node.node_id(),
                            bytes: 1 << 20,
                        },
                        &node,
                    )],
                },
                &farmer,
            ),
        ),
        (
            "report_audit",
            tx(
                4,
                TxKind::ReportAudit {
                    cluster: ClusterId::derive(&user.account_id(), 5),
                    auditor: node.node_id(),
                    node: node2.node_id(),
                    epoch: 1_700_000_050_000 / 86_400_000,
                    cid: ContentId::of(b"sealed chunk"),
                },
                &farmer,
            ),
        ),
    ];

    let config = GenesisConfig {
        params: params.clone(),
        allocations: vec![
            (user.account_id(), Amount::from_tokens(1_000)),
            (farmer.account_id(), Amount::from_tokens(1_000)),
        ],
        time_ms: 1_700_000_000_000,
    };
    let (_, built) = config.build(&validator, &validator, Vec::new()).unwrap();
    let block = built.block;

    let manifest = Manifest {
        chunks: vec![ContentId::of(b"chunk 0"), ContentId::of(b"chunk 1")],
        chunk_sizes: vec![1 << 20, 1234],
        parity_chunks: Vec::new(),
        total_bytes: (1 << 20) + 1234,
        redundancy: Redundancy::Replicas(3),
        access: Access::Sealed {
            wrapped_key: vec![7; SEALED_KEY_BYTES],
            sealed_info: vec![9; TAG_BYTES + 40],
        },
    };
    Manifest::decode(&manifest.encode()).expect("the seed manifest validates");
    let erasure_manifest = Manifest {
        redundancy: Redundancy::Erasure { data: 4, parity: 2 },
        parity_chunks: vec![ContentId::of(b"parity 0"), ContentId::of(b"parity 1")],
        ..manifest.clone()
    };
    Manifest::decode(&erasure_manifest.encode()).expect("the erasure seed manifest validates");
    let public_manifest = Manifest {
        access: Access::Public {
            info: ObjectInfo {
                plaintext_hash: Hash32::of(b"page"),
                content_type: Some("text/html".into()),
                name: Some("site/index.html".into()),
            },
        },
        ..manifest.clone()
    };
    Manifest::decode(&public_manifest.encode()).expect("the public seed manifest validates");

    // canonical_decode: one file per record type.
    let t = "canonical_decode";
    seeds.put(t, "offer", &encode(&offer));
    seeds.put(t, "signed_offer", &encode(&signed_offer));
    for (name, signed) in &txs {
        seeds.put(t, &format!("signed_tx_{name}"), &encode(signed));
    }
    seeds.put(t, "tx_award_job", &encode(&txs[4].1.body));
    seeds.put(t, "block_genesis", &encode(&block));
    seeds.put(t, "block_header", &encode(&block.header.body));
    seeds.put(t, "signed_block_header", &encode(&block.header));
    seeds.put(t, "manifest", &manifest.encode());
    seeds.put(t, "manifest_erasure", &erasure_manifest.encode());
    seeds.put(t, "manifest_public", &public_manifest.encode());
    seeds.put(t, "job_spec", &encode(&spec));
    seeds.put(
        t,
        "chunk_meta",
        &encode(&ChunkMeta {
            size_bytes: 1 << 20,
        }),
    );
    // wire::CapacityRequest { job, spec, requester, offers_until_ms }
    let capacity_request = (job, spec.clone(), node.node_id(), 1_700_000_030_000u64);
    seeds.put(
        t,
        "capacity_request",
        &record(
            Kind::CapacityRequest,
            CAPACITY_REQUEST_VERSION,
            &capacity_request,
        ),
    );
    let minimal_spec = JobSpec::from_json(MINIMAL_SPEC).unwrap();
    seeds.put(t, "job_spec_minimal", &encode(&minimal_spec));
    seeds.put(
        t,
        "genesis",
        &record(Kind::Genesis, 1, &(params, Raw(body(&block)))),
    );
    seeds.put(
        t,
        "state_account",
        &encode(&Account {
            balance: Amount::from_tokens(900),
            stake: Amount::from_tokens(100),
            nonce: 2,
            bound_awards: 1,
        }),
    );
    seeds.put(
        t,
        "state_node",
        &encode(&NodeRecord {
            owner: farmer.account_id(),
            resources,
            location: "eu-west".into(),
            prices,
            reputation: 5_000,
            registered_height: 1,
            jobs_agreed: 3,
            jobs_faulted: 1,
        }),
    );
    seeds.put(
        t,
        "state_job",
        &encode(&JobRecord {
            poster: user.account_id(),
            spec_digest: spec.digest(),
            redundancy: 2,
            max_price_per_node: Amount::from_tokens(1),
            posted_ms: 1_700_000_000_000,
            deadline_ms: 1_700_000_600_000,
            escrow_locked: Amount::from_tokens(2),
            escrow_released: Amount::ZERO,
            state: JobState::Awarded,
            awards: vec![Award {
                node: node.node_id(),
                owner: farmer.account_id(),
                price: Amount::from_tokens(1),
                result: Some(ResultClaim {
                    output_digest: Hash32::of(b"output"),
                    fuel_used: 12_345,
                }),
                withdrawn: false,
            }],
            agreed: None,
        }),
    );
    seeds.put(
        t,
        "state_meta",
        &encode(&Meta {
            genesis_done: true,
            minted: Amount::from_tokens(2_000),
        }),
    );

    // An audit of a small sealed-looking chunk: its challenge and the proof.
    let audited: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let audited_cid = ContentId::of(&audited);
    let challenge = Challenge::derive(&Hash32::of(b"seed"), &audited_cid, audited.len() as u64);
    let audit_proof = prove(&audited, &challenge).expect("the seed proof builds");
    seeds.put("canonical_decode", "audit_proof", &encode(&audit_proof));
    let object_entry = Signed::new(
        ObjectEntry {
            bucket,
            key: "photos/cat.jpg".to_owned(),
            object: Some(peercloud_ledger::ObjectRef {
                manifest: ContentId::of(b"cat manifest"),
                size: 48_213,
                inline: false,
            }),
            at_ms: 1_700_000_040_000,
        },
        &user,
    );
    seeds.put("canonical_decode", "object_entry", &encode(&object_entry));
    let usage = Signed::new(
        BucketUsage {
            bucket,
            stored_bytes: 48_213,
            seq: 1,
            at_ms: 1_700_000_040_000,
        },
        &user,
    );
    let receipt = Signed::new(
        BandwidthReceipt {
            bucket,
            node: node.node_id(),
            period: 3,
            bytes: 48_213,
            receiver: user.account_id(),
        },
        &user,
    );
    let repair = Signed::new(
        RepairReceipt {
            bucket,
            period: 3,
            repairer: validator.node_id(),
            receiver: node.node_id(),
            bytes: 1 << 20,
        },
        &node,
    );
    seeds.put("canonical_decode", "repair_receipt", &encode(&repair));

    // wire_message: one (or two) per variant of `wire::Message`, in declaration order
    // (Tx, Block, CapacityRequest, Offer, Decline, ChunkPut, ChunkGet, Chunk,
    // Dispatch, Result, SyncRequest, Blocks, Ack, Error, ChunkDelete,
    // AuditRequest, AuditProof, the index protocol's, RepairPut, RepairAck).
    let t = "wire_message";
    let cid = ContentId::of(b"sealed chunk");
    let sealed_object = |name: &str| {
        (
            name.to_owned(),
            ContentId::of(name.as_bytes()),
            vec![6u8; 80],
        )
    };
    let wire: Vec<(&str, Vec<u8>)> = vec![
        ("00_tx", message(0, &Raw(body(&txs[4].1)))),
        ("01_block", message(1, &Raw(body(&block)))),
        ("02_capacity_request", message(2, &capacity_request)),
        ("03_offer", message(3, &Raw(body(&signed_offer)))),
        (
            "04_decline",
            message(
                4,
                &Raw(body(&Signed::new(
                    Decline {
                        job,
                        node: node.node_id(),
                        reason: "busy".to_owned(),
                    },
                    &node,
                ))),
            ),
        ),
        (
            "05_chunk_put",
            message(5, &(cid, None::<ClusterId>, b"sealed bytes".to_vec())),
        ),
        (
            "05_chunk_put_cluster",
            message(
                5,
                &(
                    cid,
                    Some(ClusterId::derive(&user.account_id(), 5)),
                    b"sealed bytes".to_vec(),
                ),
            ),
        ),
        ("06_chunk_get", message(6, &cid)),
        ("07_chunk_some", message(7, &Some(b"sealed bytes".to_vec()))),
        ("07_chunk_none", message(7, &None::<Vec<u8>>)),
        (
            "08_dispatch",
            message(
                8,
                &(
                    job,
                    spec.clone(),
                    sealed_object("job.wasm"),
                    vec![sealed_object("book.txt")],
                ),
            ),
        ),
        (
            "08_dispatch_minimal_spec",
            message(
                8,
                &(
                    job,
                    minimal_spec.clone(),
                    sealed_object("job.wasm"),
                    Vec::<(String, ContentId, Vec<u8>)>::new(),
                ),
            ),
        ),
        (
            "09_result",
            message(
                9,
                &(
                    job,
                    0i32,
                    Hash32::of(b"digest"),
                    12_345u64,
                    vec![(
                        "counts.json".to_owned(),
                        42u64,
                        Hash32::of(b"counts"),
                        ContentId::of(b"counts manifest"),
                    )],
                    b"warning: none".to_vec(),
                    3u64,
                    40u64,
                    5u64,
                    None::<String>,
                ),
            ),
        ),
        (
            "09_result_failed",
            message(
                9,
                &(
                    job,
                    0i32,
                    Hash32::of(b"failure digest"),
                    1_000u64,
                    Vec::<(String, u64, Hash32, ContentId)>::new(),
                    b"thread 'main' panicked".to_vec(),
                    3u64,
                    40u64,
                    5u64,
                    Some("out of fuel: the module used all 1000 units of fuel".to_owned()),
                ),
            ),
        ),
        ("10_sync_request", message(10, &(0u64, 256u32))),
        ("11_blocks", message(11, &(1u8, Raw(body(&block))))),
        ("12_ack", message(12, &())),
        (
            "13_error",
            message(13, &(ErrorCode::BadRequest, "no".to_owned())),
        ),
        (
            "13_error_internal",
            message(13, &(ErrorCode::Internal, "the sandbox stopped".to_owned())),
        ),
        ("14_chunk_delete", message(14, &cid)),
        ("15_audit_request", message(15, &(audited_cid, &challenge))),
        ("16_audit_proof", message(16, &Raw(body(&audit_proof)))),
        (
            "17_index_put",
            message(
                17,
                &(
                    vec![Raw(body(&object_entry))],
                    vec![Raw(body(&usage))],
                    vec![Raw(body(&receipt))],
                    vec![Raw(body(&repair))],
                    Vec::<Raw>::new(),
                ),
            ),
        ),
        (
            "18_index_get",
            message(
                18,
                &(
                    bucket,
                    vec!["photos/cat.jpg".to_owned(), "photos/dog.jpg".to_owned()],
                ),
            ),
        ),
        (
            "19_index_list",
            message(
                19,
                &(
                    bucket,
                    "photos/".to_owned(),
                    Some("photos/a".to_owned()),
                    1_000u32,
                    true,
                ),
            ),
        ),
        (
            "20_index_evidence_request",
            message(20, &(bucket, 3u64, 1_700_000_050_000u64)),
        ),
        (
            "21_index_evidence",
            message(
                21,
                &(
                    Some(Raw(body(&usage))),
                    vec![Raw(body(&receipt))],
                    vec![Raw(body(&repair))],
                ),
            ),
        ),
        (
            "22_index_entries",
            message(
                22,
                &(
                    vec![Raw(body(&object_entry))],
                    None::<Raw>,
                    Vec::<Raw>::new(),
                ),
            ),
        ),
        (
            "23_repair_put",
            message(
                23,
                &(
                    cid,
                    ClusterId::derive(&user.account_id(), 5),
                    bucket,
                    3u64,
                    Some(Raw(body(&repair))),
                    b"rebuilt piece".to_vec(),
                ),
            ),
        ),
        ("24_repair_ack", message(24, &Raw(body(&repair)))),
    ];
    for (name, bytes) in &wire {
        seeds.put(t, name, bytes);
    }

    // bulk_frame: `[mode][seq][max]` then a hello (mode 0) or frames (mode 1)
    // sealed under the fuzzing key, whole, cut short, and altered.
    let t = "bulk_frame";
    use peercloud_net::bulk_fuzzing::{hello, seal};
    let put = |name: &str, mode: u8, seq: u8, max: u8, stream: &[u8]| {
        seeds.put(t, name, &[&[mode, seq, max][..], stream].concat());
    };
    put("hello", 0, 0, 0, &hello([3; 16]));
    put(
        "hello_other_magic",
        0,
        0,
        0,
        &[b"pcbulk\x00\x02", &hello([3; 16])[8..]].concat(),
    );
    let chunk_get = w_bytes(&wire, "06_chunk_get");
    put("frame_get", 1, 0, 4, &seal(0, 1, &chunk_get));
    put("frame_empty_seq_9", 1, 9, 0, &seal(9, 1, b""));
    let put_frame = seal(0, 1, &w_bytes(&wire, "05_chunk_put"));
    put("frame_put", 1, 0, 255, &put_frame);
    put("frame_put_over_bound", 1, 0, 0, &put_frame);
    put("frame_cut", 1, 0, 255, &put_frame[..put_frame.len() - 3]);
    let mut flipped = put_frame.clone();
    flipped[20] ^= 0x40;
    put("frame_flipped", 1, 0, 255, &flipped);
    put("frame_wrong_seq", 1, 1, 255, &put_frame);

    // net_codec: `[flags][chunk]` then a frame (see the target for the flags).
    let t = "net_codec";
    let w = |name: &str| &wire.iter().find(|(n, _)| *n == name).unwrap().1;
    seeds.put(t, "offer_small", &frame(0x00, 0, 5, b"hello"));
    seeds.put(
        t,
        "chunk_message",
        &frame(0x01, 0, w("05_chunk_put").len() as u32, w("05_chunk_put")),
    );
    seeds.put(
        t,
        "dispatch_trait_pending_chunked",
        &frame(0x4a, 7, w("08_dispatch").len() as u32, w("08_dispatch")),
    );
    seeds.put(
        t,
        "block_sync_response",
        &frame(0x1c, 0, w("11_blocks").len() as u32, w("11_blocks")),
    );
    seeds.put(
        t,
        "offer_exactly_max_filler",
        &frame(0x20, 0, 64 * 1024, b""),
    );
    seeds.put(t, "offer_one_over_max", &frame(0x20, 0, 64 * 1024 + 1, b""));
    seeds.put(t, "truncated_body", &frame(0x00, 3, 100, b"short"));
    seeds.put(t, "empty_message", &frame(0x03, 0, 0, b""));

    // api_json: the bodies of POST /v1/tx, /v1/jobs/{id}/offers and
    // /v1/jobs/{id}/dispatch, as a client writes them.
    let t = "api_json";
    for (name, signed) in &txs {
        let body = SubmitTx {
            tx: Canonical(signed.clone()),
            wait: *name == "post_job",
        };
        seeds.put(t, &format!("submit_tx_{name}.json"), json(&body).as_bytes());
    }
    seeds.put(
        t,
        "offers.json",
        json(&OffersRequest {
            spec: spec.clone(),
            window_ms: 2_000,
            enough: 2,
        })
        .as_bytes(),
    );
    seeds.put(
        t,
        "offers_minimal.json",
        json(&OffersRequest {
            spec: minimal_spec.clone(),
            window_ms: 500,
            enough: 0,
        })
        .as_bytes(),
    );
    let object = |name: &str| ObjectRef {
        name: name.to_owned(),
        cid: ContentId::of(name.as_bytes()),
    };
    let keys = |node: &Keypair, fill: u8| NodeKeys {
        node: node.node_id(),
        module_key: HexBytes(vec![fill; SEALED_KEY_BYTES]),
        input_keys: vec![HexBytes(vec![fill ^ 0xff; SEALED_KEY_BYTES])],
    };
    seeds.put(
        t,
        "dispatch.json",
        json(&DispatchRequest {
            spec: spec.clone(),
            module: object("job.wasm"),
            inputs: vec![object("book.txt")],
            nodes: vec![keys(&node, 0x11), keys(&node2, 0x22)],
        })
        .as_bytes(),
    );

    // job_spec_json: the documented example, the smallest spec, a CID module,
    // and the examples the repository ships.
    let t = "job_spec_json";
    seeds.put(t, "example.json", SPEC.as_bytes());
    seeds.put(t, "minimal.json", MINIMAL_SPEC.as_bytes());
    let module_cid = ContentId::of(b"module");
    seeds.put(
        t,
        "cid_module.json",
        SPEC.replace("\"wordcount.wasm\"", &format!("\"{module_cid}\""))
            .as_bytes(),
    );
    for example in ["wordcount.json", "render.json"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(example);
        if let Ok(text) = fs::read(&path) {
            seeds.put(t, example, &text);
        }
    }
    println!(
        "seeds written under {}",
        fs::canonicalize(&seeds.root).unwrap().display()
    );
}
