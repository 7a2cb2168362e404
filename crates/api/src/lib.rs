//! The HTTP API's bodies, shared by the node's server and every client: what
//! a request carries, what an answer says, and the one error-code enum of the
//! API and the wire. Ids, amounts, CIDs and digests stay typed (they read and
//! write as text in JSON); anything signed travels as the hex of its canonical
//! encoding ([`Canonical`]), so the bytes a wallet signed reach the ledger
//! unchanged; amounts travel as decimal PCL strings, never floats.

mod canonical;
mod earnings;
mod error;
mod leases;
mod objects;
mod storage;

use peercloud_ledger::{Event, JobState, Tx};
use peercloud_types::{
    AccountId, Amount, ContentId, Hash32, JobId, JobSpec, NodeId, Offer, Resources, Signed,
};
use serde::{Deserialize, Serialize};

pub use canonical::{Canonical, HexBytes};
pub use earnings::*;
pub use error::{ApiError, ErrorCode};
pub use leases::{
    LeaseOfferView, LeaseOffersRequest, LeaseOffersResponse, LeaseView, LeasesQuery,
    SpaceCommandRequest, SpaceCommandResponse,
};
pub use objects::{
    EvidenceQuery, EvidenceView, HealthView, INDEX_KEYS_MAX, IndexKeys, IndexView, IndexWrite,
    IndexWriteReceipt, ListQuery,
};
pub use storage::*;

/// Version prefix of every route.
pub const API_PREFIX: &str = "/v1";
/// Header of a chunk get's answer naming the node whose copy served it
/// (`pcn1…`): the node the reader's bandwidth receipt pays.
pub const SERVED_BY_HEADER: &str = "x-peercloud-served-by";
/// Name of the bearer-token file in a node's data directory.
pub const TOKEN_FILE: &str = "api.token";
/// Name of the file a running node writes its API address into.
pub const API_ADDR_FILE: &str = "api.addr";
/// File in a node's data directory holding its web gateway's base URL.
pub const WEB_ADDR_FILE: &str = "web.addr";
/// File in a node's data directory holding its S3 gateway's base URL.
pub const S3_ADDR_FILE: &str = "s3.addr";
/// Chunks one batch put (`POST /v1/chunk-batches`) carries at most: its
/// query lists each (CID and length), so this bounds the request line too.
pub const CHUNK_BATCH_CHUNKS_MAX: usize = 64;
/// Body bytes of one batch put at most: a put pipeline's 8 MiB batch.
pub const CHUNK_BATCH_BODY_BYTES_MAX: usize = 8 << 20;

/// What a node does on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// It makes the blocks.
    Validator,
    /// It offers capacity and follows the blocks.
    Provider,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Role::Validator => "validator",
            Role::Provider => "provider",
        })
    }
}

/// `GET /v1/status`: who this node is and how it is doing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// The node's id (`pcn1…`).
    pub node: NodeId,
    /// Its owner account (`pc1…`).
    pub owner: AccountId,
    /// Its libp2p peer id.
    pub peer: String,
    /// What it does.
    pub role: Role,
    /// Height of the last block it applied, if any.
    pub height: Option<u64>,
    /// Peers connected now.
    pub peers: usize,
    /// Its libp2p addresses, each ending in `/p2p/<peer>`.
    pub p2p: Vec<String>,
    /// Whether its registration is on the ledger.
    pub registered: bool,
    /// What it offers.
    pub resources: Resources,
    /// Its web gateway's base URL (public buckets' sites), if it serves one.
    #[serde(default)]
    pub web: Option<String>,
    /// Its S3 gateway's base URL, if it serves one.
    #[serde(default)]
    pub s3: Option<String>,
    /// Whether peers can reach it, and through which relays.
    #[serde(default)]
    pub nat: NatStatusView,
    /// Its edge cache: public pieces kept for web visitors.
    #[serde(default)]
    pub edge_cache: EdgeCacheView,
}

/// A node's edge cache ([`StatusView::edge_cache`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeCacheView {
    /// Pieces kept.
    pub pieces: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The disk budget the farmer set, bytes (0: off).
    pub budget_bytes: u64,
    /// Reads answered from the cache since the node started.
    pub hits: u64,
    /// Reads that went to the holders.
    pub misses: u64,
}

/// A node's reachability ([`StatusView::nat`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatStatusView {
    /// `unknown` (not probed yet), `public` (peers dialled it back) or
    /// `private` (behind NAT or a firewall: reached through relays).
    pub reachability: String,
    /// The address peers reached, when public.
    #[serde(default)]
    pub public_addr: Option<String>,
    /// Relays holding a reservation for it (peer ids).
    #[serde(default)]
    pub relays: Vec<String>,
    /// Where peers reach it through them.
    #[serde(default)]
    pub relayed_addrs: Vec<String>,
    /// Whether it relays for others now.
    #[serde(default)]
    pub relaying: bool,
    /// Relayed connections turned direct by hole punching, and attempts that failed.
    #[serde(default)]
    pub hole_punches: u64,
    /// Hole punching attempts that failed.
    #[serde(default)]
    pub hole_punch_failures: u64,
}

/// `GET /v1/ledger`: the chain as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerView {
    /// Height of the tip.
    pub height: u64,
    /// Hash of the tip block.
    pub tip: Hash32,
    /// State root at the tip.
    pub state_root: Hash32,
    /// Block time of the tip, ms since the Unix epoch.
    pub time_ms: u64,
    /// Tokens minted at genesis.
    pub supply: Amount,
    /// Sum of every balance, stake and escrow: equals `supply`.
    pub accounted: Amount,
    /// The fee every transaction must at least pay (the ledger's params).
    pub min_fee: Amount,
    /// The chain's id (its params' digest), which every transaction names.
    pub chain: Hash32,
    /// Accounts with a record.
    pub accounts: usize,
    /// Registered nodes.
    pub nodes: Vec<NodeView>,
    /// Jobs by state: (state, count).
    pub jobs: Vec<(JobState, usize)>,
}

/// One registered node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub node: NodeId,
    /// Owner account.
    pub owner: AccountId,
    /// Where it is.
    pub location: String,
    /// Its reputation score.
    pub reputation: u32,
    /// What it registered.
    pub resources: Resources,
    /// Why its reputation is what it is: each reason that moved it, how
    /// many times, at what weight (it starts at `reputation_start` and
    /// stays in 0..=10000 as it goes).
    #[serde(default)]
    pub reputation_explained: Vec<ReputationLine>,
}

/// One reason a node's reputation moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReputationLine {
    /// The reason, in words.
    pub reason: String,
    /// How many times.
    pub count: u64,
    /// What one time moves it by.
    pub weight: i64,
    /// `count × weight`.
    pub total: i64,
}

impl ReputationLine {
    /// The lines of `tally` (every reason, those that never happened too).
    pub fn of(tally: &peercloud_ledger::ReputationTally) -> Vec<ReputationLine> {
        tally
            .lines()
            .into_iter()
            .map(|(reason, count, weight, total)| ReputationLine {
                reason: reason.name().to_owned(),
                count,
                weight,
                total,
            })
            .collect()
    }
}

/// `GET /v1/accounts/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountView {
    /// The account (`pc1…`).
    pub account: AccountId,
    /// Spendable balance.
    pub balance: Amount,
    /// Staked.
    pub stake: Amount,
    /// The nonce its next transaction must carry.
    pub next_nonce: u64,
    /// The fee its next transaction must at least pay.
    pub min_fee: Amount,
    /// The chain its next transaction must name.
    pub chain: Hash32,
}

/// `POST /v1/tx`: a transaction signed by a wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitTx {
    /// The signed transaction.
    pub tx: Canonical<Signed<Tx>>,
    /// Answer only once the transaction is in a committed block.
    #[serde(default)]
    pub wait: bool,
}

/// The answer to `POST /v1/tx`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxReceipt {
    /// Hash of the signed transaction.
    pub hash: Hash32,
    /// The fee it pays.
    pub fee: Amount,
    /// Height of the block holding it, when waited for.
    pub height: Option<u64>,
    /// What its block did (when waited for).
    pub events: Vec<Event>,
}

/// `GET /v1/jobs/{id}`; with `?after=H` the node answers once its tip is
/// past height `H` (or its wait bound passed), so a client follows a job
/// block by block without polling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    /// The job.
    pub job: JobId,
    /// Height of the node's tip when this view was taken.
    pub height: u64,
    /// Poster account.
    pub poster: AccountId,
    /// Where the job is.
    pub state: JobState,
    /// k.
    pub redundancy: u8,
    /// Locked when posted.
    pub escrow_locked: Amount,
    /// Paid or refunded so far.
    pub escrow_released: Amount,
    /// Deadline, ms since the Unix epoch.
    pub deadline_ms: u64,
    /// The awarded nodes.
    pub awards: Vec<AwardView>,
    /// Output digest the majority agreed on, once settled.
    pub agreed: Option<Hash32>,
}

impl JobView {
    /// Awards that may still answer: no result, not withdrawn.
    pub fn pending(&self) -> usize {
        self.awards.iter().filter(|a| a.pending()).count()
    }

    /// Whether a strict majority can still form, by the ledger's rule
    /// ([`peercloud_ledger::records::majority_possible`]): when it cannot,
    /// the job can be closed before its deadline.
    pub fn majority_possible(&self) -> bool {
        let claims = self.awards.iter().filter_map(|a| {
            Some(peercloud_ledger::ResultClaim {
                output_digest: a.digest?,
                fuel_used: a.fuel?,
            })
        });
        peercloud_ledger::records::majority_possible(self.redundancy, claims, self.pending())
    }
}

/// `?after=H&wait_ms=W` on `GET /v1/jobs/{id}`: answer once the tip is past
/// height `H`, or after `W` ms (at most the node's own bound), whichever
/// comes first. Without `after` the node answers at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitQuery {
    /// Answer once the tip is past this height.
    pub after: Option<u64>,
    /// Wait at most this long, ms.
    pub wait_ms: Option<u64>,
}

impl WaitQuery {
    /// Answer at once.
    pub const NOW: WaitQuery = WaitQuery {
        after: None,
        wait_ms: None,
    };

    /// Answer once the tip is past `height`, or after `wait_ms`.
    pub fn past(height: u64, wait_ms: u64) -> WaitQuery {
        WaitQuery {
            after: Some(height),
            wait_ms: Some(wait_ms),
        }
    }
}

/// One awarded node of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwardView {
    /// Node id.
    pub node: NodeId,
    /// Its owner.
    pub owner: AccountId,
    /// Price bound.
    pub price: Amount,
    /// The output digest it submitted, if any.
    pub digest: Option<Hash32>,
    /// The fuel it claimed with that digest (two claims agree when both
    /// match).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Whether it withdrew: it will not deliver.
    #[serde(default)]
    pub withdrawn: bool,
}

impl AwardView {
    /// Whether the node may still answer: no result, not withdrawn.
    pub fn pending(&self) -> bool {
        self.digest.is_none() && !self.withdrawn
    }
}

/// `POST /v1/jobs/{id}/offers`: broadcast the job's capacity request and
/// collect offers for a while.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OffersRequest {
    /// The spec (its digest must match the posted job's).
    pub spec: JobSpec,
    /// How long to collect, ms.
    pub window_ms: u64,
    /// Stop early once this many offers are in (0: wait the whole window).
    #[serde(default)]
    pub enough: usize,
}

/// Offers collected for a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OffersResponse {
    /// Each a verified signed offer, with the node's reputation.
    pub offers: Vec<OfferView>,
    /// Nodes that answered they would not take it.
    pub declined: Vec<Decline>,
}

/// One offer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfferView {
    /// The signed offer.
    pub offer: Canonical<Signed<Offer>>,
    /// The offering node's reputation on the ledger.
    pub reputation: u32,
}

/// A node that will not take a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    /// The node.
    pub node: NodeId,
    /// Why, for the user (names the short resource).
    pub reason: String,
}

/// An object in the network store, by the CID of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Path under the job's `/input` (`name`, or `name/sub/file` for a file
    /// of a directory input), or `job.wasm` for the module.
    pub name: String,
    /// Manifest CID.
    pub cid: ContentId,
}

/// `POST /v1/jobs/{id}/dispatch`: hand an awarded job to its nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DispatchRequest {
    /// The spec.
    pub spec: JobSpec,
    /// The module.
    pub module: ObjectRef,
    /// The inputs.
    pub inputs: Vec<ObjectRef>,
    /// Per awarded node, the object keys sealed to it.
    pub nodes: Vec<NodeKeys>,
}

/// The keys one awarded node needs, sealed (X25519) to that node only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeKeys {
    /// Node id.
    pub node: NodeId,
    /// Module key, sealed.
    pub module_key: HexBytes,
    /// Input keys in the order of `inputs`, sealed.
    pub input_keys: Vec<HexBytes>,
}

/// What each node reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DispatchResponse {
    /// One per node of the request, in its order.
    pub results: Vec<NodeResult>,
}

/// One node's answer to a dispatch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeResult {
    /// Node id.
    pub node: NodeId,
    /// The run, or why there is none.
    pub outcome: Result<RunReport, ApiError>,
}

/// A provider's report of one run: its outcome, or (`failure`) how the
/// module failed when it failed the same way every node's would, a paid
/// result with no outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Exit code of the module (0 when `failure` is set).
    pub exit_code: i32,
    /// Output digest, as submitted to the ledger (the failed run's digest
    /// when `failure` is set).
    pub digest: Hash32,
    /// Fuel burned.
    pub fuel: u64,
    /// The outputs, stored encrypted to the job's poster.
    pub outputs: Vec<OutputRef>,
    /// Standard error, capped (lossy UTF-8).
    pub stderr: String,
    /// Time fetching and decrypting the inputs, ms.
    pub staging_ms: u64,
    /// Time in the sandbox, ms.
    pub running_ms: u64,
    /// Time storing outputs and submitting the result, ms.
    pub storing_ms: u64,
    /// How the module failed (the error, with the end of its stderr), when
    /// it failed in a way every node reproduces.
    #[serde(default)]
    pub failure: Option<String>,
}

/// One output file of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    /// Path under `/output`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of its plaintext.
    pub blake3: Hash32,
    /// Manifest CID of the stored object.
    pub cid: ContentId,
}
