//! The validator's held queue: transactions whose nonce is ahead of their
//! signer's next one (an earlier transaction of the same signer is still on
//! its way). Held in nonce order per signer, bounded per signer and in all,
//! each for [`HELD_TX_MS`] from when it first arrived (a retry does not
//! restart the clock), and only for a signer who can pay its fee now.

use std::collections::BTreeMap;

use peercloud_ledger::{State, Tx, TxError};
use peercloud_types::{AccountId, Hash32, PublicKey, Signed};

/// How long a held transaction waits for the gap before it to close.
pub(crate) const HELD_TX_MS: u64 = 30_000;
/// Held transactions per signer: a client pipelines a few dozen at most.
pub(crate) const HELD_PER_SIGNER_MAX: usize = 64;
/// Held transactions in all: a block's worth, so the queue never outweighs
/// the mempool (and one signer's share is a small part of it).
pub(crate) const HELD_MAX: usize = 4_096;

/// Why a transaction was not held.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HoldError {
    /// The signer cannot pay the fee even now.
    #[error(transparent)]
    Unfunded(TxError),
    /// The signer already has the most transactions held.
    #[error("{HELD_PER_SIGNER_MAX} transactions of {signer} already wait for an earlier nonce")]
    SignerFull {
        /// The signer.
        signer: AccountId,
    },
    /// The queue is full.
    #[error("{HELD_MAX} transactions already wait for an earlier nonce")]
    Full,
}

#[derive(Debug)]
struct Entry {
    since_ms: u64,
    hash: Hash32,
    tx: Signed<Tx>,
}

/// Whether `tx`'s signer can pay its fee on `state` now: the one condition a
/// transaction ahead of its nonce must meet to be held (or relayed).
pub(crate) fn can_pay_fee(state: &State, tx: &Signed<Tx>) -> Result<(), TxError> {
    let account = AccountId(tx.signer);
    let available = state.balance(&account);
    if available < tx.body.fee {
        return Err(TxError::InsufficientFunds {
            account,
            needed: tx.body.fee,
            available,
        });
    }
    Ok(())
}

/// Transactions ahead of their signer's nonce, by (signer, nonce).
#[derive(Debug, Default)]
pub(crate) struct Held {
    entries: BTreeMap<(PublicKey, u64), Entry>,
    per_signer: BTreeMap<PublicKey, usize>,
}

impl Held {
    /// How many are held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Holds `tx`, which `state` refused only for a nonce ahead of the
    /// signer's. The same transaction again keeps its first arrival time; a
    /// different one at the same nonce replaces it (the signer's latest word).
    pub(crate) fn hold(
        &mut self,
        state: &State,
        tx: Signed<Tx>,
        now_ms: u64,
    ) -> Result<(), HoldError> {
        let signer = tx.signer;
        can_pay_fee(state, &tx).map_err(HoldError::Unfunded)?;
        let key = (signer, tx.body.nonce);
        let hash = tx.hash();
        if let Some(entry) = self.entries.get_mut(&key) {
            if entry.hash != hash {
                entry.hash = hash;
                entry.tx = tx;
            }
            return Ok(());
        }
        let count = self.per_signer.get(&signer).copied().unwrap_or(0);
        if count >= HELD_PER_SIGNER_MAX {
            return Err(HoldError::SignerFull {
                signer: AccountId(signer),
            });
        }
        if self.entries.len() >= HELD_MAX {
            return Err(HoldError::Full);
        }
        self.entries.insert(
            key,
            Entry {
                since_ms: now_ms,
                hash,
                tx,
            },
        );
        self.per_signer.insert(signer, count + 1);
        Ok(())
    }

    /// Takes out, in nonce order, every held transaction that is next for its
    /// signer on `state` (and the run of nonces right after it), up to `max`;
    /// drops the expired ones and those whose nonce is already used.
    pub(crate) fn take_ready(&mut self, state: &State, now_ms: u64, max: usize) -> Vec<Signed<Tx>> {
        let mut ready = Vec::new();
        let mut gone = Vec::new();
        let mut signer_next: Option<(PublicKey, u64)> = None;
        for (&(signer, nonce), entry) in &self.entries {
            let next = match signer_next {
                Some((s, next)) if s == signer => next,
                _ => state.next_nonce(&signer),
            };
            if nonce < next || now_ms.saturating_sub(entry.since_ms) >= HELD_TX_MS {
                gone.push((signer, nonce));
                signer_next = Some((signer, next));
            } else if nonce == next && ready.len() < max {
                ready.push((signer, nonce));
                signer_next = Some((signer, next + 1));
            } else {
                signer_next = Some((signer, next));
            }
        }
        for key in &gone {
            self.remove(key);
        }
        ready.iter().filter_map(|key| self.remove(key)).collect()
    }

    fn remove(&mut self, key: &(PublicKey, u64)) -> Option<Signed<Tx>> {
        let entry = self.entries.remove(key)?;
        if let Some(count) = self.per_signer.get_mut(&key.0) {
            *count -= 1;
            if *count == 0 {
                self.per_signer.remove(&key.0);
            }
        }
        Some(entry.tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_ledger::{GenesisConfig, Params, TxKind, apply_block};
    use peercloud_types::{Amount, Keypair};

    struct World {
        state: State,
        rich: Keypair,
        poor: Keypair,
    }

    fn world() -> World {
        let validator = Keypair::generate();
        let rich = Keypair::generate();
        let config = GenesisConfig {
            params: Params {
                genesis_authority: validator.account_id(),
                validator: validator.public(),
                treasury: validator.account_id(),
                min_fee: Amount::from_base_units(100),
                stake_min_to_serve: Amount::from_tokens(10),
                slash_bps: 1_000,
            },
            allocations: vec![(rich.account_id(), Amount::from_tokens(1_000))],
            time_ms: 1_000,
        };
        let (_, built) = config.build(&validator, &validator, Vec::new()).unwrap();
        let mut state = State::new(config.params.clone()).unwrap();
        apply_block(&mut state, &built.block).unwrap();
        World {
            state,
            rich,
            poor: Keypair::generate(),
        }
    }

    fn tx(world: &World, key: &Keypair, nonce: u64, amount: u64) -> Signed<Tx> {
        Signed::new(
            Tx {
                chain: world.state.chain_id(),
                nonce,
                fee: world.state.params().min_fee,
                kind: TxKind::Transfer {
                    to: world.poor.account_id(),
                    amount: Amount::from_base_units(u128::from(amount)),
                },
            },
            key,
        )
    }

    fn nonces(txs: &[Signed<Tx>]) -> Vec<u64> {
        txs.iter().map(|t| t.body.nonce).collect()
    }

    #[test]
    fn an_unfunded_signer_is_not_held() {
        let w = world();
        let mut held = Held::default();
        let err = held.hold(&w.state, tx(&w, &w.poor, 5, 1), 0).unwrap_err();
        assert!(matches!(err, HoldError::Unfunded(_)), "{err}");
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn held_runs_come_out_in_order_once_the_gap_closes() {
        let w = world();
        let mut held = Held::default();
        // Next nonce is 1: hold 3, 4 and 6 (a second gap at 5).
        for nonce in [6, 3, 4] {
            held.hold(&w.state, tx(&w, &w.rich, nonce, 1), 0).unwrap();
        }
        assert!(held.take_ready(&w.state, 1, 100).is_empty());
        assert_eq!(held.len(), 3);
        let mut state = w.state.clone();
        // Nonces 1 and 2 land: 3 and 4 are ready, 6 still waits for 5.
        for nonce in [1, 2] {
            let ctx = peercloud_ledger::BlockContext {
                height: state.next_height(),
                time_ms: 2_000,
                seed: Hash32::ZERO,
            };
            peercloud_ledger::apply(&mut state, &tx(&w, &w.rich, nonce, 1), &ctx).unwrap();
        }
        assert_eq!(nonces(&held.take_ready(&state, 2, 100)), vec![3, 4]);
        assert_eq!(held.len(), 1);
    }

    #[test]
    fn the_clock_starts_at_first_arrival_and_retries_do_not_restart_it() {
        let w = world();
        let mut held = Held::default();
        held.hold(&w.state, tx(&w, &w.rich, 3, 1), 0).unwrap();
        held.hold(&w.state, tx(&w, &w.rich, 3, 1), HELD_TX_MS - 1)
            .unwrap();
        assert!(held.take_ready(&w.state, HELD_TX_MS - 1, 100).is_empty());
        assert_eq!(held.len(), 1);
        assert!(held.take_ready(&w.state, HELD_TX_MS, 100).is_empty());
        assert_eq!(held.len(), 0, "expired {HELD_TX_MS} ms after it first came");
    }

    #[test]
    fn bounded_per_signer_and_in_all() {
        let w = world();
        let mut held = Held::default();
        for nonce in 0..HELD_PER_SIGNER_MAX as u64 {
            held.hold(&w.state, tx(&w, &w.rich, 10 + nonce, 1), 0)
                .unwrap();
        }
        let err = held
            .hold(&w.state, tx(&w, &w.rich, 1_000, 1), 0)
            .unwrap_err();
        assert!(matches!(err, HoldError::SignerFull { .. }), "{err}");
        // A new transaction at a held nonce replaces it without growing.
        held.hold(&w.state, tx(&w, &w.rich, 10, 2), 0).unwrap();
        assert_eq!(held.len(), HELD_PER_SIGNER_MAX);
        // Many funded signers fill the whole queue, then it refuses.
        let mut state = w.state.clone();
        let ctx = peercloud_ledger::BlockContext {
            height: state.next_height(),
            time_ms: 2_000,
            seed: Hash32::ZERO,
        };
        let mut nonce = 1;
        let mut signers = Vec::new();
        while held.len() + signers.len() * HELD_PER_SIGNER_MAX < HELD_MAX + HELD_PER_SIGNER_MAX {
            let key = Keypair::generate();
            let fund = Signed::new(
                Tx {
                    chain: state.chain_id(),
                    nonce,
                    fee: state.params().min_fee,
                    kind: TxKind::Transfer {
                        to: key.account_id(),
                        amount: Amount::from_tokens(1),
                    },
                },
                &w.rich,
            );
            peercloud_ledger::apply(&mut state, &fund, &ctx).unwrap();
            nonce += 1;
            signers.push(key);
        }
        let mut refused = None;
        'fill: for key in &signers {
            for n in 0..HELD_PER_SIGNER_MAX as u64 {
                if let Err(e) = held.hold(&state, tx(&w, key, 5 + n, 1), 0) {
                    refused = Some(e);
                    break 'fill;
                }
            }
        }
        assert_eq!(refused, Some(HoldError::Full));
        assert_eq!(held.len(), HELD_MAX);
    }
}
