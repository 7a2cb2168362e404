//! Signing a transaction with a wallet and submitting it: the nonce comes
//! from the node's view of the account, so the wallet keeps no state.

use peercloud_ledger::{Tx, TxKind};
use peercloud_types::{Amount, Keypair, Signed};

use super::{ClientError, NodeClient};
use crate::api::model::TxReceipt;

/// Reads the wallet's next nonce from the node, signs `Tx { nonce, fee, kind }`
/// with `key` and submits it; with `wait` the receipt names the block holding
/// it. The fee is usually [`crate::grid::TX_FEE`].
///
/// Two submits from the same wallet at once may read the same nonce; the
/// ledger refuses the second (`tx_refused`), and submitting again fixes it.
pub fn submit_signed(
    client: &NodeClient,
    key: &Keypair,
    kind: TxKind,
    fee: Amount,
    wait: bool,
) -> Result<TxReceipt, ClientError> {
    let account = client.account(&key.account_id())?;
    let tx = Signed::new(
        Tx {
            nonce: account.next_nonce,
            fee,
            kind,
        },
        key,
    );
    client.submit(&tx, wait)
}
