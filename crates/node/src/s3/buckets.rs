//! Bucket operations: an S3 name resolves to a ledger bucket of the
//! caller's wallet ([`super::names`]); creating one submits `CreateBucket`
//! on the key's cluster and funds it with the key's deposit; deleting one
//! (empty) closes it on the ledger, which refunds the rest of its deposit.

use std::time::{Duration, UNIX_EPOCH};

use peercloud_api::BucketState;
use peercloud_client::{NodeApi, bucket as flows, submit_signed};
use peercloud_ledger::{BucketId, Tx, TxKind};
use peercloud_types::clock::now_ms;
use peercloud_types::{Keypair, Signed};
use s3s::dto::{Bucket, Timestamp};
use s3s::{S3Error, S3Result, s3_error};

use super::keys::S3Key;
use super::{Gateway, internal};
use crate::web::site_of_label;

/// A bucket of the caller's, resolved from its S3 name.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    pub id: BucketId,
    pub wallet: Keypair,
}

/// A ledger time as S3 shows it.
pub(super) fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

impl Gateway {
    /// The caller's bucket named `name`: by the name it was created under
    /// here, or by its site label; the wallet must own it and it must not
    /// be closed or expired.
    pub(super) fn resolve(&self, key: &S3Key, name: &str) -> S3Result<Resolved> {
        let wallet = key.wallet();
        let owner = wallet.account_id();
        let id = match self.names.bucket(&owner, name).map_err(internal)? {
            Some((id, _)) => id,
            None => site_of_label(name).ok_or_else(|| no_such_bucket(name))?,
        };
        let chain = self.inner.chain();
        let record = chain
            .state()
            .bucket(&id)
            .ok_or_else(|| no_such_bucket(name))?;
        if record.owner != owner {
            return Err(no_such_bucket(name));
        }
        Ok(Resolved { id, wallet })
    }

    pub(super) fn list_my_buckets(&self, key: &S3Key) -> S3Result<Vec<Bucket>> {
        let owner = key.wallet().account_id();
        let named = self.names.buckets(&owner).map_err(internal)?;
        let chain = self.inner.chain();
        let state = chain.state();
        Ok(named
            .into_iter()
            .filter(|(_, id, _)| state.bucket(id).is_some_and(|b| b.owner == owner))
            .map(|(name, _, created_ms)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(created_ms)),
                bucket_region: None,
            })
            .collect())
    }

    /// Creates a bucket on the ledger for the key's wallet, funds it with
    /// the key's deposit and names it `name`.
    pub(super) async fn create(&self, key: S3Key, name: String) -> S3Result<()> {
        // One create at a time: two of one name must not both make (and
        // fund) a bucket, and a wallet's transactions take nonces in turn.
        let _one = self.creating.lock().await;
        let owner = key.wallet().account_id();
        if self
            .names
            .bucket(&owner, &name)
            .map_err(internal)?
            .is_some()
        {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        let cluster = key.cluster;
        let deposit = key.deposit;
        let id = self
            .blocking(move |node| {
                let wallet = key.wallet();
                // Signed here, so the id comes from the nonce the
                // transaction carries.
                let account = node.account(&wallet.account_id()).map_err(internal)?;
                let nonce = account.next_nonce;
                let tx = Signed::new(
                    Tx {
                        chain: account.chain,
                        nonce,
                        fee: account.min_fee,
                        kind: TxKind::CreateBucket {
                            cluster,
                            public: false,
                        },
                    },
                    &wallet,
                );
                node.submit(&tx, true).map_err(|e| {
                    s3_error!(InvalidRequest, "the ledger refused the new bucket: {e}")
                })?;
                let id = BucketId::derive(&wallet.account_id(), nonce);
                node.bucket(&id).map_err(|e| {
                    s3_error!(
                        InvalidRequest,
                        "the new bucket is not on the ledger ({e}): another transaction of this wallet took its nonce"
                    )
                })?;
                if !deposit.is_zero() {
                    let kind = TxKind::DepositBucket { bucket: id, amount: deposit };
                    submit_signed(node, &wallet, kind, true).map_err(|e| {
                        s3_error!(InvalidRequest, "the new bucket's deposit was refused: {e}")
                    })?;
                }
                Ok(id)
            })
            .await?;
        if !self
            .names
            .name_bucket(&owner, &name, &id, now_ms())
            .map_err(internal)?
        {
            return Err(s3_error!(BucketAlreadyOwnedByYou));
        }
        Ok(())
    }

    /// Closes the caller's empty bucket (its deposit goes back) and forgets
    /// its name.
    pub(super) async fn delete(&self, key: S3Key, name: String) -> S3Result<()> {
        let bucket = self.resolve(&key, &name)?;
        let id = bucket.id;
        self.blocking(move |node| {
            let objects = flows::list(node, &id, "").map_err(internal)?;
            if !objects.is_empty() {
                return Err(s3_error!(BucketNotEmpty));
            }
            let view = node.bucket(&id).map_err(internal)?;
            if matches!(view.status, BucketState::Active | BucketState::ReadOnly) {
                submit_signed(
                    node,
                    &bucket.wallet,
                    TxKind::CloseBucket { bucket: id },
                    true,
                )
                .map_err(|e| s3_error!(InvalidRequest, "the ledger refused to close it: {e}"))?;
            }
            Ok(())
        })
        .await?;
        self.names
            .forget_bucket(&key.wallet().account_id(), &name)
            .map_err(internal)
    }
}

pub(super) fn no_such_bucket(name: &str) -> S3Error {
    s3_error!(NoSuchBucket, "no bucket {name:?} of this key's wallet")
}
