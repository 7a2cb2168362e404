//! The real ledger, run beside the fast path for a sample of leases: what
//! "on the real ledger" means here.
//!
//! ```text
//!  engine (fast path) ──LedgerOp (bounded queue)──► ledger thread: State + signed transactions
//!     every Nth lease:    Open (the k sealed bids)     Transfer, RegisterNode, Stake (first use)
//!                         Bill (which periods were up)  OpenLease + ActivateLease
//!                         Close, Settle                 BillLease (a day's periods at most, and
//!                                                       before a close or settlement), two
//!                                                       LeaseProbes a period
//!                                                       CloseLease, SettleLease
//!  end of run ──► State::check_invariants() ──► each sampled lease's ledger record
//!                                              == the fast path's (price, paid, refunded, periods)
//! ```
//!
//! Every sampled lease is opened with the same sealed bids, signed by the
//! nodes' real keys, so the ledger recomputes the award itself; each
//! period is billed with real `LeaseProbe`s signed by two probing nodes of
//! two other owners (up or down as the fast path decided); every
//! transaction is signed, carries its nonce and fee and goes through
//! `peercloud_ledger::apply`. The ledger runs on its own thread (the
//! second core), fed in the simulation's order, so its results are as
//! deterministic as the simulation's.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use peercloud_ledger::{
    BlockContext, GenesisConfig, LeaseRecord, Params, State, Tx, TxKind, apply, registration_proof,
};
use peercloud_types::lease::{LeaseFilters, LeaseOffer, LeaseProbe, LeaseRequest};
use peercloud_types::{Amount, Hash32, Keypair, LeaseId, PriceSheet, Resources, Signed, SpaceKind};

use crate::error::SimError;
use crate::leases::{ACTIVATE_WITHIN_MS, EPOCH_MS};
use crate::prices::MS_PER_HOUR;
use crate::random::keypair;

/// Operations waiting for the ledger thread at most: enough to ride over a
/// burst (the first hour's awards) without the simulation waiting, small
/// enough to bound memory.
const LEDGER_QUEUE_BOUND: usize = 4_096;
/// The sample chain's fee: small, but not zero, so fees are exercised.
const MIN_FEE: Amount = Amount::from_base_units(1_000);
/// Stake a farmer's owner locks to serve on the sample chain.
const STAKE_MIN: Amount = Amount::from_tokens(1);
/// What genesis gives the bank that funds every simulated account.
const BANK_TOKENS: u64 = 1_000_000_000_000;
/// What a farmer's owner is given on first use: its stake and fees.
const OWNER_FUNDING: Amount = Amount::from_tokens(100);
/// What a user is given when its balance runs short: deposits and fees.
const USER_FUNDING: Amount = Amount::from_tokens(100_000);
/// Ended periods an owner lets pile up before it bills them in one
/// `BillLease` (it bills at once before a close or a settlement): a day of
/// hourly periods. Billing later changes no amount (a close refunds the
/// same whether the periods before it were billed or not), only the count
/// of transactions.
const BILL_BATCH_PERIODS: usize = 24;

/// A farmer's bid, with what the ledger needs to register its node.
#[derive(Debug, Clone)]
pub struct BidSpec {
    /// The farmer (its keys derive from the seed and this).
    pub farmer: u32,
    /// Its bid per period.
    pub price: Amount,
    /// Its node's location.
    pub location: &'static str,
    /// Its node's capacity.
    pub capacity: Resources,
    /// Its price sheet when first registered.
    pub prices: PriceSheet,
}

/// What the fast path did to a sampled lease, for the ledger to do too.
#[derive(Debug, Clone)]
pub enum LedgerOp {
    /// `OpenLease` with these bids, then `ActivateLease`.
    Open {
        /// The lease's sequence number.
        seq: u64,
        /// Block time, ms.
        time_ms: u64,
        /// The user.
        user: u32,
        /// What the space gets.
        resources: Resources,
        /// The billing period, ms.
        period_ms: u64,
        /// How many periods.
        periods: u64,
        /// The reserve per period.
        reserve: Amount,
        /// The request's location filter.
        locations: Vec<String>,
        /// The sealed bids taken, in the order the fast path ranked them.
        bids: Vec<BidSpec>,
        /// The deposit (price × periods).
        deposit: Amount,
    },
    /// `BillLease` of `ups.len()` periods from `first_period`.
    Bill {
        /// The lease.
        seq: u64,
        /// Block time, ms.
        time_ms: u64,
        /// The first period billed.
        first_period: u64,
        /// Whether each was up.
        ups: Vec<bool>,
    },
    /// `CloseLease`, by the user or the node's owner.
    Close {
        /// The lease.
        seq: u64,
        /// Block time, ms.
        time_ms: u64,
        /// The user closes (else the farmer, quitting).
        by_user: bool,
    },
    /// `SettleLease`.
    Settle {
        /// The lease.
        seq: u64,
        /// Block time, ms.
        time_ms: u64,
    },
}

/// What the ledger thread hands back.
#[derive(Debug, Clone, Default)]
pub struct LedgerOutcome {
    /// Each sampled lease's record on the ledger, by sequence number.
    pub records: BTreeMap<u64, LeaseRecord>,
    /// Transactions applied.
    pub transactions: u64,
}

/// The ledger thread and the queue that feeds it.
#[derive(Debug)]
pub struct LedgerShadow {
    sender: Option<SyncSender<LedgerOp>>,
    handle: JoinHandle<Result<LedgerOutcome, SimError>>,
}

impl LedgerShadow {
    /// Starts the thread with a fresh chain for the run with `seed`.
    pub fn start(seed: u64) -> Result<LedgerShadow, SimError> {
        let (sender, receiver) = sync_channel(LEDGER_QUEUE_BOUND);
        let handle = std::thread::Builder::new()
            .name("sim-ledger".into())
            .spawn(move || Chain::new(seed)?.run(receiver))
            .map_err(|source| SimError::Io {
                path: "sim-ledger thread".into(),
                source,
            })?;
        Ok(LedgerShadow {
            sender: Some(sender),
            handle,
        })
    }

    /// Queues `op` (waits while the queue is full). A thread that stopped
    /// on an error takes no more; [`Self::finish`] returns that error.
    pub fn send(&mut self, op: LedgerOp) {
        if let Some(sender) = &self.sender
            && sender.send(op).is_err()
        {
            self.sender = None;
        }
    }

    /// Waits for the thread to apply everything; checks the invariants.
    pub fn finish(mut self) -> Result<LedgerOutcome, SimError> {
        self.sender = None;
        self.handle.join().map_err(|_| SimError::LedgerThread)?
    }
}

/// The sample chain and the keys of everyone on it.
struct Chain {
    seed: u64,
    state: State,
    bank: Keypair,
    /// Two probing nodes of two owners that are no farmer.
    probers: [Keypair; 2],
    /// Farmers registered so far: (owner key, node key).
    farmers: BTreeMap<u32, (Keypair, Keypair)>,
    users: BTreeMap<u32, Keypair>,
    /// Sampled leases: id, user, farmer.
    leases: BTreeMap<u64, (LeaseId, u32, u32)>,
    /// Ended periods not billed yet, per lease: the first, and whether each was up.
    unbilled: BTreeMap<u64, (u64, Vec<bool>)>,
    time_ms: u64,
    height: u64,
    transactions: u64,
}

fn refused(seq: u64, action: &'static str) -> impl FnOnce(peercloud_ledger::TxError) -> SimError {
    move |source| SimError::LedgerRefused {
        lease: seq,
        action,
        source: Box::new(source),
    }
}

impl Chain {
    fn new(seed: u64) -> Result<Chain, SimError> {
        let authority = keypair(seed, "authority", 0);
        let treasury = keypair(seed, "treasury", 0);
        let bank = keypair(seed, "bank", 0);
        let params = Params {
            genesis_authority: authority.account_id(),
            validator: authority.public(),
            treasury: treasury.account_id(),
            min_fee: MIN_FEE,
            stake_min_to_serve: STAKE_MIN,
            slash_bps: 1_000,
        };
        let prober_owners = [
            keypair(seed, "prober-owner", 0),
            keypair(seed, "prober-owner", 1),
        ];
        let probers = [keypair(seed, "prober", 0), keypair(seed, "prober", 1)];
        let allocations = vec![(bank.account_id(), Amount::from_tokens(BANK_TOKENS))];
        let genesis = GenesisConfig {
            params: params.clone(),
            allocations,
            time_ms: EPOCH_MS,
        };
        let state = State::new(params).map_err(|_| SimError::Overflow {
            what: "the sample chain's params",
        })?;
        let mut chain = Chain {
            seed,
            state,
            bank,
            probers,
            farmers: BTreeMap::new(),
            users: BTreeMap::new(),
            leases: BTreeMap::new(),
            unbilled: BTreeMap::new(),
            time_ms: EPOCH_MS,
            height: 0,
            transactions: 0,
        };
        let tx = genesis.genesis_tx(&authority);
        chain.apply_signed(&tx).map_err(refused(0, "genesis"))?;
        chain.height = 1;
        for (owner, node) in prober_owners.iter().zip(&chain.probers.clone()) {
            chain.register(
                owner,
                node,
                "eu-west/paris",
                Resources::default(),
                PriceSheet::default(),
            )?;
        }
        Ok(chain)
    }

    fn run(mut self, receiver: Receiver<LedgerOp>) -> Result<LedgerOutcome, SimError> {
        while let Ok(op) = receiver.recv() {
            self.step(op)?;
        }
        let waiting: Vec<u64> = self.unbilled.keys().copied().collect();
        for seq in waiting {
            self.bill(seq)?;
        }
        self.state
            .check_invariants()
            .map_err(|source| SimError::LedgerInvariant {
                source: Box::new(source),
            })?;
        let mut records = BTreeMap::new();
        for (seq, (lease, _, _)) in &self.leases {
            if let Some(record) = self.state.lease(lease) {
                records.insert(*seq, record.clone());
            }
        }
        Ok(LedgerOutcome {
            records,
            transactions: self.transactions,
        })
    }

    fn at(&mut self, time_ms: u64) {
        if time_ms != self.time_ms {
            self.time_ms = time_ms;
            self.height += 1;
        }
    }

    fn apply_signed(&mut self, tx: &Signed<Tx>) -> Result<(), peercloud_ledger::TxError> {
        let ctx = BlockContext {
            height: self.height,
            time_ms: self.time_ms,
            seed: Hash32::ZERO,
        };
        apply(&mut self.state, tx, &ctx)?;
        self.transactions += 1;
        Ok(())
    }

    /// Signs `kind` by `signer` with its next nonce and applies it.
    fn submit(&mut self, signer: &Keypair, kind: TxKind) -> Result<(), peercloud_ledger::TxError> {
        let tx = Signed::new(
            Tx {
                chain: self.state.params().digest(),
                nonce: self.state.next_nonce(&signer.public()),
                fee: MIN_FEE,
                kind,
            },
            signer,
        );
        self.apply_signed(&tx)
    }

    fn register(
        &mut self,
        owner: &Keypair,
        node: &Keypair,
        location: &str,
        resources: Resources,
        prices: PriceSheet,
    ) -> Result<(), SimError> {
        let bank = self.bank.clone();
        let to = owner.account_id();
        self.submit(
            &bank,
            TxKind::Transfer {
                to,
                amount: OWNER_FUNDING,
            },
        )
        .map_err(refused(0, "transfer"))?;
        let kind = TxKind::RegisterNode {
            node: node.node_id(),
            proof: registration_proof(node, &to),
            resources,
            location: location.into(),
            prices,
        };
        self.submit(owner, kind)
            .map_err(refused(0, "register-node"))?;
        self.submit(owner, TxKind::Stake { amount: STAKE_MIN })
            .map_err(refused(0, "stake"))
    }

    fn user(&mut self, user: u32, need: Amount, seq: u64) -> Result<Keypair, SimError> {
        let key = match self.users.get(&user) {
            Some(key) => key.clone(),
            None => {
                let key = keypair(self.seed, "user", u64::from(user));
                self.users.insert(user, key.clone());
                key
            }
        };
        let margin = MIN_FEE.checked_mul(16).unwrap_or(MIN_FEE);
        let need = need
            .checked_add(margin)
            .ok_or(SimError::Overflow { what: "a deposit" })?;
        if self.state.balance(&key.account_id()) < need {
            let bank = self.bank.clone();
            let amount = need
                .checked_add(USER_FUNDING)
                .ok_or(SimError::Overflow { what: "a deposit" })?;
            let to = key.account_id();
            self.submit(&bank, TxKind::Transfer { to, amount })
                .map_err(refused(seq, "transfer"))?;
        }
        Ok(key)
    }

    fn farmer(&mut self, bid: &BidSpec) -> Result<Keypair, SimError> {
        if let Some((_, node)) = self.farmers.get(&bid.farmer) {
            return Ok(node.clone());
        }
        let owner = keypair(self.seed, "owner", u64::from(bid.farmer));
        let node = keypair(self.seed, "node", u64::from(bid.farmer));
        self.register(&owner, &node, bid.location, bid.capacity, bid.prices)?;
        self.farmers.insert(bid.farmer, (owner, node.clone()));
        Ok(node)
    }

    fn lease(&self, seq: u64) -> Result<(LeaseId, u32, u32), SimError> {
        self.leases.get(&seq).copied().ok_or(SimError::LedgerThread)
    }

    fn owner_of(&self, farmer: u32) -> Result<Keypair, SimError> {
        self.farmers
            .get(&farmer)
            .map(|(owner, _)| owner.clone())
            .ok_or(SimError::LedgerThread)
    }

    /// Bills the ended periods of `seq` waiting, with two probes a period.
    fn bill(&mut self, seq: u64) -> Result<(), SimError> {
        let Some((first_period, ups)) = self.unbilled.remove(&seq) else {
            return Ok(());
        };
        let (lease, _, farmer) = self.lease(seq)?;
        let owner = self.owner_of(farmer)?;
        let probes = (first_period..)
            .zip(&ups)
            .flat_map(|(period, up)| {
                self.probers.iter().map(move |prober| {
                    let probe = LeaseProbe {
                        lease,
                        period,
                        prober: prober.node_id(),
                        up: *up,
                    };
                    Signed::new(probe, prober)
                })
            })
            .collect();
        let kind = TxKind::BillLease {
            lease,
            periods: ups.len() as u64,
            probes,
        };
        self.submit(&owner, kind)
            .map_err(refused(seq, "bill-lease"))
    }

    fn step(&mut self, op: LedgerOp) -> Result<(), SimError> {
        match op {
            LedgerOp::Open {
                seq,
                time_ms,
                user,
                resources,
                period_ms,
                periods,
                reserve,
                locations,
                bids,
                deposit,
            } => {
                self.at(time_ms);
                let user_key = self.user(user, deposit, seq)?;
                let mut nodes = Vec::with_capacity(bids.len());
                for bid in &bids {
                    nodes.push(self.farmer(bid)?);
                }
                let request = LeaseRequest {
                    user: user_key.account_id(),
                    salt: seq,
                    kind: SpaceKind::Container,
                    resources,
                    period_ms,
                    periods: Some(periods),
                    max_price_per_period: reserve,
                    filters: LeaseFilters {
                        locations,
                        ..LeaseFilters::default()
                    },
                    offers_until_ms: time_ms + MS_PER_HOUR,
                    activate_within_ms: ACTIVATE_WITHIN_MS,
                };
                let digest = request.digest();
                let offers = bids
                    .iter()
                    .zip(&nodes)
                    .map(|(bid, node)| {
                        let offer = LeaseOffer {
                            request: digest,
                            node: node.node_id(),
                            price_per_period: bid.price,
                            valid_until_ms: time_ms + MS_PER_HOUR,
                        };
                        Signed::new(offer, node)
                    })
                    .collect();
                let nonce = self.state.next_nonce(&user_key.public());
                let kind = TxKind::OpenLease {
                    request,
                    offers,
                    deposit,
                };
                self.submit(&user_key, kind)
                    .map_err(refused(seq, "open-lease"))?;
                let lease = LeaseId::derive(&user_key.account_id(), nonce);
                let winner = self
                    .state
                    .lease(&lease)
                    .and_then(|record| nodes.iter().position(|n| n.node_id() == record.node))
                    .and_then(|at| bids.get(at))
                    .map(|bid| bid.farmer)
                    .ok_or(SimError::LedgerThread)?;
                self.leases.insert(seq, (lease, user, winner));
                self.submit(&user_key, TxKind::ActivateLease { lease })
                    .map_err(refused(seq, "activate-lease"))
            }
            LedgerOp::Bill {
                seq,
                time_ms,
                first_period,
                ups,
            } => {
                self.at(time_ms);
                let (_, waiting) = self
                    .unbilled
                    .entry(seq)
                    .or_insert((first_period, Vec::new()));
                waiting.extend(ups);
                if waiting.len() >= BILL_BATCH_PERIODS {
                    self.bill(seq)?;
                }
                Ok(())
            }
            LedgerOp::Close {
                seq,
                time_ms,
                by_user,
            } => {
                self.at(time_ms);
                self.bill(seq)?;
                let (lease, user, farmer) = self.lease(seq)?;
                let signer = if by_user {
                    self.users
                        .get(&user)
                        .cloned()
                        .ok_or(SimError::LedgerThread)?
                } else {
                    self.owner_of(farmer)?
                };
                self.submit(&signer, TxKind::CloseLease { lease })
                    .map_err(refused(seq, "close-lease"))
            }
            LedgerOp::Settle { seq, time_ms } => {
                self.at(time_ms);
                self.bill(seq)?;
                let (lease, _, _) = self.lease(seq)?;
                let bank = self.bank.clone();
                self.submit(&bank, TxKind::SettleLease { lease })
                    .map_err(refused(seq, "settle-lease"))
            }
        }
    }
}

/// What the ledger sample showed.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LedgerCheck {
    /// Leases run on the ledger.
    pub leases: u64,
    /// Transactions applied (registrations, funding and the leases' own).
    pub transactions: u64,
    /// Paid to farmers on the ledger, base units.
    pub paid: u128,
    /// Refunded to users on the ledger, base units.
    pub refunded: u128,
}

/// Checks every sampled lease's ledger record against the fast path's:
/// the winner, the price, the deposit, what was paid and refunded, and
/// how many periods were billed up and down.
pub fn cross_check(
    fast: &BTreeMap<u64, LeaseRecord>,
    outcome: &LedgerOutcome,
) -> Result<LedgerCheck, SimError> {
    let mut check = LedgerCheck {
        transactions: outcome.transactions,
        ..LedgerCheck::default()
    };
    for (seq, mine) in fast {
        let Some(theirs) = outcome.records.get(seq) else {
            return Err(mismatch(*seq, "presence", "missing", "open"));
        };
        let fields: [(&'static str, String, String); 8] = [
            ("node", theirs.node.to_string(), mine.node.to_string()),
            (
                "price_per_period",
                theirs.price_per_period.to_string(),
                mine.price_per_period.to_string(),
            ),
            (
                "deposited",
                theirs.deposited.to_string(),
                mine.deposited.to_string(),
            ),
            ("paid", theirs.paid.to_string(), mine.paid.to_string()),
            (
                "refunded",
                theirs.refunded.to_string(),
                mine.refunded.to_string(),
            ),
            (
                "periods_up",
                theirs.periods_up.to_string(),
                mine.periods_up.to_string(),
            ),
            (
                "periods_down",
                theirs.periods_down.to_string(),
                mine.periods_down.to_string(),
            ),
            (
                "status",
                theirs.status.name().to_string(),
                mine.status.name().to_string(),
            ),
        ];
        for (field, ledger, fast) in fields {
            if ledger != fast {
                return Err(mismatch(*seq, field, ledger, fast));
            }
        }
        check.leases += 1;
        check.paid += theirs.paid.base_units();
        check.refunded += theirs.refunded.base_units();
    }
    if outcome.records.len() != fast.len() {
        return Err(mismatch(
            0,
            "sampled leases",
            outcome.records.len(),
            fast.len(),
        ));
    }
    Ok(check)
}

fn mismatch(
    lease: u64,
    field: &'static str,
    ledger: impl ToString,
    fast: impl ToString,
) -> SimError {
    SimError::LedgerMismatch {
        lease,
        field,
        ledger: ledger.to_string(),
        fast: fast.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_ledger::LeaseStatus;
    use peercloud_types::{NodeId, PublicKey, SpaceKind};

    fn record() -> LeaseRecord {
        LeaseRecord {
            user: keypair(1, "user", 0).account_id(),
            node: NodeId(PublicKey([3; 32])),
            request: Hash32::ZERO,
            kind: SpaceKind::Container,
            resources: Resources::default(),
            price_per_period: Amount::from_base_units(10),
            period_ms: MS_PER_HOUR,
            max_periods: Some(2),
            opened_ms: EPOCH_MS,
            activate_by_ms: EPOCH_MS + MS_PER_HOUR,
            deposited: Amount::from_base_units(20),
            paid: Amount::from_base_units(20),
            refunded: Amount::ZERO,
            next_period: 2,
            periods_up: 2,
            periods_down: 0,
            low_warned: false,
            status: LeaseStatus::Settled,
        }
    }

    #[test]
    fn the_cross_check_names_the_first_field_that_differs() {
        let fast: BTreeMap<u64, LeaseRecord> = [(7, record())].into();
        let mut outcome = LedgerOutcome {
            records: fast.clone(),
            transactions: 5,
        };
        let check = cross_check(&fast, &outcome);
        assert!(check.is_ok_and(|c| c.leases == 1 && c.paid == 20));
        // The user differs between the paths (fake and real keys): not compared.
        if let Some(r) = outcome.records.get_mut(&7) {
            r.user = keypair(2, "user", 0).account_id();
        }
        assert!(cross_check(&fast, &outcome).is_ok());
        if let Some(r) = outcome.records.get_mut(&7) {
            r.paid = Amount::from_base_units(19);
            r.refunded = Amount::from_base_units(1);
        }
        let error = cross_check(&fast, &outcome).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("sampled lease #7: the ledger has paid = 0.000000019, the fast path 0.00000002")
        );
        outcome.records.clear();
        assert!(cross_check(&fast, &outcome).is_err());
    }
}
