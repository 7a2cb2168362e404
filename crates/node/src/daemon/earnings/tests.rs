//! The earnings record's tests: payments in order, kept across reopens,
//! the detail bounded, the totals forever, formats.

use super::*;
use crate::genesis::Genesis;
use peercloud_ledger::{GenesisConfig, Params, Tx, TxKind};
use peercloud_types::{AccountId, Keypair};

fn node(seed: u8) -> NodeId {
    Keypair::from_seed(&[seed; 32]).node_id()
}

fn paid(bucket: u8, to: u8, amount: u128, paid_for: PaidFor) -> Event {
    Event::Storage(StorageEvent::StoragePaid {
        bucket: BucketId(Hash32([bucket; 32])),
        node: Some(node(to)),
        to: AccountId(Keypair::from_seed(&[to; 32]).public()),
        amount: Amount::from_base_units(amount),
        paid_for,
    })
}

fn managers_fee(bucket: u8, amount: u128) -> Event {
    Event::Storage(StorageEvent::StoragePaid {
        bucket: BucketId(Hash32([bucket; 32])),
        node: None,
        to: AccountId(Keypair::from_seed(&[9; 32]).public()),
        amount: Amount::from_base_units(amount),
        paid_for: PaidFor::Storage,
    })
}

#[test]
fn records_this_nodes_payments_in_order_and_keeps_them_across_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(EARNINGS_FILE);
    let me = node(1);
    let earnings = Earnings::open(&path, me).expect("open");
    assert_eq!(earnings.next_height().expect("height"), 0);
    let empty = earnings.summary(10).expect("summary");
    assert_eq!(empty.recorded_height, None);
    assert_eq!(empty.totals, Totals::default());

    assert_eq!(
        earnings.record(0, 100, &[]).expect("genesis"),
        Recorded::Block { payments: 0 }
    );
    let block = [
        paid(5, 1, 300, PaidFor::Storage),
        paid(5, 2, 999, PaidFor::Storage),
        managers_fee(5, 50),
        paid(5, 1, 40, PaidFor::Repair),
        paid(5, 1, 70, PaidFor::Bandwidth),
    ];
    assert_eq!(
        earnings.record(1, 200, &block).expect("bill"),
        Recorded::Block { payments: 3 }
    );
    // A block twice is recorded once; a block ahead of the next is refused.
    assert_eq!(
        earnings.record(1, 200, &block).expect("again"),
        Recorded::Already
    );
    let gap = earnings.record(3, 400, &block).expect_err("a gap");
    assert!(
        gap.to_string().contains("is at block 2, was given block 3"),
        "{gap}"
    );
    earnings
        .record(2, 300, &[paid(6, 1, 5, PaidFor::Storage)])
        .expect("second bucket");
    drop(earnings);

    let earnings = Earnings::open(&path, me).expect("reopen");
    let summary = earnings.summary(2).expect("summary");
    assert_eq!(summary.recorded_height, Some(2));
    assert_eq!(
        summary.totals,
        Totals {
            storage: Amount::from_base_units(305),
            bandwidth: Amount::from_base_units(70),
            repair: Amount::from_base_units(40),
            payments: 4,
        }
    );
    let five = BucketId(Hash32([5; 32]));
    let six = BucketId(Hash32([6; 32]));
    assert_eq!(
        summary.buckets,
        vec![
            (
                five,
                Totals {
                    storage: Amount::from_base_units(300),
                    bandwidth: Amount::from_base_units(70),
                    repair: Amount::from_base_units(40),
                    payments: 3,
                }
            ),
            (
                six,
                Totals {
                    storage: Amount::from_base_units(5),
                    bandwidth: Amount::ZERO,
                    repair: Amount::ZERO,
                    payments: 1,
                }
            ),
        ]
    );
    // Newest first, as many as asked.
    let newest = Payment {
        height: 2,
        time_ms: 300,
        bucket: six,
        amount: Amount::from_base_units(5),
        paid_for: PaidFor::Storage,
    };
    let before = Payment {
        height: 1,
        time_ms: 200,
        bucket: five,
        amount: Amount::from_base_units(70),
        paid_for: PaidFor::Bandwidth,
    };
    assert_eq!(summary.recent, vec![newest, before]);
    assert_eq!(earnings.summary(0).expect("summary").recent, vec![]);
}

#[test]
fn keeps_the_last_payments_in_detail_and_the_totals_forever() {
    let dir = tempfile::tempdir().expect("tempdir");
    let earnings =
        Earnings::open_keeping(&dir.path().join(EARNINGS_FILE), node(1), 3).expect("open");
    for height in 0..5u64 {
        let amount = u128::from(height) + 1;
        earnings
            .record(height, height * 10, &[paid(1, 1, amount, PaidFor::Storage)])
            .expect("record");
    }
    let summary = earnings.summary(100).expect("summary");
    let heights: Vec<u64> = summary.recent.iter().map(|p| p.height).collect();
    assert_eq!(heights, [4, 3, 2]);
    assert_eq!(summary.totals.payments, 5);
    assert_eq!(summary.totals.storage, Amount::from_base_units(15));
    assert_eq!(summary.buckets[0].1.payments, 5);
}

fn transfer(chain: &Chain, from: &Keypair, to: &Keypair) -> peercloud_types::Signed<Tx> {
    let state = chain.state();
    peercloud_types::Signed::new(
        Tx {
            chain: state.chain_id(),
            nonce: state.next_nonce(&from.public()),
            fee: state.params().min_fee,
            kind: TxKind::Transfer {
                to: to.account_id(),
                amount: Amount::from_tokens(1),
            },
        },
        from,
    )
}

#[test]
fn a_record_behind_the_chain_catches_up_from_the_block_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (validator, alice, bob) = (
        Keypair::generate(),
        Keypair::generate(),
        Keypair::generate(),
    );
    let config = GenesisConfig {
        params: Params {
            genesis_authority: validator.account_id(),
            validator: validator.public(),
            treasury: validator.account_id(),
            min_fee: Amount::from_base_units(100_000),
            stake_min_to_serve: Amount::from_tokens(10),
            slash_bps: 1_000,
        },
        allocations: vec![(alice.account_id(), Amount::from_tokens(1_000))],
        time_ms: 1_000,
    };
    let genesis = Genesis::create(&config, &validator).expect("genesis");
    let mut chain = Chain::open(dir.path(), &genesis).expect("chain");
    for time in [2_000, 3_000, 4_000] {
        let tx = transfer(&chain, &alice, &bob);
        let (block, _) = chain.propose(vec![tx], time, &validator).expect("block");
        assert!(block.is_some());
    }
    let earnings = Earnings::open(&dir.path().join(EARNINGS_FILE), node(1)).expect("open");
    // A new record on a chain of four blocks replays them all, once.
    assert_eq!(earnings.catch_up(&chain).expect("catch up"), 4);
    assert_eq!(earnings.next_height().expect("height"), 4);
    assert_eq!(earnings.catch_up(&chain).expect("caught up"), 0);
    // The next block is recorded as it commits; one missed is caught up.
    let tx = transfer(&chain, &alice, &bob);
    let (block, _) = chain.propose(vec![tx], 5_000, &validator).expect("block");
    let block = block.expect("a block");
    let recorded = earnings.record(4, 5_000, &block.events).expect("record");
    assert_eq!(recorded, Recorded::Block { payments: 0 });
    let tx = transfer(&chain, &alice, &bob);
    chain.propose(vec![tx], 6_000, &validator).expect("block");
    assert_eq!(earnings.catch_up(&chain).expect("catch up"), 1);
    assert_eq!(
        earnings.summary(10).expect("summary").recorded_height,
        Some(5)
    );
}

#[test]
fn another_format_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(EARNINGS_FILE);
    {
        let db = Database::create(&path).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .insert("format", 99)
            .expect("insert");
        txn.commit().expect("commit");
    }
    let err = Earnings::open(&path, node(1))
        .expect_err("format 99")
        .to_string();
    assert!(
        err.contains("format 99") && err.contains(EARNINGS_FILE),
        "{err}"
    );
}
