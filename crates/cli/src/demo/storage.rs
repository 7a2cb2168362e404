//! The demo's storage act, after the jobs: a funded bucket in the devnet's
//! storage cluster, an erasure-coded object and a small one, a provider
//! killed, the read still working at once, the repair the bucket's index
//! replicas make by themselves, and what each farmer earned from the bucket
//! after a few billing periods — all through node 1's API as the user,
//! except the earnings, which each farmer's own node reports.
//!
//! ```text
//!  cluster view ─► CreateBucket, DepositBucket (the user's wallet)
//!  bucket::put dataset.bin (8 MiB: two RS(4+2) groups) and render.png
//!  GET /v1/chunks/{piece} ─► x-peercloud-served-by: which node holds each piece
//!  bucket::get ─► byte-identical; the owner's receipts will pay the nodes that served
//!  kill the provider (not node 1) holding most data pieces ─► bucket::get at once, groups
//!      rebuilt on the user's side ─► bucket_health: pieces lost
//!  poll bucket_health until 0 lost (the first index replica up rebuilt the pieces elsewhere)
//!  poll the bucket until a few periods are billed ─► GET /v1/earnings on each live
//!      farmer's node: storage and bandwidth paid by this bucket
//! ```
//!
//! The devnet's own cluster bills every minute; the demo starts its devnet
//! with [`cluster_terms`]: periods of seconds and prices high enough that a
//! few MiB held for a few seconds pays visible amounts.

mod pay;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use peercloud_api::{ClusterView, HealthView};
use peercloud_client::{NodeClient, ObjectPut, bucket, submit_signed};
use peercloud_devnet::{Devnet, amounts};
use peercloud_ledger::{BucketId, ClusterTerms, TxKind};
use peercloud_node::daemon::{INDEX_REPLICAS, NODE_KEY_FILE};
use peercloud_store::Manifest;
use peercloud_types::clock::now_ms;
use peercloud_types::{Amount, ContentId, Keypair, NodeId};

use super::Stage;
use crate::display;
use pay::{Billed, FarmerEarnings};

/// The demo cluster's billing period: a few periods end while the act
/// runs (a real cluster bills monthly, the devnet's every minute).
pub const BILLING_PERIOD_MS: u64 = 2_000;
/// What the demo cluster charges for a GiB-month: 100 million PCL, so the
/// act's ~8.3 MiB held for one 2 s period cost ~0.6 PCL, and each of seven
/// members is paid visible hundredths of a PCL per period.
pub const PRICE_PER_GIB_MONTH: Amount = Amount::from_tokens(100_000_000);
/// What the demo cluster charges for a GiB served: 200 PCL, so one read of
/// the 8 MiB object pays the nodes that served it ~1.6 PCL between them.
pub const PRICE_PER_GIB_SERVED: Amount = Amount::from_tokens(200);
/// The bucket's deposit: at ~0.6 PCL a period (~19 PCL a minute) it lasts
/// ~160 periods, well past the act, and leaves the user most of its tokens.
const DEPOSIT_TOKENS: u64 = 100;
/// The erasure-coded object: 8 MiB is eight 1 MiB chunks, two RS(4+2)
/// groups of six pieces.
const DATASET_BYTES: usize = 8 << 20;
/// Its key in the bucket.
const DATASET_KEY: &str = "dataset.bin";
/// The small object's key: the picture the jobs rendered.
const PICTURE_KEY: &str = "render.png";
/// How long the repair may take after the kill: the node's holder grace
/// (5 s) and a few of its 3 s passes, with room for a busy two-core host.
const REPAIR_WAIT: Duration = Duration::from_secs(30);
/// How often the bucket's health is asked while it is repaired.
const HEALTH_POLL: Duration = Duration::from_millis(500);

/// The terms of the demo devnet's cluster for `providers` providers: the
/// devnet's redundancy, stake and fee, billed every [`BILLING_PERIOD_MS`]
/// at [`PRICE_PER_GIB_MONTH`] and [`PRICE_PER_GIB_SERVED`].
pub fn cluster_terms(providers: usize) -> ClusterTerms {
    ClusterTerms {
        price_per_gib_month: PRICE_PER_GIB_MONTH,
        price_per_gib_served: PRICE_PER_GIB_SERVED,
        billing_period_ms: BILLING_PERIOD_MS,
        grace_ms: 10 * BILLING_PERIOD_MS,
        ..amounts::cluster_terms(providers)
    }
}

/// Deterministic, incompressible-looking bytes (xorshift64).
fn content(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Lines for people, unless the demo prints JSON.
#[derive(Clone, Copy)]
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    pub(super) fn line(self, text: impl std::fmt::Display) {
        if !self.json {
            println!("{text}");
        }
    }

    /// A spinner saying what is awaited (hidden for JSON).
    fn spinner(self, what: &str) -> anyhow::Result<ProgressBar> {
        if self.json {
            return Ok(ProgressBar::hidden());
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template(&format!(
            "  {what:<8} {{spinner}} {{msg}}"
        ))?);
        bar.enable_steady_tick(Duration::from_millis(100));
        Ok(bar)
    }
}

/// The devnet's nodes by id: index `i` is `node-i` (0 the validator).
struct Names(BTreeMap<NodeId, usize>);

impl Names {
    fn load(devnet: &Devnet) -> anyhow::Result<Names> {
        let mut ids = BTreeMap::new();
        for (i, node) in devnet.nodes.iter().enumerate() {
            let path = node.dir.join(NODE_KEY_FILE);
            let key = Keypair::load(&path).with_context(|| format!("{}'s node key", node.name))?;
            ids.insert(key.node_id(), i);
        }
        Ok(Names(ids))
    }

    fn index(&self, node: &NodeId) -> Option<usize> {
        self.0.get(node).copied()
    }

    /// `node-3`, or the id itself for a node not of this devnet.
    fn of(&self, node: &NodeId) -> String {
        self.index(node)
            .map_or_else(|| node.to_string(), |i| format!("node-{i}"))
    }

    fn id(&self, index: usize) -> Option<NodeId> {
        self.0.iter().find(|(_, i)| **i == index).map(|(id, _)| *id)
    }
}

/// One piece of an erasure group and the node whose copy served it.
struct Piece {
    group: usize,
    parity: bool,
    holder: Option<NodeId>,
}

/// One object put, and how long the put took.
struct Stored {
    key: &'static str,
    put: ObjectPut,
    took: Duration,
}

/// The kill and what followed.
struct Fault {
    /// The killed node's index.
    victim: usize,
    /// Pieces of the big object it held.
    victim_pieces: usize,
    /// The read right after the kill.
    read_after_kill: Duration,
    /// Health right after the kill.
    after_kill: HealthView,
    /// From the kill to 0 lost.
    repair: Duration,
}

/// What the storage act did, for the summary and `--json`.
pub(super) struct StorageReport {
    cluster: ClusterView,
    bucket: BucketId,
    deposit: Amount,
    objects: Vec<Stored>,
    /// The first read of the big object.
    read: Duration,
    fault: Fault,
    billed: Billed,
    farmers: Vec<FarmerEarnings>,
}

impl StorageReport {
    /// The index of the node the act killed (no longer running).
    pub(super) fn killed(&self) -> usize {
        self.fault.victim
    }

    /// The act's figures as JSON.
    pub(super) fn json(&self) -> serde_json::Value {
        let objects: Vec<_> = self
            .objects
            .iter()
            .map(|o| {
                serde_json::json!({"key": o.key, "bytes": o.put.receipt.size_bytes,
                    "manifest": o.put.receipt.manifest_cid.to_string(),
                    "groups": o.put.receipt.manifest.group_count(), "put_ms": o.took.as_millis()})
            })
            .collect();
        let farmers: BTreeMap<_, _> = self
            .farmers
            .iter()
            .map(|f| {
                let text = |pick: fn(&(Amount, Amount, Amount)) -> Amount| {
                    f.earned.as_ref().map(|e| pick(e).to_string())
                };
                (
                    format!("farmer-{}", f.index),
                    serde_json::json!({
                    "node": f.node.to_string(), "down": f.earned.is_none(),
                    "served_bytes": f.served_bytes,
                    "storage": text(|e| e.0),
                    "bandwidth": text(|e| e.1),
                    "repair": text(|e| e.2)}),
                )
            })
            .collect();
        let fault = &self.fault;
        serde_json::json!({
            "cluster": self.cluster.id.to_string(),
            "redundancy": self.cluster.terms.redundancy.to_string(),
            "members": self.cluster.members.len(),
            "billing_period_ms": self.cluster.terms.billing_period_ms,
            "bucket": self.bucket.to_string(), "deposit": self.deposit.to_string(),
            "objects": objects, "read_ms": self.read.as_millis(),
            "killed": format!("node-{}", fault.victim), "killed_pieces": fault.victim_pieces,
            "read_after_kill_ms": fault.read_after_kill.as_millis(), "identical": true,
            "pieces": fault.after_kill.pieces, "lost_after_kill": fault.after_kill.lost,
            "lost_after_repair": 0, "repair_secs": fault.repair.as_secs_f64(),
            "periods_billed": self.billed.periods, "paid_out": self.billed.paid_out.to_string(),
            "farmers": farmers,
        })
    }
}

/// Runs the storage act on `stage`'s devnet; `picture` is the small object.
/// Leaves one provider killed ([`StorageReport::killed`]).
pub(super) fn run(stage: &mut Stage, picture: &Path, json: bool) -> anyhow::Result<StorageReport> {
    let out = Out { json };
    let names = Names::load(&stage.devnet)?;
    let cluster = show_cluster(stage, &names, out)?;
    let (bucket, deposit) = create_bucket(stage, &cluster, false, out)?;
    let dataset = content(DATASET_BYTES);
    let picture_bytes =
        std::fs::read(picture).with_context(|| format!("reading {}", picture.display()))?;
    let objects = vec![
        put(stage, &bucket, DATASET_KEY, &dataset)?,
        put(stage, &bucket, PICTURE_KEY, &picture_bytes)?,
    ];
    show_puts(&objects, out);
    let pieces = locate(&stage.client, &objects[0].put.receipt.manifest)?;
    show_pieces(&pieces, &names, out);
    let reads_from_ms = now_ms();
    let read = read_back(stage, &bucket, DATASET_KEY, &dataset)?;
    out.line(format_args!(
        "  get      {DATASET_KEY} back in {:.2} s, byte-identical",
        read.as_secs_f64()
    ));
    let fault = kill_and_repair(stage, &bucket, &dataset, &pieces, &names, out)?;
    let reads = reads_from_ms..=now_ms();
    let billed = pay::wait_billed(&stage.client, &bucket, *reads.end(), out)?;
    let served = pay::acknowledged(&stage.client, &stage.user, &bucket, reads)?;
    let farmers = pay::farmer_earnings(&stage.devnet, &names, &bucket, &fault, &billed, &served)?;
    pay::check_paid(&farmers)?;
    pay::print(&farmers, out);
    show_judgement(stage, fault.victim, out)?;
    Ok(StorageReport {
        cluster,
        bucket,
        deposit,
        objects,
        read,
        fault,
        billed,
        farmers,
    })
}

/// Prints the devnet's cluster: id, redundancy, members, terms.
fn show_cluster(stage: &Stage, names: &Names, out: Out) -> anyhow::Result<ClusterView> {
    let view = stage
        .client
        .cluster(&stage.devnet.cluster)
        .context("reading the devnet's storage cluster")?;
    let mut members: Vec<(Option<usize>, String)> = view
        .members
        .iter()
        .map(|m| (names.index(&m.node), names.of(&m.node)))
        .collect();
    members.sort();
    let members: Vec<String> = members.into_iter().map(|(_, name)| name).collect();
    let terms = &view.terms;
    out.line(format_args!(
        "Storage: {} keeps {} on {} members ({}), {} active",
        view.id,
        terms.redundancy,
        members.len(),
        members.join(" "),
        view.active()
    ));
    out.line(format_args!(
        "  terms    {} per GiB-month, {} per GiB served, billed every {} s, {}% to the managers",
        display::pcl(&terms.price_per_gib_month),
        display::pcl(&terms.price_per_gib_served),
        terms.billing_period_ms as f64 / 1e3,
        f64::from(terms.manager_fee_bps) / 100.0
    ));
    Ok(view)
}

/// Creates the user's bucket (`public`: its objects in the clear, served
/// as a website) in `cluster` and funds it; returns its id and deposit.
pub(super) fn create_bucket(
    stage: &Stage,
    cluster: &ClusterView,
    public: bool,
    out: Out,
) -> anyhow::Result<(BucketId, Amount)> {
    let user = &stage.user;
    let nonce = stage
        .client
        .account(&user.account_id())
        .context("reading the user's account")?
        .next_nonce;
    let create = TxKind::CreateBucket {
        cluster: cluster.id,
        public,
    };
    submit_signed(&stage.client, user, create, true).context("creating the bucket")?;
    let bucket = BucketId::derive(&user.account_id(), nonce);
    let amount = Amount::from_tokens(DEPOSIT_TOKENS);
    let deposit = TxKind::DepositBucket { bucket, amount };
    submit_signed(&stage.client, user, deposit, true)
        .with_context(|| format!("depositing {amount} PCL into {bucket}"))?;
    let view = stage
        .client
        .bucket(&bucket)
        .context("reading the new bucket")?;
    out.line(format_args!(
        "  bucket   {bucket}{}, funded with {}",
        if public { " (public)" } else { "" },
        display::pcl(&view.deposit)
    ));
    Ok((bucket, view.deposit))
}

/// Puts `bytes` as `key` in the bucket, timed.
fn put(
    stage: &Stage,
    bucket: &BucketId,
    key: &'static str,
    bytes: &[u8],
) -> anyhow::Result<Stored> {
    let started = Instant::now();
    let put = bucket::put(&stage.client, &stage.user, bucket, key, bytes)
        .with_context(|| format!("putting {key} into {bucket}"))?;
    Ok(Stored {
        key,
        put,
        took: started.elapsed(),
    })
}

/// One line per object put: size, time, chunks and parity, index replicas.
fn show_puts(objects: &[Stored], out: Out) {
    for o in objects {
        let manifest = &o.put.receipt.manifest;
        let groups = manifest.group_count();
        let shape = if o.put.inline {
            "kept inline in the index".to_owned()
        } else if groups > 0 {
            format!(
                "{} + {} parity in {}",
                plural(manifest.chunks.len(), "chunk"),
                manifest.parity_chunks.len(),
                plural(groups, "group")
            )
        } else {
            plural(manifest.chunks.len(), "chunk")
        };
        out.line(format_args!(
            "  put      {:<12} {:>9} in {:.2} s: {shape}, sealed on the user's side; indexed by {} of {INDEX_REPLICAS} replicas",
            o.key,
            display::bytes(o.put.receipt.size_bytes),
            o.took.as_secs_f64(),
            o.put.replicas
        ));
    }
}

/// `1 chunk`, `8 chunks`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Where each piece of `manifest`'s erasure groups is: each is read once
/// through the user's node, which names the node whose copy served it.
fn locate(client: &NodeClient, manifest: &Manifest) -> anyhow::Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut buf = Vec::new();
    for g in 0..manifest.group_count() {
        let group = manifest
            .group(g)
            .with_context(|| format!("the manifest has no group {g}"))?;
        let data = manifest.chunks[group.data].iter().map(|cid| (false, cid));
        let parity = manifest.parity_chunks[group.parity]
            .iter()
            .map(|cid| (true, cid));
        for (parity, cid) in data.chain(parity) {
            let holder = read_piece(client, cid, &mut buf)?;
            pieces.push(Piece {
                group: g,
                parity,
                holder,
            });
        }
    }
    Ok(pieces)
}

/// Reads one piece through the user's node: the node whose copy served it.
fn read_piece(
    client: &NodeClient,
    cid: &ContentId,
    buf: &mut Vec<u8>,
) -> anyhow::Result<Option<NodeId>> {
    client
        .get_chunk_into(cid, buf)
        .with_context(|| format!("reading piece {cid}"))
}

/// One line per group: the nodes holding its data pieces, then its parity.
fn show_pieces(pieces: &[Piece], names: &Names, out: Out) {
    let groups: BTreeSet<usize> = pieces.iter().map(|p| p.group).collect();
    for g in groups {
        let on = |parity: bool| {
            pieces
                .iter()
                .filter(|p| p.group == g && p.parity == parity)
                .map(|p| p.holder.map_or_else(|| "?".to_owned(), |n| names.of(&n)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.line(format_args!(
            "  group {g}  data on {} · parity on {}",
            on(false),
            on(true)
        ));
    }
}

/// Reads `key` back through the user's node and checks it is `expected`.
fn read_back(
    stage: &Stage,
    bucket: &BucketId,
    key: &str,
    expected: &[u8],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut read = Vec::with_capacity(expected.len());
    bucket::get(&stage.client, &stage.user, bucket, key, &mut read)
        .with_context(|| format!("reading {key} back from {bucket}"))?;
    let took = started.elapsed();
    ensure!(
        read == expected,
        "{key} read back is not what was put ({} bytes read, {} put)",
        read.len(),
        expected.len()
    );
    Ok(took)
}

/// The provider to kill: not node 1 (the user's), the one holding most
/// data pieces, then most pieces, then the lowest index.
fn victim(pieces: &[Piece], names: &Names) -> anyhow::Result<(usize, usize)> {
    let mut held: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for piece in pieces {
        let Some(i) = piece.holder.and_then(|n| names.index(&n)) else {
            continue;
        };
        let (data, all) = held.entry(i).or_default();
        *data += usize::from(!piece.parity);
        *all += 1;
    }
    held.into_iter()
        .filter(|(i, _)| *i >= 2)
        .max_by_key(|(i, counts)| (*counts, std::cmp::Reverse(*i)))
        .map(|(i, (_, all))| (i, all))
        .context("no provider but node 1 holds a piece of the erasure-coded object")
}

/// Kills the provider [`victim`] picks, reads the object again at once
/// (the user's side rebuilds the groups it held data of), shows the pieces
/// lost, and waits for the repair.
fn kill_and_repair(
    stage: &mut Stage,
    bucket: &BucketId,
    dataset: &[u8],
    pieces: &[Piece],
    names: &Names,
    out: Out,
) -> anyhow::Result<Fault> {
    let (victim, victim_pieces) = victim(pieces, names)?;
    let process = &mut stage.devnet.nodes[victim];
    let pid = process.pid();
    process.kill();
    let killed_at = Instant::now();
    out.line(format_args!(
        "  kill     node-{victim} (pid {pid}): it held {victim_pieces} of {DATASET_KEY}'s {} pieces",
        pieces.len()
    ));
    let read_after_kill = read_back(stage, bucket, DATASET_KEY, dataset)?;
    out.line(format_args!(
        "  get      {DATASET_KEY} again at once in {:.2} s, byte-identical (its groups rebuilt from the other pieces)",
        read_after_kill.as_secs_f64()
    ));
    let after_kill = stage
        .client
        .bucket_health(bucket)
        .context("checking the bucket's health after the kill")?;
    ensure!(
        after_kill.lost > 0,
        "the bucket's health shows no piece lost after node-{victim}, which held {victim_pieces}, was killed: {after_kill:?}"
    );
    out.line(format_args!(
        "  health   {} of the bucket's {} pieces lost (on node-{victim}; manifests count too)",
        after_kill.lost, after_kill.pieces
    ));
    let repair = wait_repaired(&stage.client, bucket, killed_at, out)?;
    Ok(Fault {
        victim,
        victim_pieces,
        read_after_kill,
        after_kill,
        repair,
    })
}

/// Says what the cluster's audits made of the killed node: past the holder
/// grace its peers report it, and two owners' reports remove it, its stake
/// slashed (it is not paid for storage it no longer holds).
fn show_judgement(stage: &Stage, victim: usize, out: Out) -> anyhow::Result<()> {
    let text = &stage.devnet.nodes[victim].ready.node;
    let node: peercloud_types::NodeId = text
        .parse()
        .map_err(|e| anyhow::anyhow!("node-{victim} printed {text:?}, not a node id: {e}"))?;
    let cluster = stage
        .client
        .cluster(&stage.devnet.cluster)
        .context("reading the cluster after the repair")?;
    match cluster.member(&node) {
        None => out.line(format_args!(
            "  audits   node-{victim} failed its peers' audits past the grace: reported on the ledger, slashed and removed ({} members now)",
            cluster.members.len()
        )),
        Some(_) => out.line(format_args!(
            "  audits   node-{victim} failed its peers' audits; its judgement is still on its way"
        )),
    }
    Ok(())
}

/// Waits (up to [`REPAIR_WAIT`] from the kill) until the bucket's health
/// shows nothing lost; returns the time from the kill.
fn wait_repaired(
    client: &NodeClient,
    bucket: &BucketId,
    killed_at: Instant,
    out: Out,
) -> anyhow::Result<Duration> {
    let bar = out.spinner("repair")?;
    loop {
        let health = client
            .bucket_health(bucket)
            .context("checking the bucket's health during the repair")?;
        let took = killed_at.elapsed();
        if health.lost == 0 && health.problems.is_empty() {
            bar.finish_and_clear();
            out.line(format_args!(
                "  repair   0 of {} pieces lost {:.1} s after the kill: the first index replica up rebuilt them on other members (paid for it once the period is billed)",
                health.pieces,
                took.as_secs_f64()
            ));
            return Ok(took);
        }
        ensure!(
            took < REPAIR_WAIT,
            "the bucket still has {} of {} pieces lost {} s after the kill ({})",
            health.lost,
            health.pieces,
            REPAIR_WAIT.as_secs(),
            health.problems.join("; ")
        );
        bar.set_message(format!(
            "{} of {} pieces lost, {:.1} s after the kill",
            health.lost,
            health.pieces,
            took.as_secs_f64()
        ));
        std::thread::sleep(HEALTH_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_ledger::billing::{bandwidth_charge, storage_charge};

    #[test]
    fn a_period_of_the_demo_object_pays_each_of_seven_members_a_visible_amount() {
        let terms = cluster_terms(7);
        let charge = storage_charge(
            DATASET_BYTES as u64,
            terms.billing_period_ms,
            terms.price_per_gib_month,
        )
        .expect("a charge");
        let fee = charge
            .checked_mul_div(u128::from(terms.manager_fee_bps), 10_000)
            .expect("a fee");
        let per_member = charge
            .checked_sub(fee)
            .expect("fee below charge")
            .checked_mul_div(1, 7)
            .expect("a share");
        assert!(
            per_member >= Amount::from_base_units(10_000_000),
            "each member gets {per_member} PCL a period, under 0.01"
        );
        // The deposit pays for the act (well under a minute, two reads)
        // with half of it to spare.
        let minute = storage_charge(DATASET_BYTES as u64, 60_000, terms.price_per_gib_month)
            .expect("a charge");
        let read =
            bandwidth_charge(DATASET_BYTES as u64, terms.price_per_gib_served).expect("a charge");
        assert!(read >= Amount::from_tokens(1), "a read pays {read} PCL");
        let act = minute
            .checked_add(read.checked_mul(2).expect("two reads"))
            .expect("a sum");
        assert!(
            act.checked_mul(2).expect("double") < Amount::from_tokens(DEPOSIT_TOKENS),
            "the act costs {act} PCL of a {DEPOSIT_TOKENS} PCL deposit"
        );
    }

    #[test]
    fn the_demo_terms_are_the_devnets_but_for_period_and_prices() {
        let (demo, devnet) = (cluster_terms(7), amounts::cluster_terms(7));
        assert_eq!(demo.redundancy, devnet.redundancy);
        assert_eq!(demo.node_stake, devnet.node_stake);
        assert_eq!(demo.billing_period_ms, BILLING_PERIOD_MS);
        assert!(demo.grace_ms >= demo.billing_period_ms);
    }

    #[test]
    fn the_victim_is_never_node_1_and_holds_most_data_pieces() {
        let ids: Vec<NodeId> = (0..5u8)
            .map(|i| Keypair::from_seed(&[i + 1; 32]).node_id())
            .collect();
        let names = Names(ids.iter().enumerate().map(|(i, id)| (*id, i)).collect());
        let piece = |holder: usize, parity: bool| Piece {
            group: 0,
            parity,
            holder: Some(ids[holder]),
        };
        let pieces = [
            piece(1, false),
            piece(1, false),
            piece(1, false),
            piece(2, true),
            piece(2, true),
            piece(3, false),
            piece(4, false),
        ];
        // node-1 holds most but is the user's; node-3 and node-4 hold one
        // data piece each (the lower index wins), node-2 only parity.
        assert_eq!(victim(&pieces, &names).expect("a victim"), (3, 1));
        assert!(
            victim(&pieces[..3], &names).is_err(),
            "only node 1 holds pieces"
        );
    }

    #[test]
    fn content_is_deterministic_and_not_repetitive() {
        let a = content(1 << 20);
        assert_eq!(a, content(1 << 20));
        assert_eq!(a.len(), 1 << 20);
        assert_ne!(a[..4096], a[4096..8192]);
    }
}
