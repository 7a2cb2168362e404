//! Clusters and buckets as a user meets them on a devnet of processes,
//! driven only through the `peercloud` binary: the devnet's cluster holds
//! every provider, a bucket is created and funded in it and shows its
//! deposit, and a bucket in a cluster that does not exist is refused naming
//! the cluster. Objects in a bucket are put (from a file and from standard
//! input), listed by prefix, read back byte for byte, replaced and removed.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Net, PROVIDERS, bounded, json_of, path_text, pcl, random_file, stderr};
use peercloud_types::{Amount, Hash32};

/// Bound of the test: a devnet's startup (with its cluster) and a handful
/// of commands, each a block at most.
const LIMIT: Duration = Duration::from_secs(90);

#[test]
fn a_user_funds_a_bucket_in_the_devnet_cluster_and_reads_its_deposit() {
    bounded(
        "a_user_funds_a_bucket_in_the_devnet_cluster_and_reads_its_deposit",
        LIMIT,
        || {
            let net = Net::up(PROVIDERS, Vec::new());
            let cluster = net.devnet.cluster;
            let cluster_hex = cluster.0.to_string();

            // The devnet's cluster: every provider active.
            let status = json_of(
                "cluster status",
                &net.cli(1, &["cluster", "status", &cluster.to_string(), "--json"]),
            );
            assert_eq!(status["id"], cluster_hex.as_str());
            assert_eq!(status["threshold"], 1);
            assert_eq!(
                status["terms"]["redundancy"],
                serde_json::json!({"kind": "replicas", "copies": 3})
            );
            let members = status["members"].as_array().expect("members");
            assert_eq!(members.len(), PROVIDERS, "{status}");
            for i in 1..=PROVIDERS {
                let node = net.node_id(i).to_string();
                let member = members
                    .iter()
                    .find(|m| m["node"] == node.as_str())
                    .unwrap_or_else(|| panic!("node-{i} ({node}) is a member: {status}"));
                assert_eq!(member["status"], "active", "{member}");
            }
            println!("checked: {cluster} holds the {PROVIDERS} providers, all active");

            // A bucket, created and funded in one command (the bare hex works too).
            let created = json_of(
                "bucket create",
                &net.cli(
                    1,
                    &["bucket", "create", &cluster_hex, "--deposit", "5", "--json"],
                ),
            );
            let bucket = created["bucket"].as_str().expect("bucket create names it");
            assert_eq!(created["cluster"], cluster_hex.as_str());
            assert_eq!(created["deposit"], "5");

            let info = json_of(
                "bucket info",
                &net.cli(
                    1,
                    &["bucket", "info", &format!("bucket:{bucket}"), "--json"],
                ),
            );
            assert_eq!(info["id"], bucket);
            assert_eq!(info["owner"], net.user.account_id().to_string().as_str());
            assert_eq!(info["cluster"], cluster_hex.as_str());
            assert_eq!(info["public"], false);
            assert_eq!(info["status"], "active");
            assert_eq!(info["read_only_since_ms"], serde_json::Value::Null);
            assert_eq!(
                pcl(info["deposit"].as_str().expect("deposit")),
                Amount::from_tokens(5)
            );
            assert_eq!(
                pcl(info["deposited"].as_str().expect("deposited")),
                Amount::from_tokens(5)
            );
            assert_eq!(
                pcl(info["released"].as_str().expect("released")),
                Amount::ZERO
            );
            assert_eq!(info["stored_bytes"], 0);
            assert_eq!(info["low_warned"], false);
            assert_eq!(info["periods_covered"], serde_json::Value::Null);
            assert_eq!(
                info["billing_period_ms"],
                status["terms"]["billing_period_ms"]
            );
            let all: Vec<usize> = (0..=PROVIDERS).collect();
            net.converged(&all);
            let mine = json_of("bucket mine", &net.cli(2, &["bucket", "mine", "--json"]));
            assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
            assert_eq!(mine[0]["id"], bucket);
            println!("checked: bucket {bucket} holds its 5 PCL deposit, seen from two nodes");

            // A cluster that does not exist is named in the refusal.
            let unknown = Hash32::of(b"no such cluster").to_string();
            let refused = net.cli(1, &["bucket", "create", &unknown, "--deposit", "1"]);
            assert!(
                !refused.status.success(),
                "a bucket in no cluster was created"
            );
            let said = stderr(&refused);
            assert!(said.contains(&format!("cluster:{unknown}")), "{said}");
            assert!(said.contains("not_found"), "{said}");
            let mine = json_of("bucket mine", &net.cli(1, &["bucket", "mine", "--json"]));
            assert_eq!(
                mine.as_array().map(Vec::len),
                Some(1),
                "nothing more was created"
            );
            println!("checked: a bucket in an unknown cluster is refused naming it");
        },
    );
}

/// Bound of the objects test: a devnet's startup and about twenty commands,
/// each a few chunk puts or gets, an index quorum write or one block.
const OBJECTS_LIMIT: Duration = Duration::from_secs(60);

/// Runs `peercloud` as [`Net::cli`] does, in the directory `cwd`, with
/// `stdin` as its standard input.
fn cli_in(net: &Net, node: usize, cwd: &Path, stdin: &[u8], args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peercloud"))
        .arg("--data-dir")
        .arg(&net.data_dir)
        .arg("--node-dir")
        .arg(net.node_dir(node))
        .args(args)
        .current_dir(cwd)
        .env_remove("PEERCLOUD_NODE")
        .env_remove("PEERCLOUD_NODE_DIR")
        .env_remove("PEERCLOUD_TOKEN_FILE")
        .env_remove("PEERCLOUD_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the peercloud binary runs");
    let mut input = child.stdin.take().expect("a piped stdin");
    let bytes = stdin.to_vec();
    // Fed from its own thread: the child may fill its stdout first.
    let feeder = std::thread::spawn(move || input.write_all(&bytes));
    let out = child.wait_with_output().expect("the peercloud binary ends");
    feeder
        .join()
        .expect("the stdin feeder")
        .expect("the child read its stdin");
    out
}

/// The keys of a `bucket ls --json` answer.
fn listed_keys(listing: &serde_json::Value) -> Vec<&str> {
    listing
        .as_array()
        .unwrap_or_else(|| panic!("bucket ls --json prints an array: {listing}"))
        .iter()
        .map(|item| item["key"].as_str().expect("every item has a key"))
        .collect()
}

#[test]
fn a_user_puts_lists_gets_replaces_and_removes_objects_in_a_bucket() {
    bounded(
        "a_user_puts_lists_gets_replaces_and_removes_objects_in_a_bucket",
        OBJECTS_LIMIT,
        || {
            let net = Net::up(PROVIDERS, Vec::new());
            let cluster = net.devnet.cluster.to_string();
            let created = json_of(
                "bucket create",
                &net.cli(
                    1,
                    &["bucket", "create", &cluster, "--deposit", "5", "--json"],
                ),
            );
            let bucket = created["bucket"].as_str().expect("bucket create names it");
            let bucket = bucket.to_owned();
            let work = net.work.clone();

            // Two objects under docs/ (one of three chunks, one read from
            // standard input) and one under img/ (its key the file's name
            // under --key's directory).
            let report = work.join("report.bin");
            random_file(&report, (2 << 20) + 12_345);
            let report_bytes = std::fs::read(&report).expect("reading the report");
            let put = json_of(
                "bucket put docs/report.bin",
                &net.cli(
                    1,
                    &[
                        "bucket",
                        "put",
                        &bucket,
                        path_text(&report),
                        "--key",
                        "docs/report.bin",
                        "--json",
                    ],
                ),
            );
            assert_eq!(put["key"], "docs/report.bin");
            assert_eq!(put["size"], report_bytes.len());
            assert_eq!(put["chunks"], 3, "{put}");
            assert_eq!(put["redundancy"], "3 replicas");
            assert!(put["index_replicas"].as_u64() >= Some(2), "a quorum: {put}");
            assert_eq!(put["bucket_bytes"], report_bytes.len());
            let notes = b"notes read from standard input\n";
            let put = json_of(
                "bucket put - (stdin)",
                &cli_in(
                    &net,
                    1,
                    &work,
                    notes,
                    &[
                        "bucket",
                        "put",
                        &bucket,
                        "-",
                        "--key",
                        "docs/notes.txt",
                        "--json",
                    ],
                ),
            );
            assert_eq!(put["size"], notes.len());
            let logo = work.join("logo.png");
            random_file(&logo, 4_321);
            let put = json_of(
                "bucket put img/logo.png",
                &net.cli(
                    1,
                    &[
                        "bucket",
                        "put",
                        &bucket,
                        path_text(&logo),
                        "--key",
                        "img/logo.png",
                        "--json",
                    ],
                ),
            );
            let total = report_bytes.len() + notes.len() + 4_321;
            assert_eq!(put["bucket_bytes"], total, "{put}");
            // Without --key the key is the file's name.
            let plain = cli_in(&net, 1, &work, b"", &["bucket", "put", &bucket, "logo.png"]);
            assert!(plain.status.success(), "{}", stderr(&plain));
            let said = String::from_utf8_lossy(&plain.stdout);
            assert!(said.contains("stored   logo.png in bucket:"), "{said}");
            assert!(said.contains("index    "), "{said}");
            println!("checked: four puts, one from stdin, one keyed by its file name");

            // docs/ lists exactly its two, from another node too.
            let docs = json_of(
                "bucket ls docs/",
                &net.cli(2, &["bucket", "ls", &bucket, "docs/", "--json"]),
            );
            assert_eq!(listed_keys(&docs), ["docs/notes.txt", "docs/report.bin"]);
            assert_eq!(docs[1]["size"], report_bytes.len());
            assert!(
                docs[1]["manifest"]
                    .as_str()
                    .is_some_and(|m| m.starts_with('b'))
            );
            assert!(docs[1]["at_ms"].as_u64() > Some(0), "{docs}");
            let all = net.cli(2, &["bucket", "ls", &bucket]);
            assert!(all.status.success(), "{}", stderr(&all));
            let text = String::from_utf8_lossy(&all.stdout);
            assert_eq!(text.lines().count(), 5, "four objects and a total: {text}");
            assert!(text.contains(" UTC  img/logo.png"), "{text}");
            assert!(text.contains("4 objects"), "{text}");
            println!("checked: ls docs/ lists exactly its two; ls lists all four and a total");

            // Gets are byte-identical: to a named file, to the key's last
            // segment in the current directory, to standard output.
            let out = work.join("report.out");
            let got = json_of(
                "bucket get docs/report.bin",
                &net.cli(
                    3,
                    &[
                        "bucket",
                        "get",
                        &bucket,
                        "docs/report.bin",
                        "-o",
                        path_text(&out),
                        "--json",
                    ],
                ),
            );
            assert_eq!(got["size"], report_bytes.len());
            assert!(std::fs::read(&out).expect("the file") == report_bytes);
            let here = work.join("here");
            std::fs::create_dir(&here).expect("a directory to get into");
            let got = cli_in(
                &net,
                1,
                &here,
                b"",
                &["bucket", "get", &bucket, "img/logo.png"],
            );
            assert!(got.status.success(), "{}", stderr(&got));
            assert!(
                std::fs::read(here.join("logo.png")).expect("logo.png in the cwd")
                    == std::fs::read(&logo).expect("the logo")
            );
            let piped = cli_in(
                &net,
                2,
                &work,
                b"",
                &["bucket", "get", &bucket, "docs/notes.txt", "-o", "-"],
            );
            assert!(piped.status.success(), "{}", stderr(&piped));
            assert_eq!(piped.stdout, notes, "stdout carries the object alone");
            println!("checked: gets to a file, to the cwd and to stdout are byte-identical");

            // A second put to a key replaces what it named.
            let second = b"the second report, much shorter".to_vec();
            std::fs::write(&report, &second).expect("rewriting the report");
            let put = json_of(
                "bucket put docs/report.bin again",
                &net.cli(
                    1,
                    &[
                        "bucket",
                        "put",
                        &bucket,
                        path_text(&report),
                        "--key",
                        "docs/report.bin",
                        "--json",
                    ],
                ),
            );
            assert_eq!(
                put["bucket_bytes"],
                total - report_bytes.len() + second.len() + 4_321
            );
            json_of(
                "bucket get the replaced docs/report.bin",
                &net.cli(
                    2,
                    &[
                        "bucket",
                        "get",
                        &bucket,
                        "docs/report.bin",
                        "-o",
                        path_text(&out),
                        "--json",
                    ],
                ),
            );
            assert_eq!(std::fs::read(&out).expect("the file"), second);
            let head = json_of(
                "bucket head",
                &net.cli(3, &["bucket", "head", &bucket, "docs/report.bin", "--json"]),
            );
            assert_eq!(head["size"], second.len());
            assert_eq!(head["manifest"], put["manifest"]);
            println!("checked: a second put replaces the object; get and head see the new one");

            // rm: gone from ls; a get of it fails naming the key, and
            // leaves no file behind.
            let removed = json_of(
                "bucket rm",
                &net.cli(1, &["bucket", "rm", &bucket, "docs/notes.txt", "--json"]),
            );
            assert_eq!(removed["key"], "docs/notes.txt");
            assert_eq!(removed["size"], notes.len());
            let docs = json_of(
                "bucket ls docs/ after rm",
                &net.cli(2, &["bucket", "ls", &bucket, "docs/", "--json"]),
            );
            assert_eq!(listed_keys(&docs), ["docs/report.bin"]);
            let gone = work.join("gone.txt");
            let refused = net.cli(
                3,
                &[
                    "bucket",
                    "get",
                    &bucket,
                    "docs/notes.txt",
                    "-o",
                    path_text(&gone),
                ],
            );
            assert!(!refused.status.success(), "a removed object was read");
            let said = stderr(&refused);
            assert!(said.contains("\"docs/notes.txt\""), "{said}");
            assert!(said.contains(&format!("bucket:{bucket}")), "{said}");
            assert!(!gone.exists(), "a failed get leaves no file");
            let leftovers: Vec<_> = std::fs::read_dir(&work)
                .expect("the work directory")
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".peercloud-get-")
                })
                .collect();
            assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
            let again = net.cli(1, &["bucket", "rm", &bucket, "docs/notes.txt"]);
            assert!(!again.status.success(), "a second rm succeeded");
            assert!(
                stderr(&again).contains("docs/notes.txt"),
                "{}",
                stderr(&again)
            );
            println!("checked: rm removes the object; getting it fails naming the key");

            // A directory: every file under it, keyed by its path under
            // it after --key's prefix; small ones in one batch, a large one alone.
            let site = work.join("site");
            std::fs::create_dir_all(site.join("css")).expect("the site's directories");
            std::fs::write(site.join("index.html"), b"<h1>hello</h1>").expect("index.html");
            std::fs::write(site.join("css/main.css"), b"h1{color:teal}").expect("main.css");
            random_file(&site.join("video.bin"), (1 << 20) + 1);
            let put = json_of(
                "bucket put site/",
                &net.cli(
                    1,
                    &[
                        "bucket",
                        "put",
                        &bucket,
                        path_text(&site),
                        "--key",
                        "www/",
                        "--json",
                    ],
                ),
            );
            assert_eq!(put["files"], 3, "{put}");
            assert_eq!(put["inline"], 2, "{put}");
            let listed = json_of(
                "bucket ls www/",
                &net.cli(2, &["bucket", "ls", &bucket, "www/", "--json"]),
            );
            assert_eq!(
                listed_keys(&listed),
                ["www/css/main.css", "www/index.html", "www/video.bin"]
            );
            let piped = cli_in(
                &net,
                3,
                &work,
                b"",
                &["bucket", "get", &bucket, "www/css/main.css", "-o", "-"],
            );
            assert_eq!(piped.stdout, b"h1{color:teal}", "{}", stderr(&piped));
            let video = work.join("video.out");
            json_of(
                "bucket get www/video.bin",
                &net.cli(
                    2,
                    &[
                        "bucket",
                        "get",
                        &bucket,
                        "www/video.bin",
                        "-o",
                        path_text(&video),
                        "--json",
                    ],
                ),
            );
            assert!(
                std::fs::read(&video).expect("the video")
                    == std::fs::read(site.join("video.bin")).expect("the original")
            );
            println!("checked: a directory put stores each file under its path; they read back");

            // A site: deployed to a public bucket through node 1, served by
            // node 2's web gateway; deployed again, nothing is sent.
            let created = json_of(
                "bucket create --public",
                &net.cli(
                    1,
                    &[
                        "bucket",
                        "create",
                        &cluster,
                        "--public",
                        "--deposit",
                        "5",
                        "--json",
                    ],
                ),
            );
            let public = created["bucket"]
                .as_str()
                .expect("a public bucket")
                .to_owned();
            let deploy = |what: &str| {
                json_of(
                    what,
                    &net.cli(
                        1,
                        &[
                            "site",
                            "deploy",
                            path_text(&site),
                            "--bucket",
                            &public,
                            "--json",
                        ],
                    ),
                )
            };
            let first = deploy("site deploy");
            assert_eq!(first["uploaded"], 3, "{first}");
            assert_eq!(first["unchanged"], 0, "{first}");
            assert!(
                first["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("http://")),
                "{first}"
            );
            // The two small files are compared and skipped; the large one
            // is streamed, not compared, and goes again.
            let second = deploy("site deploy again");
            assert_eq!(second["uploaded"], 1, "{second}");
            assert_eq!(second["unchanged"], 2, "{second}");
            let web = std::fs::read_to_string(net.node_dir(2).join("web.addr"))
                .expect("node 2's web.addr");
            let hex = public.trim_start_matches("bucket:");
            let page =
                reqwest::blocking::get(format!("{}/{hex}/", web.trim())).expect("node 2 answers");
            assert_eq!(page.status(), 200);
            assert_eq!(page.text().expect("the page"), "<h1>hello</h1>");
            let refused = net.cli(
                1,
                &["site", "deploy", path_text(&site), "--bucket", &bucket],
            );
            assert!(!refused.status.success(), "a private bucket took a site");
            assert!(
                stderr(&refused).contains("--public"),
                "{}",
                stderr(&refused)
            );
            println!(
                "checked: a site deploys, is served by another node, and a redeploy skips what did not change"
            );
        },
    );
}
