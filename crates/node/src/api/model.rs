//! The JSON bodies of the node's HTTP API, shared by the server (`api`) and
//! the client the CLI uses (`client`). Anything signed travels as the hex of
//! its canonical encoding, so the bytes a wallet signed reach the ledger
//! unchanged; amounts travel as decimal PCL strings, never floats.

use peercloud_types::{JobSpec, Resources};
use serde::{Deserialize, Serialize};

/// Version prefix of every route.
pub const API_PREFIX: &str = "/v1";
/// Name of the bearer-token file in a node's data directory.
pub const TOKEN_FILE: &str = "api.token";
/// Name of the file a running node writes its API address into.
pub const API_ADDR_FILE: &str = "api.addr";

/// Every error the API returns: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable code: `bad_request`, `unauthorized`, `not_found`, `tx_refused`,
    /// `no_offers`, `timeout`, `unavailable`, `internal`.
    pub code: String,
    /// What went wrong, naming the thing that is wrong.
    pub message: String,
}

/// `GET /v1/status`: who this node is and how it is doing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusView {
    /// The node's id (`pcn1…`).
    pub node: String,
    /// Its owner account (`pc1…`).
    pub owner: String,
    /// Its libp2p peer id.
    pub peer: String,
    /// `validator` or `provider`.
    pub role: String,
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
}

/// `GET /v1/ledger`: the chain as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerView {
    /// Height of the tip.
    pub height: u64,
    /// Hash of the tip block (hex).
    pub tip: String,
    /// State root at the tip (hex).
    pub state_root: String,
    /// Block time of the tip, ms since the Unix epoch.
    pub time_ms: u64,
    /// Tokens minted at genesis (PCL).
    pub supply: String,
    /// Sum of every balance, stake and escrow (PCL): equals `supply`.
    pub accounted: String,
    /// Accounts with a record.
    pub accounts: usize,
    /// Registered nodes.
    pub nodes: Vec<NodeView>,
    /// Jobs by state: (state, count).
    pub jobs: Vec<(String, usize)>,
}

/// One registered node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub node: String,
    /// Owner account.
    pub owner: String,
    /// Where it is.
    pub location: String,
    /// Its reputation score.
    pub reputation: u32,
    /// What it registered.
    pub resources: Resources,
}

/// `GET /v1/accounts/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountView {
    /// The account (`pc1…`).
    pub account: String,
    /// Spendable balance (PCL).
    pub balance: String,
    /// Staked (PCL).
    pub stake: String,
    /// The nonce its next transaction must carry.
    pub next_nonce: u64,
}

/// `POST /v1/tx`: a transaction signed by a wallet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitTx {
    /// Hex of the canonical encoding of a `Signed<Tx>`.
    pub tx: String,
    /// Answer only once the transaction is in a committed block.
    #[serde(default)]
    pub wait: bool,
}

/// The answer to `POST /v1/tx`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxReceipt {
    /// Hash of the signed transaction (hex).
    pub hash: String,
    /// Height of the block holding it, when waited for.
    pub height: Option<u64>,
    /// What its block did, one line per event (when waited for).
    pub events: Vec<String>,
}

/// `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    /// Job id (hex).
    pub job: String,
    /// Poster account.
    pub poster: String,
    /// `posted`, `awarded`, `settled`, `expired` or `cancelled`.
    pub state: String,
    /// k.
    pub redundancy: u8,
    /// Locked when posted (PCL).
    pub escrow_locked: String,
    /// Paid or refunded so far (PCL).
    pub escrow_released: String,
    /// Deadline, ms since the Unix epoch.
    pub deadline_ms: u64,
    /// The awarded nodes.
    pub awards: Vec<AwardView>,
    /// Output digest the majority agreed on (hex), once settled.
    pub agreed: Option<String>,
}

/// One awarded node of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwardView {
    /// Node id.
    pub node: String,
    /// Its owner.
    pub owner: String,
    /// Price bound (PCL).
    pub price: String,
    /// The output digest it submitted (hex), if any.
    pub digest: Option<String>,
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
    /// Each a verified `Signed<Offer>`, hex-encoded, with the node's reputation.
    pub offers: Vec<OfferView>,
    /// Nodes that answered they would not take it, with why.
    pub declined: Vec<(String, String)>,
}

/// One offer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfferView {
    /// Hex of the canonical `Signed<Offer>`.
    pub offer: String,
    /// The offering node's reputation on the ledger.
    pub reputation: u32,
}

/// An object in the network store, by the CID of its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// File name inside the job's `/input` (or `job.wasm` for the module).
    pub name: String,
    /// Manifest CID.
    pub cid: String,
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
    pub node: String,
    /// Module key, sealed (hex).
    pub module_key: String,
    /// Input keys in the order of `inputs`, sealed (hex).
    pub input_keys: Vec<String>,
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
    pub node: String,
    /// The run, or why there is none.
    pub outcome: Result<RunReport, ApiError>,
}

/// A provider's report of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// Exit code of the module.
    pub exit_code: i32,
    /// Output digest (hex), as submitted to the ledger.
    pub digest: String,
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
}

/// One output file of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    /// Path under `/output`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of its plaintext (hex).
    pub blake3: String,
    /// Manifest CID of the stored object.
    pub cid: String,
}
