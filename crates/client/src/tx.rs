//! Signing a transaction with a wallet and submitting it: the nonce and the
//! fee come from the node's view of the account and the ledger's params, so
//! the wallet keeps no state.

use peercloud_api::TxReceipt;
use peercloud_ledger::{Tx, TxKind};
use peercloud_types::{Keypair, Signed};

use crate::{ClientError, NodeApi};

/// Reads the wallet's next nonce and the ledger's fee from the node, signs
/// `Tx { nonce, fee, kind }` with `key` and submits it; with `wait` the
/// receipt names the block holding it.
///
/// Two submits from the same wallet at once may read the same nonce; the
/// ledger refuses the second (`tx_refused`), and submitting again fixes it.
pub fn submit_signed(
    node: &impl NodeApi,
    key: &Keypair,
    kind: TxKind,
    wait: bool,
) -> Result<TxReceipt, ClientError> {
    submit_signed_at(node, key, kind, wait).map(|(receipt, _)| receipt)
}

/// [`submit_signed`], also returning the nonce the transaction took (what
/// an id derived from the signer and nonce, a lease's say, is made of).
pub fn submit_signed_at(
    node: &impl NodeApi,
    key: &Keypair,
    kind: TxKind,
    wait: bool,
) -> Result<(TxReceipt, u64), ClientError> {
    let account = node.account(&key.account_id())?;
    let tx = Signed::new(
        Tx {
            chain: account.chain,
            nonce: account.next_nonce,
            fee: account.min_fee,
            kind,
        },
        key,
    );
    Ok((node.submit(&tx, wait)?, account.next_nonce))
}
