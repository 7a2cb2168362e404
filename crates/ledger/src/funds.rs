//! Moving tokens in and out of an account's balance: the helpers every
//! handler (`apply.rs`, `jobs.rs`, `clusters.rs`, `audits.rs`) uses to
//! charge, pay, lock and refund, and the one rule of how much a slash takes.
//! Each is checked arithmetic and one journaled write to the accounts table,
//! so a refused transaction rolls it back with everything else.

use peercloud_types::{AccountId, Amount};

use crate::error::TxError;
use crate::params::BPS_DENOMINATOR;
use crate::records::Account;
use crate::state::State;

/// `id`'s account record, or an empty one if it has none yet.
pub(crate) fn account_or_default(state: &State, id: &AccountId) -> Account {
    state.accounts.get(id).copied().unwrap_or_default()
}

/// Takes `amount` from `account`'s balance.
pub(crate) fn debit(state: &mut State, account: &AccountId, amount: Amount) -> Result<(), TxError> {
    let mut record = account_or_default(state, account);
    record.balance = record
        .balance
        .checked_sub(amount)
        .ok_or(TxError::InsufficientFunds {
            account: *account,
            needed: amount,
            available: record.balance,
        })?;
    state.accounts.put(*account, record);
    Ok(())
}

/// Adds `amount` to `account`'s balance.
pub(crate) fn credit(
    state: &mut State,
    account: &AccountId,
    amount: Amount,
) -> Result<(), TxError> {
    let mut record = account_or_default(state, account);
    record.balance = record
        .balance
        .checked_add(amount)
        .ok_or(TxError::Overflow { what: "a balance" })?;
    state.accounts.put(*account, record);
    Ok(())
}

/// The part of `stake` a slash takes: `floor(stake × slash_bps / 10 000)`
/// (the chain's `slash_bps`), for a job's dissenter and a member judged by
/// its audits alike. The caller moves it to the treasury.
pub(crate) fn slash_share(state: &State, stake: Amount) -> Result<Amount, TxError> {
    let slash_bps = u128::from(state.params().slash_bps);
    stake
        .checked_mul_div(slash_bps, u128::from(BPS_DENOMINATOR))
        .ok_or(TxError::Overflow { what: "a slash" })
}
