//! The S3 gateway against real S3 clients (awscli here, more in
//! `s3_clients.rs`), on the daemons of an in-process grid: a key made as
//! `peercloud s3 key create` makes it; buckets made, listed and removed;
//! objects put (one part and multipart), listed with prefixes and
//! delimiters, read whole and in ranges, copied and deleted; a presigned
//! URL that works and one that expired; a wrong secret refused with S3's
//! own error and nothing stored. What goes in comes out byte for byte.
//!
//! The clients are installed by `.ci/run`; where one is missing the test
//! says so and passes, unless `PEERCLOUD_S3_CLIENTS=required` (CI sets it).

mod common;

use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::s3::{client_present, gateway, ok};
use peercloud_client::bucket::{NewObject, put_many};
use peercloud_node::s3::keys::S3Key;
use peercloud_node::web::site_label;

/// The grid: three providers, each a member of its cluster (3 replicas).
const PROVIDERS: usize = 3;

/// Runs awscli against the gateway with `key`'s credentials.
fn aws(endpoint: &str, key: &S3Key, secret: &str, args: &[&str]) -> Output {
    peercloud_devnet::awscli::command(endpoint, &key.access_key, secret)
        .args(args)
        .output()
        .expect("awscli runs")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("a local file");
    path
}

#[test]
fn awscli_round_trips_buckets_and_objects_through_the_gateway() {
    if !client_present("awscli", "aws", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (grid, endpoint, key) = gateway(dir.path(), PROVIDERS);
    let secret = key.secret_key.clone();
    let aws = |args: &[&str]| aws(&endpoint, &key, &secret, args);
    let files = tempfile::tempdir().expect("a temp dir");

    ok(aws(&["s3", "mb", "s3://photos"]), "make a bucket");
    let listed = ok(aws(&["s3", "ls"]), "list buckets");
    assert!(listed.contains("photos"), "{listed}");
    let again = aws(&["s3", "mb", "s3://photos"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("BucketAlreadyOwnedByYou"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // One part, and multipart (awscli cuts at 8 MiB: three parts).
    let small = content(10_000, 1);
    let big = content((20 << 20) + 123, 2);
    let small_path = write(files.path(), "small.txt", &small);
    let big_path = write(files.path(), "big.bin", &big);
    ok(
        aws(&[
            "s3",
            "cp",
            small_path.to_str().unwrap(),
            "s3://photos/docs/small.txt",
        ]),
        "put one part",
    );
    ok(
        aws(&[
            "s3",
            "cp",
            big_path.to_str().unwrap(),
            "s3://photos/big.bin",
        ]),
        "put multipart",
    );
    let back = files.path().join("back.bin");
    ok(
        aws(&["s3", "cp", "s3://photos/big.bin", back.to_str().unwrap()]),
        "get multipart",
    );
    assert!(
        std::fs::read(&back).unwrap() == big,
        "the object came back different"
    );
    let back_small = files.path().join("back.txt");
    ok(
        aws(&[
            "s3",
            "cp",
            "s3://photos/docs/small.txt",
            back_small.to_str().unwrap(),
        ]),
        "get one part",
    );
    assert_eq!(std::fs::read(&back_small).unwrap(), small);

    // Listing: a prefix, a delimiter; head with its ETag (the MD5).
    let root = ok(aws(&["s3", "ls", "s3://photos/"]), "list the root");
    assert!(
        root.contains("PRE docs/") && root.contains("big.bin"),
        "{root}"
    );
    let head = ok(
        aws(&[
            "s3api",
            "head-object",
            "--bucket",
            "photos",
            "--key",
            "docs/small.txt",
        ]),
        "head",
    );
    let head: serde_json::Value = serde_json::from_str(&head).unwrap();
    assert_eq!(head["ContentLength"], 10_000);
    let md5 = format!("\"{}\"", hex_md5(&small));
    assert_eq!(head["ETag"], md5.as_str());
    let multipart: serde_json::Value = serde_json::from_str(&ok(
        aws(&[
            "s3api",
            "head-object",
            "--bucket",
            "photos",
            "--key",
            "big.bin",
        ]),
        "head multipart",
    ))
    .unwrap();
    assert!(
        multipart["ETag"].as_str().unwrap().ends_with("-3\""),
        "{multipart}"
    );

    // A range.
    let range_out = files.path().join("range.bin");
    ok(
        aws(&[
            "s3api",
            "get-object",
            "--bucket",
            "photos",
            "--key",
            "big.bin",
            "--range",
            "bytes=1000-1999",
            range_out.to_str().unwrap(),
        ]),
        "a range",
    );
    assert_eq!(std::fs::read(&range_out).unwrap(), &big[1000..2000]);

    // Copy, then delete; a missing key is NoSuchKey.
    ok(
        aws(&[
            "s3",
            "cp",
            "s3://photos/docs/small.txt",
            "s3://photos/copy.txt",
        ]),
        "copy",
    );
    let copy_back = files.path().join("copy.txt");
    ok(
        aws(&[
            "s3",
            "cp",
            "s3://photos/copy.txt",
            copy_back.to_str().unwrap(),
        ]),
        "get the copy",
    );
    assert_eq!(std::fs::read(&copy_back).unwrap(), small);
    ok(aws(&["s3", "rm", "s3://photos/copy.txt"]), "delete");
    let gone = aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "photos",
        "--key",
        "copy.txt",
    ]);
    assert!(!gone.status.success());

    // Presigned: works; expired: refused.
    let url = ok(
        aws(&[
            "s3",
            "presign",
            "s3://photos/docs/small.txt",
            "--expires-in",
            "60",
        ]),
        "presign",
    );
    let got = reqwest::blocking::get(url.trim()).expect("a presigned get");
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().unwrap().as_ref(), &small[..]);
    let expired = ok(
        aws(&[
            "s3",
            "presign",
            "s3://photos/docs/small.txt",
            "--expires-in",
            "1",
        ]),
        "presign briefly",
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let refused = reqwest::blocking::get(expired.trim()).expect("an expired get");
    assert_eq!(refused.status(), 403);
    assert!(refused.text().unwrap().contains("AccessDenied"));

    // A wrong secret: S3's error, nothing stored.
    let wrong = self::aws(
        &endpoint,
        &key,
        "not-the-secret",
        &[
            "s3",
            "cp",
            small_path.to_str().unwrap(),
            "s3://photos/evil.txt",
        ],
    );
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let all = ok(
        aws(&["s3", "ls", "--recursive", "s3://photos/"]),
        "list all",
    );
    assert!(!all.contains("evil"), "{all}");

    // A bucket with objects is not removed; emptied, it is, and its deposit goes back.
    let full = aws(&["s3", "rb", "s3://photos"]);
    assert!(String::from_utf8_lossy(&full.stderr).contains("BucketNotEmpty"));
    ok(
        aws(&["s3", "rm", "--recursive", "s3://photos/"]),
        "empty it",
    );
    ok(aws(&["s3", "rb", "s3://photos"]), "remove it");
    let listed = ok(aws(&["s3", "ls"]), "list buckets");
    assert!(!listed.contains("photos"), "{listed}");
    drop(grid);
}

fn hex_md5(bytes: &[u8]) -> String {
    use s3s::crypto::{Checksum, Md5};
    let digest: [u8; 16] = Md5::checksum(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn awscli_lists_a_bucket_of_several_index_pages_whole_and_in_order() {
    if !client_present("awscli", "aws", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (grid, endpoint, key) = gateway(dir.path(), PROVIDERS);
    // A bucket made without the gateway, reached by its site label; more
    // keys than one index page holds, so a listing pages the index too.
    let node = grid.node(1).expect("provider 1");
    let bucket = funded_bucket(&grid, &node, 10);
    let keys: Vec<String> = (0..2_500).map(|i| format!("many/{i:05}")).collect();
    let objects: Vec<NewObject<'_>> = keys
        .iter()
        .map(|k| NewObject {
            key: k,
            bytes: b"x",
        })
        .collect();
    for batch in objects.chunks(1_000) {
        put_many(&node, grid.user(), &bucket, batch).expect("1,000 small objects");
    }
    let name = site_label(&bucket);
    let listed = ok(
        aws(
            &endpoint,
            &key,
            &key.secret_key,
            &["s3", "ls", "--recursive", &format!("s3://{name}/")],
        ),
        "list every key",
    );
    let got: Vec<&str> = listed
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .collect();
    assert_eq!(got.len(), keys.len(), "every key once");
    assert!(got.iter().zip(&keys).all(|(g, k)| g == k), "in key order");
    // With the delimiter the 2,500 keys are one common prefix, once.
    let rolled = ok(
        aws(
            &endpoint,
            &key,
            &key.secret_key,
            &["s3", "ls", &format!("s3://{name}/")],
        ),
        "list the root",
    );
    assert_eq!(rolled.trim(), "PRE many/");
}
