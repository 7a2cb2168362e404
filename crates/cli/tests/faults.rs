//! The devnet when something goes wrong: a provider that lies about its
//! result, a provider killed while it runs a job, a replica holder killed
//! under a stored object, a provider frozen mid-job, and a job no node can
//! take. Each test checks what the ledger did about it — who was paid,
//! slashed, refunded — and that no job is left hanging.

mod common;

use std::time::{Duration, Instant};

use common::{
    Net, OFFER_WINDOW_MS, POLL, PROVIDERS, bounded, fees, kernel_spec, local_run, minus, plus,
    random_file, store_get, store_put, wordcount_spec,
};
use peercloud_api::{JobView, WaitQuery};
use peercloud_client::{ApiStore, NodeClient};
use peercloud_client::{JobBundle, RemoteError, RunOptions, run_job};
use peercloud_ledger::JobState;
use peercloud_ledger::genesis::{
    BPS_DENOMINATOR, REPUTATION_PENALTY_DISAGREE, REPUTATION_PENALTY_MISSING,
};
use peercloud_node::genesis::{GENESIS_FILE, Genesis};
use peercloud_store::{ChunkStore, FsChunkStore, PlacementNode, rank, read_manifest};
use peercloud_types::{ContentId, JobId, Keypair, NodeId};

/// Bound of each fault test, devnet startup included; the slowest waits out
/// an 8 s job deadline.
const FAULT_LIMIT: Duration = Duration::from_secs(90);
/// Iterations of the kernel the killed (or frozen) provider runs: about 2 s in the
/// sandbox here, so the kill lands mid-run and the survivor still reports
/// well before the deadline even on a loaded machine.
const KERNEL_ITERATIONS: u64 = 1_000_000_000;
/// The killed-provider job's deadline: the survivor's run fits with room,
/// and waiting it out keeps the test short.
const KILL_DEADLINE_SECS: u64 = 8;
/// How long after the award the provider is killed (or frozen): past the
/// dispatch, into the run.
const FAULT_AFTER_AWARD: Duration = Duration::from_millis(600);
/// How long past the deadline a frozen provider may hold `run_job`: the
/// expiry's block and the client's polling take well under this.
const FROZEN_GRACE: Duration = Duration::from_secs(5);
/// How long the test waits for the job to be awarded.
const AWARD_WAIT: Duration = Duration::from_secs(30);
/// Size of the stored object: three full 1 MiB chunks and a partial fourth.
const OBJECT_BYTES: usize = (3 << 20) + 999;

/// The job `user` posts next through `client`'s node: its id is fixed by the
/// poster's next nonce, so the test can watch it while `run_job` drives it.
fn next_job(client: &NodeClient, user: &Keypair) -> JobId {
    let nonce = client
        .account(&user.account_id())
        .expect("the user's account")
        .next_nonce;
    JobId::derive(&user.account_id(), nonce)
}

#[test]
fn a_lying_provider_is_outvoted_unpaid_and_slashed() {
    bounded(
        "a_lying_provider_is_outvoted_unpaid_and_slashed",
        FAULT_LIMIT,
        || {
            let liar = PROVIDERS;
            let net = Net::up(
                PROVIDERS,
                vec![(liar, "PEERCLOUD_FAULT".into(), "wrong-digest".into())],
            );
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            let before = net.converged(&all);
            let owners = Net::owners(&before);
            let liar_id = net.node_id(liar);
            let liar_owner = owners[&liar_id];
            let liar_before = net.account(1, &liar_owner);
            let honest: Vec<NodeId> = (1..PROVIDERS).map(|i| net.node_id(i)).collect();
            let honest_before: Vec<_> = honest.iter().map(|n| net.balance(1, &owners[n])).collect();
            let user = net.user.account_id();
            let user_before = net.balance(1, &user);

            let spec = wordcount_spec(&net.work, "outvote", 3, 60);
            let local = local_run(&spec, &net.work.join("local-out"));
            let bundle = JobBundle::load(&spec).expect("the spec and its files load");
            let options = RunOptions {
                offer_window_ms: OFFER_WINDOW_MS,
                ..RunOptions::default()
            };
            let report = run_job(&net.client(1), &net.user, &bundle, &options)
                .expect("two honest nodes of three make a majority");
            assert_eq!(
                report.digest.to_string(),
                local["output_digest"].as_str().expect("the local digest"),
                "the agreed digest is the sandbox's"
            );
            let local_counts =
                std::fs::read(net.work.join("local-out/counts.json")).expect("local counts");
            assert_eq!(
                report.outputs,
                vec![("counts.json".to_owned(), local_counts)],
                "the user got the honest outputs"
            );
            let paid: Vec<NodeId> = report.paid.iter().map(|(n, _)| *n).collect();
            assert_eq!(report.nodes.len(), 3, "all three providers were awarded");
            assert_eq!(paid.len(), 2, "{paid:?}");
            assert!(!paid.contains(&liar_id), "the liar was paid: {paid:?}");
            println!("checked: the user's outputs match a local run; the 2 honest nodes were paid");

            let view = net
                .client(1)
                .job(&report.job, WaitQuery::NOW)
                .expect("the job");
            assert_eq!(view.state, JobState::Settled);
            let liar_award = view
                .awards
                .iter()
                .find(|a| a.node == liar_id)
                .expect("the liar was awarded");
            assert!(
                liar_award.digest.is_some() && liar_award.digest != view.agreed,
                "the liar submitted a digest of its own"
            );
            let after = net.converged(&all);
            for (node, owner_before) in honest.iter().zip(&honest_before) {
                let price = view
                    .awards
                    .iter()
                    .find(|a| a.node == *node)
                    .map(|a| a.price)
                    .expect("an honest node was awarded");
                assert_eq!(
                    net.balance(1, &owners[node]),
                    minus(plus(*owner_before, price), fees(1)),
                    "the owner of honest {node} got its price (less its result's fee)"
                );
            }
            let liar_after = net.account(1, &liar_owner);
            assert_eq!(
                liar_after.balance,
                minus(liar_before.balance, fees(1)),
                "the liar's owner got nothing and paid its result's fee"
            );
            let stake_before = liar_before.stake;
            let genesis = Genesis::load(&net.dir().join(GENESIS_FILE)).expect("the genesis");
            let slash_bps = u128::from(genesis.params.slash_bps);
            let slash = stake_before
                .checked_mul_div(slash_bps, u128::from(BPS_DENOMINATOR))
                .expect("a slash");
            assert!(!slash.is_zero());
            assert_eq!(liar_after.stake, minus(stake_before, slash));
            let reputation_before = Net::reputation(&before, &liar_id);
            assert_eq!(
                Net::reputation(&after, &liar_id),
                reputation_before.saturating_sub(REPUTATION_PENALTY_DISAGREE)
            );
            for node in &honest {
                assert!(Net::reputation(&after, node) > Net::reputation(&before, node));
            }
            let paid_total = report
                .paid
                .iter()
                .fold(peercloud_types::Amount::ZERO, |sum, (_, a)| plus(sum, *a));
            assert_eq!(
                net.balance(1, &user),
                minus(user_before, plus(paid_total, fees(3)))
            );
            println!(
                "checked: the liar was unpaid, slashed {slash} of {stake_before} PCL stake ({slash_bps} bps), \
                 reputation {reputation_before} -> {}; the user paid {paid_total} PCL + 3 fees",
                Net::reputation(&after, &liar_id)
            );
        },
    );
}

#[test]
fn a_provider_killed_mid_job_is_refunded_after_the_deadline_never_paid() {
    bounded(
        "a_provider_killed_mid_job_is_refunded_after_the_deadline_never_paid",
        FAULT_LIMIT,
        || {
            let mut net = Net::up(PROVIDERS, Vec::new());
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            let before = net.converged(&all);
            let owners = Net::owners(&before);
            let user = net.user.account_id();
            let user_before = net.balance(1, &user);
            let client = net.client(1);

            let running = RunningJob::start(&net, "killed");
            let awarded = running.wait_awarded(&client);
            let victim = victim_of(&net, &awarded);
            let victim_id = net.node_id(victim);
            let awarded_owners: Vec<_> = awarded
                .awards
                .iter()
                .map(|a| {
                    let owner = owners[&a.node];
                    (a.node, owner, net.balance(1, &owner))
                })
                .collect();
            std::thread::sleep(FAULT_AFTER_AWARD);
            net.devnet.nodes[victim].kill();
            println!(
                "killed node-{victim} ({victim_id}) {} ms after the award",
                FAULT_AFTER_AWARD.as_millis()
            );

            let job = running.job;
            let started = running.started;
            let outcome = running
                .runner
                .join()
                .expect("the run_job thread does not panic");
            let elapsed = started.elapsed();
            let why = match outcome {
                Err(RemoteError::NoResult { state, why, .. }) => {
                    assert_eq!(state, JobState::Expired, "{why}");
                    // The victim's failed dispatch is named in the outcome.
                    assert!(why.contains(&victim_id.to_string()), "{why}");
                    println!("checked: run_job ended NoResult after {elapsed:?} ({why})");
                    why
                }
                other => panic!("expected NoResult, got {other:?}"),
            };

            let view = client.job(&job, WaitQuery::NOW).expect("the job");
            assert_eq!(
                view.state,
                JobState::Expired,
                "the job does not stay awarded"
            );
            assert_eq!(view.escrow_released, view.escrow_locked);
            assert_eq!(view.agreed, None);
            let survivor_submitted = view
                .awards
                .iter()
                .find(|a| a.node != victim_id)
                .is_some_and(|a| a.digest.is_some());
            for award in &view.awards {
                if award.node == victim_id {
                    assert_eq!(award.digest, None, "the killed node submitted nothing");
                } else if award.digest.is_none() {
                    // On a loaded machine the survivor may finish after the
                    // deadline: the ledger refuses its result then.
                    assert!(why.contains("deadline"), "{}: no result: {why}", award.node);
                }
            }
            let live: Vec<usize> = all.iter().copied().filter(|i| *i != victim).collect();
            let after = net.converged(&live);
            // PostJob, AwardJob, ExpireJob: the escrow came back whole.
            assert_eq!(net.balance(1, &user), minus(user_before, fees(3)));
            for (node, owner, owner_before) in &awarded_owners {
                // A submitted result costs its owner a fee; nobody is paid.
                let fee = if *node != victim_id && survivor_submitted {
                    fees(1)
                } else {
                    fees(0)
                };
                assert_eq!(
                    net.balance(1, owner),
                    minus(*owner_before, fee),
                    "the owner of {node} was paid"
                );
            }
            assert_eq!(
                Net::reputation(&after, &victim_id),
                Net::reputation(&before, &victim_id).saturating_sub(REPUTATION_PENALTY_MISSING),
                "the killed node lost reputation for the missing result"
            );
            println!(
                "checked: job expired ({}), escrow {} PCL released whole, nobody paid, \
                 the user paid 3 fees only, the killed node's reputation fell",
                if survivor_submitted {
                    "the survivor's lone result is no majority of 2"
                } else {
                    "the survivor's result came after the deadline"
                },
                view.escrow_locked
            );
        },
    );
}

/// A provider that stops answering without closing its connections (a
/// frozen host, a stalled disk) must not hold the user past the job's
/// deadline: after it, no result can land, so the job can only expire.
#[test]
fn a_frozen_provider_does_not_hold_the_job_past_its_deadline() {
    bounded(
        "a_frozen_provider_does_not_hold_the_job_past_its_deadline",
        FAULT_LIMIT,
        || {
            let net = Net::up(PROVIDERS, Vec::new());
            let client = net.client(1);
            let running = RunningJob::start(&net, "frozen");
            let awarded = running.wait_awarded(&client);
            let victim = victim_of(&net, &awarded);
            std::thread::sleep(FAULT_AFTER_AWARD);
            let pid = net.devnet.nodes[victim].pid().to_string();
            signal("-STOP", &pid);
            println!(
                "froze node-{victim} {} ms after the award",
                FAULT_AFTER_AWARD.as_millis()
            );
            let bound = Duration::from_secs(KILL_DEADLINE_SECS) + FROZEN_GRACE;
            while !running.runner.is_finished() && running.started.elapsed() < bound {
                std::thread::sleep(POLL);
            }
            // Thawed before any assertion, so it stops with the devnet.
            signal("-CONT", &pid);
            let state = client.job(&running.job, WaitQuery::NOW).map(|v| v.state);
            assert!(
                running.runner.is_finished(),
                "run_job still waits {:?} after posting a job with an {KILL_DEADLINE_SECS} s \
                 deadline (the job is {state:?})",
                running.started.elapsed()
            );
            match running
                .runner
                .join()
                .expect("the run_job thread does not panic")
            {
                Err(RemoteError::NoResult { state, .. }) => assert_eq!(state, JobState::Expired),
                other => panic!("expected NoResult, got {other:?}"),
            }
            let view = client.job(&running.job, WaitQuery::NOW).expect("the job");
            assert_eq!(view.state, JobState::Expired);
            assert_eq!(view.escrow_released, view.escrow_locked);
            println!("checked: the job expired at its deadline despite the frozen provider");
        },
    );
}

/// A kernel job (redundancy 2, [`KILL_DEADLINE_SECS`]) that `run_job` drives
/// on a thread through node-1 while the test watches it.
struct RunningJob {
    job: JobId,
    started: Instant,
    runner: std::thread::JoinHandle<Result<peercloud_client::JobReport, RemoteError>>,
}

impl RunningJob {
    fn start(net: &Net, name: &str) -> RunningJob {
        let client = net.client(1);
        let spec = kernel_spec(
            &net.work,
            name,
            KERNEL_ITERATIONS,
            2,
            KILL_DEADLINE_SECS,
            128 << 20,
        );
        let bundle = JobBundle::load(&spec).expect("the spec and its module load");
        let job = next_job(&client, &net.user);
        let wallet = net.user.clone();
        let runner = std::thread::spawn(move || {
            let options = RunOptions {
                offer_window_ms: OFFER_WINDOW_MS,
                ..RunOptions::default()
            };
            run_job(&client, &wallet, &bundle, &options)
        });
        RunningJob {
            job,
            started: Instant::now(),
            runner,
        }
    }

    /// Polls the job until it is awarded.
    fn wait_awarded(&self, client: &NodeClient) -> JobView {
        let job = self.job;
        loop {
            match client.job(&job, WaitQuery::NOW) {
                Ok(view) if view.state == JobState::Awarded => return view,
                Ok(view) if view.state != JobState::Posted => {
                    panic!("job {job} went {} before it was awarded", view.state)
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => panic!("reading job {job}: {e}"),
            }
            assert!(
                self.started.elapsed() < AWARD_WAIT,
                "job {job} was not awarded within {} s",
                AWARD_WAIT.as_secs()
            );
            std::thread::sleep(POLL);
        }
    }
}

/// An awarded provider other than node-1, the node the user talks to.
fn victim_of(net: &Net, awarded: &JobView) -> usize {
    awarded
        .awards
        .iter()
        .map(|a| net.index_of(&a.node))
        .find(|i| *i != 1)
        .expect("two awards, at most one of them node-1")
}

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(signal: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}: {status}");
}

#[test]
fn store_get_survives_a_dead_replica() {
    bounded("store_get_survives_a_dead_replica", FAULT_LIMIT, || {
        let mut net = Net::up(PROVIDERS, Vec::new());
        let all: Vec<usize> = (0..=PROVIDERS).collect();
        let view = net.converged(&all);
        let original = net.work.join("object.bin");
        random_file(&original, OBJECT_BYTES);
        let bytes = std::fs::read(&original).expect("the original");
        let cid = store_put(&net, 1, &original);
        let object: ContentId = cid.parse().expect("store put printed a CID");
        let manifest = read_manifest(&ApiStore::new(net.client(1)), &object).expect("the manifest");

        let dead = 2;
        net.devnet.nodes[dead].kill();
        let dead_id = net.node_id(dead);
        // What the dead node held, read from its disk: every chunk.
        let held = FsChunkStore::open(net.node_dir(dead).join("chunks")).expect("its chunks");
        let mut every = manifest.chunks.clone();
        every.push(object);
        for chunk in &every {
            assert!(
                held.has(chunk).expect("its index"),
                "node-{dead} held {chunk}"
            );
        }
        drop(held);
        // How many of the chunks a node without a copy asks the dead node for first.
        let nodes: Vec<PlacementNode> = view
            .nodes
            .iter()
            .map(|n| PlacementNode::new(n.node, n.owner))
            .collect();
        let first_on_dead = every
            .iter()
            .filter(|c| rank(c, &nodes)[0].node == dead_id)
            .count();
        println!(
            "killed node-{dead}, a holder of all {} chunks; it ranks first for {first_on_dead}",
            every.len()
        );

        // node-1 and node-3 hold copies; the validator holds none and must
        // fall through the ranking past the dead node.
        for node in [1, 3, 0] {
            let back = store_get(&net, node, &cid, &net.work.join(format!("back-{node}.bin")));
            assert!(back == bytes, "node-{node} returned different bytes");
            println!("checked: store get through node-{node} returns the {OBJECT_BYTES} bytes");
        }
    });
}

#[test]
fn a_job_bigger_than_any_node_fails_after_the_offer_window_with_escrow_refunded() {
    bounded(
        "a_job_bigger_than_any_node_fails_after_the_offer_window_with_escrow_refunded",
        FAULT_LIMIT,
        || {
            let net = Net::up(PROVIDERS, Vec::new());
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            net.converged(&all);
            let user = net.user.account_id();
            let user_before = net.balance(1, &user);
            let client = net.client(1);

            let spec = kernel_spec(&net.work, "huge", 1_000, 1, 60, 64 << 30);
            let bundle = JobBundle::load(&spec).expect("the spec and its module load");
            let job = next_job(&client, &net.user);
            let options = RunOptions {
                offer_window_ms: OFFER_WINDOW_MS,
                ..RunOptions::default()
            };
            let message = match run_job(&client, &net.user, &bundle, &options) {
                Err(e @ RemoteError::NoMatch { .. }) => e.to_string(),
                other => panic!("expected NoMatch, got {other:?}"),
            };
            assert!(message.contains("declined"), "{message}");
            assert!(
                message.contains("not enough free memory: asked 64.0 GiB"),
                "{message}"
            );
            for i in 1..=PROVIDERS {
                let id = net.node_id(i).to_string();
                let prefix = &id[..12];
                assert!(message.contains(prefix), "node-{i} not named: {message}");
            }
            println!("checked: NoMatch names every decline: {message}");

            let view = client.job(&job, WaitQuery::NOW).expect("the job");
            assert_eq!(view.state, JobState::Cancelled);
            assert_eq!(view.escrow_released, view.escrow_locked);
            assert!(view.awards.is_empty());
            net.converged(&all);
            // PostJob and CancelJob: the escrow came back whole.
            assert_eq!(net.balance(1, &user), minus(user_before, fees(2)));
            println!(
                "checked: job cancelled, escrow {} PCL refunded, the user paid 2 fees",
                view.escrow_locked
            );
        },
    );
}

#[test]
fn a_restarted_validator_is_found_again_and_takes_transactions() {
    bounded(
        "a_restarted_validator_is_found_again_and_takes_transactions",
        FAULT_LIMIT,
        || {
            let mut net = Net::up(PROVIDERS, Vec::new());
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            let before = net.converged(&all);
            let p2p = net.devnet.validator().ready.p2p.clone();
            net.devnet.nodes[0].kill();
            let options = peercloud_devnet::UpOptions {
                exe: std::path::PathBuf::from(env!("CARGO_BIN_EXE_peercloud")),
                env: Vec::new(),
                log: Some("info".into()),
                netns: Vec::new(),
            };
            net.devnet
                .restart(0, &options)
                .expect("the validator restarts");
            assert_eq!(
                net.devnet.validator().ready.p2p,
                p2p,
                "the validator came back on another address"
            );
            println!("checked: the restarted validator listens where it did: {p2p}");

            // A transfer sent through a provider reaches the validator (the
            // provider redials it) and its block reaches every node.
            let someone = Keypair::generate().account_id();
            let out = net.cli(1, &["wallet", "transfer", &someone.to_string(), "2"]);
            assert!(out.status.success(), "{}", common::stderr(&out));
            let after = net.converged(&all);
            assert!(after.height > before.height);
            for node in 0..=PROVIDERS {
                assert_eq!(net.balance(node, &someone), common::pcl("2"));
            }
            println!(
                "checked: after the restart a transfer through node-1 is in block {} on every node",
                after.height
            );
        },
    );
}

#[test]
fn a_node_stops_on_sigterm_while_its_stdin_stays_open() {
    bounded(
        "a_node_stops_on_sigterm_while_its_stdin_stays_open",
        FAULT_LIMIT,
        || {
            let mut net = Net::up(1, Vec::new());
            for i in [1, 0] {
                assert!(
                    net.devnet.nodes[i].terminate(Duration::from_secs(10)),
                    "node-{i} ignored SIGTERM"
                );
            }
            println!("checked: both nodes exit on SIGTERM with their stdin open");
        },
    );
}
