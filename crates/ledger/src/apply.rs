//! `apply`: one signed transaction against the state, all or nothing.
//!
//! Every transaction goes through the same gate: the signature (unless the
//! block already batch-verified it), the signer's nonce, the fee to the
//! treasury, then its handler. Handlers mutate the state freely; on any error
//! the journal rolls back everything the transaction did, fee and nonce
//! included, so a refused transaction leaves no trace. Job handlers live in
//! `jobs.rs`; clusters, buckets and audits in `clusters.rs`, `buckets.rs`
//! and `audits.rs`; accounts, stake and nodes here; balance moves in
//! `funds.rs`.

use peercloud_types::{AccountId, Amount, NodeId, PriceSheet, Resources, Signed};

use crate::error::TxError;
use crate::event::Event;
use crate::funds::{account_or_default, credit, debit};
use crate::jobs;
use crate::params::{GENESIS_ALLOCATIONS_MAX, REPUTATION_START};
use crate::records::NodeRecord;
use crate::state::State;
use crate::tx::{Tx, TxKind, verify_registration_proof};
use crate::{audits, buckets, clusters, leases};

// The type lives in `context.rs`; re-exported so `apply::BlockContext` keeps working.
pub use crate::context::BlockContext;

// The bound lives with the other constants; kept here by its old path.
pub use crate::params::LOCATION_BYTES_MAX;

/// Applies `tx` to `state`: checks its signature, nonce and fee, runs it, and
/// returns what it did. On error the state is exactly as before.
pub fn apply(
    state: &mut State,
    tx: &Signed<Tx>,
    ctx: &BlockContext,
) -> Result<Vec<Event>, TxError> {
    tx.verify()
        .map_err(|_| TxError::BadSignature { signer: tx.signer })?;
    apply_verified(state, tx, ctx)
}

/// Checks `tx` as [`apply`] would, then undoes it: the events it would emit,
/// or why it would be refused. For a mempool or an API that answers "would
/// this pass?" without cloning the state. The state's records and root are
/// unchanged afterwards (the touched keys are re-hashed and re-written at the
/// next block, with their unchanged values).
pub fn dry_run(
    state: &mut State,
    tx: &Signed<Tx>,
    ctx: &BlockContext,
) -> Result<Vec<Event>, TxError> {
    tx.verify()
        .map_err(|_| TxError::BadSignature { signer: tx.signer })?;
    state.begin();
    let mut events = Vec::new();
    let outcome = execute(state, tx, ctx, &mut events);
    state.rollback();
    outcome.map(|()| events)
}

/// [`apply`] for a transaction whose signature the caller has verified (a
/// block batch-verifies all its transactions first).
pub(crate) fn apply_verified(
    state: &mut State,
    tx: &Signed<Tx>,
    ctx: &BlockContext,
) -> Result<Vec<Event>, TxError> {
    state.begin();
    let mut events = Vec::new();
    match execute(state, tx, ctx, &mut events) {
        Ok(()) => {
            state.commit();
            debug_assert_eq!(
                state.check_invariants(),
                Ok(()),
                "after {}",
                tx.body.kind.name()
            );
            Ok(events)
        }
        Err(error) => {
            state.rollback();
            Err(error)
        }
    }
}

fn execute(
    state: &mut State,
    tx: &Signed<Tx>,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let signer = AccountId(tx.signer);
    let body = &tx.body;
    let chain = state.chain_id();
    if body.chain != chain {
        return Err(TxError::WrongChain {
            expected: chain,
            got: body.chain,
        });
    }
    bump_nonce(state, &signer, body.nonce)?;
    if let TxKind::Genesis { allocations } = &body.kind {
        return genesis(state, &signer, body.fee, allocations, ctx, events);
    }
    let min_fee = state.params().min_fee;
    if body.fee < min_fee {
        return Err(TxError::FeeTooLow {
            fee: body.fee,
            min_fee,
        });
    }
    let payer = fee_payer(state, &signer, &body.kind)?;
    if !body.fee.is_zero() {
        let treasury = state.params().treasury;
        debit(state, &payer, body.fee)?;
        credit(state, &treasury, body.fee)?;
        events.push(Event::FeeCharged {
            payer,
            amount: body.fee,
        });
    }
    match &body.kind {
        TxKind::Genesis { .. } => Ok(()),
        TxKind::Transfer { to, amount } => transfer(state, &signer, to, *amount, events),
        TxKind::RegisterNode {
            node,
            proof,
            resources,
            location,
            prices,
        } => register_node(
            state, &signer, node, proof, resources, location, prices, ctx, events,
        ),
        TxKind::UpdateNode {
            node,
            resources,
            location,
            prices,
        } => update_node(state, &signer, node, resources, location, prices, events),
        TxKind::Stake { amount } => stake(state, &signer, *amount, events),
        TxKind::Unstake { amount } => unstake(state, &signer, *amount, events),
        TxKind::PostJob {
            spec_digest,
            redundancy,
            max_price_per_node,
            deadline_ms,
        } => {
            let post = jobs::Post {
                spec_digest: *spec_digest,
                redundancy: *redundancy,
                max_price_per_node: *max_price_per_node,
                deadline_ms: *deadline_ms,
            };
            jobs::post(state, &signer, body.nonce, post, ctx, events)
        }
        TxKind::AwardJob { job, offers } => jobs::award(state, &signer, job, offers, ctx, events),
        TxKind::SubmitResult {
            job,
            output_digest,
            fuel_used,
        } => {
            let claim = crate::records::ResultClaim {
                output_digest: *output_digest,
                fuel_used: *fuel_used,
            };
            jobs::submit(state, &NodeId(tx.signer), job, claim, ctx, events)
        }
        TxKind::SettleJob { job } => jobs::settle(state, job, ctx, events),
        TxKind::ExpireJob { job } => jobs::expire(state, job, ctx, events),
        TxKind::CancelJob { job } => jobs::cancel(state, &signer, job, events),
        TxKind::WithdrawResult { job } => {
            jobs::withdraw(state, &NodeId(tx.signer), job, ctx, events)
        }
        TxKind::CreateCluster {
            managers,
            threshold,
            terms,
        } => clusters::create(
            state, &signer, body.nonce, managers, *threshold, terms, events,
        ),
        TxKind::JoinCluster {
            cluster,
            node,
            capacity_bytes,
        } => clusters::join(state, &signer, cluster, node, *capacity_bytes, events),
        TxKind::ProposeCluster { cluster, action } => {
            clusters::propose(state, &signer, cluster, action, ctx, events)
        }
        TxKind::ApproveCluster { cluster, proposal } => {
            clusters::approve(state, &signer, cluster, *proposal, ctx, events)
        }
        TxKind::LeaveCluster { cluster, node } => {
            clusters::leave(state, &signer, cluster, node, events)
        }
        TxKind::CreateBucket { cluster, public } => {
            buckets::create(state, &signer, body.nonce, cluster, *public, ctx, events)
        }
        TxKind::DepositBucket { bucket, amount } => {
            buckets::deposit(state, &signer, bucket, *amount, events)
        }
        TxKind::CloseBucket { bucket } => buckets::close(state, &signer, bucket, ctx, events),
        TxKind::BillBucket {
            bucket,
            period,
            usage,
            receipts,
            repairs,
        } => {
            let bill = buckets::Bill {
                bucket: *bucket,
                period: *period,
                usage: usage.as_ref(),
                receipts,
                repairs,
            };
            buckets::bill(state, &signer, bill, ctx, events)
        }
        TxKind::ExpireBucket { bucket } => buckets::expire(state, bucket, ctx, events),
        TxKind::ReportAudit {
            cluster,
            auditor,
            node,
            epoch,
            cid,
        } => {
            let report = audits::Report {
                cluster: *cluster,
                auditor: *auditor,
                node: *node,
                epoch: *epoch,
                cid: *cid,
            };
            audits::report(state, &signer, &report, ctx, events)
        }
        TxKind::OpenLease {
            request,
            offers,
            deposit,
        } => {
            let open = leases::Open {
                request,
                offers,
                deposit: *deposit,
            };
            leases::open(state, &signer, body.nonce, open, ctx, events)
        }
        TxKind::ActivateLease { lease } => leases::activate(state, &signer, lease, ctx, events),
        TxKind::CancelLease { lease } => leases::cancel(state, &signer, lease, ctx, events),
        TxKind::ExtendLease { lease, amount } => {
            leases::extend(state, &signer, lease, *amount, ctx, events)
        }
        TxKind::BillLease {
            lease,
            periods,
            probes,
        } => {
            let bill = leases::Bill {
                lease: *lease,
                periods: *periods,
                probes,
            };
            leases::bill(state, &signer, bill, ctx, events)
        }
        TxKind::CloseLease { lease } => leases::close(state, &signer, lease, ctx, events),
        TxKind::SettleLease { lease } => leases::settle(state, lease, ctx, events),
    }
}

/// Who pays the fee: the signer, except for a result or a withdrawal, which
/// a node's key signs and its owner pays (node keys hold no tokens).
fn fee_payer(state: &State, signer: &AccountId, kind: &TxKind) -> Result<AccountId, TxError> {
    if let TxKind::SubmitResult { .. } | TxKind::WithdrawResult { .. } = kind {
        let node = NodeId(*signer.key());
        return state
            .node(&node)
            .map(|record| record.owner)
            .ok_or(TxError::UnknownNode { node });
    }
    Ok(*signer)
}

fn bump_nonce(state: &mut State, signer: &AccountId, nonce: u64) -> Result<(), TxError> {
    let mut account = account_or_default(state, signer);
    let expected = account
        .nonce
        .checked_add(1)
        .ok_or(TxError::Overflow { what: "nonce" })?;
    if nonce != expected {
        return Err(TxError::BadNonce {
            expected,
            got: nonce,
        });
    }
    account.nonce = nonce;
    state.accounts.put(*signer, account);
    Ok(())
}

fn genesis(
    state: &mut State,
    signer: &AccountId,
    fee: Amount,
    allocations: &[(AccountId, Amount)],
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if ctx.height != 0 {
        return Err(TxError::GenesisNotAtHeightZero { height: ctx.height });
    }
    let authority = state.params().genesis_authority;
    if *signer != authority {
        return Err(TxError::NotGenesisAuthority {
            authority,
            signer: *signer.key(),
        });
    }
    if !fee.is_zero() {
        return Err(TxError::GenesisFee { fee });
    }
    let mut meta = state.meta_record();
    if meta.genesis_done {
        return Err(TxError::GenesisAlreadyApplied);
    }
    if allocations.len() > GENESIS_ALLOCATIONS_MAX {
        return Err(TxError::TooManyAllocations {
            count: allocations.len(),
            max: GENESIS_ALLOCATIONS_MAX,
        });
    }
    for (to, amount) in allocations {
        credit(state, to, *amount)?;
        meta.minted = meta
            .minted
            .checked_add(*amount)
            .ok_or(TxError::Overflow { what: "the supply" })?;
        events.push(Event::Minted {
            to: *to,
            amount: *amount,
        });
    }
    meta.genesis_done = true;
    state.put_meta(meta);
    Ok(())
}

fn transfer(
    state: &mut State,
    from: &AccountId,
    to: &AccountId,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if amount.is_zero() {
        return Err(TxError::ZeroAmount { what: "transfer" });
    }
    if !to.key().is_usable() {
        return Err(TxError::UnusableAccount { account: *to });
    }
    debit(state, from, amount)?;
    credit(state, to, amount)?;
    events.push(Event::Transferred {
        from: *from,
        to: *to,
        amount,
    });
    Ok(())
}

fn check_location(location: &str) -> Result<(), TxError> {
    if location.len() > LOCATION_BYTES_MAX {
        return Err(TxError::LocationTooLong {
            bytes: location.len(),
            max: LOCATION_BYTES_MAX,
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn register_node(
    state: &mut State,
    owner: &AccountId,
    node: &NodeId,
    proof: &[u8; 64],
    resources: &Resources,
    location: &str,
    prices: &PriceSheet,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if state.node(node).is_some() {
        return Err(TxError::NodeAlreadyRegistered { node: *node });
    }
    check_location(location)?;
    if !verify_registration_proof(node, owner, proof) {
        return Err(TxError::BadRegistrationProof {
            node: *node,
            owner: *owner,
        });
    }
    let record = NodeRecord {
        owner: *owner,
        resources: *resources,
        location: location.to_owned(),
        prices: *prices,
        reputation: REPUTATION_START,
        registered_height: ctx.height,
        jobs_agreed: 0,
        jobs_faulted: 0,
        tally: crate::records::ReputationTally::default(),
    };
    state.nodes.put(*node, record);
    events.push(Event::NodeRegistered {
        node: *node,
        owner: *owner,
    });
    Ok(())
}

fn update_node(
    state: &mut State,
    signer: &AccountId,
    node: &NodeId,
    resources: &Resources,
    location: &str,
    prices: &PriceSheet,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    let mut record = state
        .node(node)
        .cloned()
        .ok_or(TxError::UnknownNode { node: *node })?;
    if record.owner != *signer {
        return Err(TxError::NotOwner {
            node: *node,
            owner: record.owner,
            signer: *signer,
        });
    }
    check_location(location)?;
    record.resources = *resources;
    record.location = location.to_owned();
    record.prices = *prices;
    state.nodes.put(*node, record);
    events.push(Event::NodeUpdated { node: *node });
    Ok(())
}

fn stake(
    state: &mut State,
    account: &AccountId,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if amount.is_zero() {
        return Err(TxError::ZeroAmount { what: "stake" });
    }
    debit(state, account, amount)?;
    let mut record = account_or_default(state, account);
    record.stake = record
        .stake
        .checked_add(amount)
        .ok_or(TxError::Overflow { what: "a stake" })?;
    state.accounts.put(*account, record);
    events.push(Event::Staked {
        account: *account,
        amount,
    });
    Ok(())
}

fn unstake(
    state: &mut State,
    account: &AccountId,
    amount: Amount,
    events: &mut Vec<Event>,
) -> Result<(), TxError> {
    if amount.is_zero() {
        return Err(TxError::ZeroAmount { what: "unstake" });
    }
    let mut record = account_or_default(state, account);
    if record.bound_awards > 0 {
        return Err(TxError::StakeBound {
            account: *account,
            awards: record.bound_awards,
        });
    }
    record.stake = record
        .stake
        .checked_sub(amount)
        .ok_or(TxError::InsufficientStake {
            account: *account,
            needed: amount,
            available: record.stake,
        })?;
    state.accounts.put(*account, record);
    credit(state, account, amount)?;
    events.push(Event::Unstaked {
        account: *account,
        amount,
    });
    Ok(())
}
