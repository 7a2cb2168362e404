//! The devnet as a user meets it: a validator and three providers as four OS
//! processes, driven only through the `peercloud` binary. A job runs end to
//! end and every token is accounted for; a file round trips through the
//! network store; and the commands that go wrong say what is wrong.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    Net, PROVIDERS, bounded, fees, json_of, local_run, minus, path_text, pcl, peercloud, plus,
    random_file, stderr, store_get, store_put, wordcount_spec,
};
use peercloud_types::{Amount, ContentId, NodeId};

/// Bound of the end-to-end test: startup, one job, a 3 MiB round trip.
const END_TO_END_LIMIT: Duration = Duration::from_secs(180);
/// Bound of the CLI error test: startup and a few refused commands.
const CLI_ERRORS_LIMIT: Duration = Duration::from_secs(120);
/// Size of the file the store round trip sends: three full 1 MiB chunks and
/// a partial fourth.
const ROUND_TRIP_BYTES: usize = (3 << 20) + 4_321;

#[test]
fn a_job_runs_end_to_end_across_four_processes() {
    bounded(
        "a_job_runs_end_to_end_across_four_processes",
        END_TO_END_LIMIT,
        || {
            let net = Net::up(PROVIDERS, Vec::new());
            let pids: BTreeSet<u32> = net.devnet.nodes.iter().map(|n| n.pid()).collect();
            assert_eq!(pids.len(), 4, "4 distinct OS processes: {pids:?}");
            assert_eq!(net.devnet.validator().ready.role, "validator");
            assert!(
                net.devnet.nodes[1..]
                    .iter()
                    .all(|n| n.ready.role == "provider")
            );
            println!("checked: 4 processes {pids:?}, 1 validator and 3 providers");

            let all: Vec<usize> = (0..=PROVIDERS).collect();
            let before = net.converged(&all);
            let owners = Net::owners(&before);
            let user = net.user.account_id();
            let user_before = net.balance(1, &user);
            let owners_before: Vec<(NodeId, Amount)> = owners
                .iter()
                .map(|(node, owner)| (*node, net.balance(1, owner)))
                .collect();

            // The job, on the grid through the CLI and in the local sandbox.
            let spec = wordcount_spec(&net.work, "wordcount", 2, 60);
            let grid_out = net.work.join("grid-out");
            let run = net.cli(
                1,
                &[
                    "job",
                    "run",
                    path_text(&spec),
                    "--json",
                    "--out",
                    path_text(&grid_out),
                    "--offer-window-ms",
                    &common::OFFER_WINDOW_MS.to_string(),
                ],
            );
            let report = json_of("job run", &run);
            let local_out = net.work.join("local-out");
            let local = local_run(&spec, &local_out);
            let grid_counts = std::fs::read(grid_out.join("counts.json")).expect("counts.json");
            let local_counts = std::fs::read(local_out.join("counts.json")).expect("local");
            assert_eq!(
                grid_counts, local_counts,
                "the grid's counts are the sandbox's"
            );
            assert_eq!(report["digest"], local["output_digest"]);
            println!(
                "checked: job run exit 0, counts.json ({} bytes) and digest equal a local run's",
                grid_counts.len()
            );

            // The ledger: settled, two paid, the escrow's rest refunded.
            let job = report["job"].as_str().expect("the report names the job");
            let status = json_of("job status", &net.cli(1, &["job", "status", job, "--json"]));
            assert_eq!(status["state"], "settled", "{status}");
            assert_eq!(status["agreed"], report["digest"]);
            let awards = status["awards"].as_array().expect("awards");
            assert_eq!(awards.len(), 2);
            let paid = report["paid"]
                .as_object()
                .expect("the report lists payments");
            assert_eq!(paid.len(), 2, "both awarded providers are paid: {report}");
            let mut paid_total = Amount::ZERO;
            for award in awards {
                let node = award["node"].as_str().expect("node");
                assert_eq!(award["digest"], report["digest"], "{node} agreed");
                let price = pcl(award["price"].as_str().expect("price"));
                assert_eq!(
                    paid[node].as_str().map(pcl),
                    Some(price),
                    "{node} paid its price"
                );
                paid_total = plus(paid_total, price);
            }
            let locked = pcl(status["escrow_locked"].as_str().expect("locked"));
            assert_eq!(
                pcl(status["escrow_released"].as_str().expect("released")),
                locked
            );
            assert_eq!(
                pcl(report["refunded"].as_str().expect("refunded")),
                minus(locked, paid_total)
            );

            // Balances, once every node has the settlement.
            let after = net.converged(&all);
            // PostJob, AwardJob, SettleJob: one fee each.
            assert_eq!(
                net.balance(1, &user),
                minus(user_before, plus(paid_total, fees(3))),
                "the user paid exactly the providers' prices and three fees"
            );
            for (node, owner_before) in &owners_before {
                let owner = &owners[node];
                let now = net.balance(1, owner);
                match awards
                    .iter()
                    .find(|a| a["node"] == node.to_string().as_str())
                {
                    // Paid its price; its result's fee came from its owner.
                    Some(award) => assert_eq!(
                        now,
                        minus(
                            plus(*owner_before, pcl(award["price"].as_str().expect("price"))),
                            fees(1)
                        ),
                        "the owner of {node} was paid"
                    ),
                    None => assert_eq!(now, *owner_before, "{node} was not awarded"),
                }
            }
            println!(
                "checked: job {job} settled; 2 providers paid {paid_total} PCL; the user paid that + 3 fees"
            );

            // Every token accounted for, every node at one state root.
            let ledger = json_of(
                "ledger status",
                &net.cli(2, &["ledger", "status", "--json"]),
            );
            assert_eq!(
                pcl(ledger["supply"].as_str().expect("supply")),
                pcl(ledger["accounted"].as_str().expect("accounted")),
                "{ledger}"
            );
            for i in &all {
                let view = net.client(*i).ledger().expect("ledger view");
                assert_eq!(
                    (view.height, &view.state_root),
                    (after.height, &after.state_root),
                    "node-{i}"
                );
            }
            println!(
                "checked: supply == accounted; all 4 nodes at height {} with root {}",
                after.height, after.state_root
            );

            // The store: 3 MiB of random bytes there and back.
            let original = net.work.join("random.bin");
            random_file(&original, ROUND_TRIP_BYTES);
            let cid = store_put(&net, 1, &original);
            let back = store_get(&net, 1, &cid, &net.work.join("random.back"));
            assert!(
                back == std::fs::read(&original).expect("the original"),
                "the object came back different"
            );
            println!(
                "checked: store put + get of {ROUND_TRIP_BYTES} random bytes round trips ({cid})"
            );
        },
    );
}

#[test]
fn cli_errors_against_a_live_devnet_say_what_is_wrong() {
    bounded(
        "cli_errors_against_a_live_devnet_say_what_is_wrong",
        CLI_ERRORS_LIMIT,
        || {
            let net = Net::up(PROVIDERS, Vec::new());
            let user = net.user.account_id();

            // A spec with a misspelt field, and one with a value out of bounds.
            let spec = wordcount_spec(&net.work, "typo", 1, 60);
            let text = std::fs::read_to_string(&spec).expect("the spec");
            std::fs::write(&spec, text.replace("\"redundancy\"", "\"redundancyy\""))
                .expect("rewriting the spec");
            let out = net.cli(1, &["job", "run", path_text(&spec)]);
            assert!(!out.status.success(), "a misspelt field was accepted");
            assert!(stderr(&out).contains("redundancyy"), "{}", stderr(&out));
            let spec = wordcount_spec(&net.work, "zero", 1, 60);
            let text = std::fs::read_to_string(&spec).expect("the spec");
            std::fs::write(
                &spec,
                text.replace("\"deadline_secs\": 60", "\"deadline_secs\": 0"),
            )
            .expect("rewriting the spec");
            let out = net.cli(1, &["job", "run", path_text(&spec)]);
            assert!(!out.status.success(), "a zero deadline was accepted");
            assert!(stderr(&out).contains("deadline_secs"), "{}", stderr(&out));
            println!("checked: job run on a bad spec exits non-zero naming the field");

            // A well-formed CID that names nothing.
            let absent = ContentId::of(b"no object was ever stored under this").to_string();
            let target = net.work.join("absent.bin");
            let out = net.cli(1, &["store", "get", &absent, "-o", path_text(&target)]);
            assert!(!out.status.success(), "an absent CID was fetched");
            let text = stderr(&out);
            assert!(text.contains(&absent), "{text}");
            assert!(text.contains("no such object"), "{text}");
            assert!(!target.exists(), "a failed get leaves no file");
            println!("checked: store get of an absent CID names it and writes nothing");

            // More than the wallet holds.
            let before = net.account(1, &user);
            let someone = peercloud_types::Keypair::generate()
                .account_id()
                .to_string();
            let out = net.cli(1, &["wallet", "transfer", &someone, "100000"]);
            assert!(!out.status.success(), "an overdraft was accepted");
            let text = stderr(&out);
            assert!(text.contains("insufficient funds"), "{text}");
            assert!(text.contains("100000"), "{text}");
            let after = net.account(1, &user);
            assert_eq!(
                (after.balance, after.next_nonce),
                (before.balance, before.next_nonce),
                "a refused transfer changes nothing"
            );
            println!(
                "checked: a transfer beyond the balance is refused: {}",
                text.trim()
            );

            // A node that is not there.
            let out = peercloud(&["--node", "http://127.0.0.1:1", "ledger", "status"]);
            assert!(!out.status.success());
            let text = stderr(&out);
            assert!(
                text.contains("not reachable") && text.contains("http://127.0.0.1:1"),
                "{text}"
            );
            println!("checked: an unreachable node is named: {}", text.trim());
        },
    );
}
