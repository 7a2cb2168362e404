//! The S3 gateway against rclone, s3cmd and boto3, and against malformed
//! requests (bad XML, parts out of order, a body shorter than its length, a
//! huge header): each gets S3's error and the node stays up. See `s3.rs`
//! for awscli and for how missing clients are handled.

mod common;

use common::*;

use std::io::{Read, Write};

use std::process::Command;

use common::s3::{client_present, gateway, ok};

#[test]
fn rclone_copies_checks_and_purges_through_the_gateway() {
    if !client_present("rclone", "rclone", &["version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (_grid, endpoint, key) = gateway(dir.path(), 3);
    let files = tempfile::tempdir().expect("a temp dir");
    let local = files.path().join("up");
    std::fs::create_dir_all(local.join("deep")).unwrap();
    let big = content(3_000_000, 1);
    std::fs::write(local.join("a.bin"), &big).unwrap();
    std::fs::write(local.join("deep/b.txt"), b"hello").unwrap();
    let rclone = |args: &[&str]| {
        Command::new("rclone")
            .args(args)
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_PC_TYPE", "s3")
            .env("RCLONE_CONFIG_PC_PROVIDER", "Other")
            .env("RCLONE_CONFIG_PC_ACCESS_KEY_ID", &key.access_key)
            .env("RCLONE_CONFIG_PC_SECRET_ACCESS_KEY", &key.secret_key)
            .env("RCLONE_CONFIG_PC_ENDPOINT", &endpoint)
            .env("RCLONE_CONFIG_PC_FORCE_PATH_STYLE", "true")
            .env("RCLONE_CONFIG_PC_REGION", "us-east-1")
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .expect("rclone runs")
    };
    ok(rclone(&["mkdir", "pc:data"]), "mkdir");
    ok(
        rclone(&["copy", local.to_str().unwrap(), "pc:data/up"]),
        "copy up",
    );
    // `check` compares sizes and MD5s (the ETags the gateway keeps).
    ok(
        rclone(&["check", local.to_str().unwrap(), "pc:data/up"]),
        "check",
    );
    let listed = ok(rclone(&["lsf", "-R", "pc:data"]), "lsf");
    assert!(
        listed.contains("up/deep/b.txt") && listed.contains("up/a.bin"),
        "{listed}"
    );
    let back = files.path().join("back");
    ok(
        rclone(&["copy", "pc:data/up", back.to_str().unwrap()]),
        "copy down",
    );
    assert!(std::fs::read(back.join("a.bin")).unwrap() == big);
    ok(rclone(&["purge", "pc:data"]), "purge");
    let buckets = ok(rclone(&["lsd", "pc:"]), "lsd");
    assert!(!buckets.contains("data"), "{buckets}");
}

#[test]
fn s3cmd_puts_lists_gets_and_deletes_through_the_gateway() {
    if !client_present("s3cmd", "s3cmd", &["--version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (_grid, endpoint, key) = gateway(dir.path(), 3);
    let files = tempfile::tempdir().expect("a temp dir");
    let host = endpoint.trim_start_matches("http://");
    let config = files.path().join("s3cfg");
    std::fs::write(
        &config,
        format!(
            "[default]\naccess_key = {}\nsecret_key = {}\nhost_base = {host}\nhost_bucket = {host}\n\
             use_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n",
            key.access_key, key.secret_key
        ),
    )
    .unwrap();
    let s3cmd = |args: &[&str]| {
        Command::new("s3cmd")
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .expect("s3cmd runs")
    };
    // 17 MB: two parts of s3cmd's 15 MB.
    let big = content(17_000_000, 2);
    let up = files.path().join("big.bin");
    std::fs::write(&up, &big).unwrap();
    ok(s3cmd(&["mb", "s3://logs"]), "mb");
    let put = ok(
        s3cmd(&["put", up.to_str().unwrap(), "s3://logs/2026/big.bin"]),
        "put",
    );
    assert!(!put.contains("MD5"), "no MD5 complaint: {put}");
    let listed = ok(s3cmd(&["ls", "s3://logs"]), "ls");
    assert!(
        listed.contains("DIR") && listed.contains("s3://logs/2026/"),
        "{listed}"
    );
    let down = files.path().join("down.bin");
    ok(
        s3cmd(&["get", "s3://logs/2026/big.bin", down.to_str().unwrap()]),
        "get",
    );
    assert!(std::fs::read(&down).unwrap() == big);
    ok(s3cmd(&["del", "s3://logs/2026/big.bin"]), "del");
    let listed = ok(s3cmd(&["ls", "-r", "s3://logs"]), "ls after delete");
    assert!(!listed.contains("big.bin"), "{listed}");
    ok(s3cmd(&["rb", "s3://logs"]), "rb");
}

/// boto3: the SDK's calls, then raw signed requests it would never send.
const BOTO: &str = r#"
import json, sys, urllib.request, urllib.error
import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

endpoint, ak, sk = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak,
                  aws_secret_access_key=sk, region_name="us-east-1")
out = {}
def code(f):
    try:
        f()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]

s3.create_bucket(Bucket="sdk")
for i in range(5):
    s3.put_object(Bucket="sdk", Key=f"k/{i}", Body=b"x" * (i + 1))
page1 = s3.list_objects_v2(Bucket="sdk", MaxKeys=2)
page2 = s3.list_objects_v2(Bucket="sdk", MaxKeys=2, ContinuationToken=page1["NextContinuationToken"])
out["pages"] = [[o["Key"] for o in page1["Contents"]], [o["Key"] for o in page2["Contents"]]]
out["get"] = s3.get_object(Bucket="sdk", Key="k/4", Range="bytes=1-2")["Body"].read().decode()
etag = s3.head_object(Bucket="sdk", Key="k/0")["ETag"]
out["if_none_match"] = code(lambda: s3.get_object(Bucket="sdk", Key="k/0", IfNoneMatch=etag))
out["if_match"] = code(lambda: s3.get_object(Bucket="sdk", Key="k/0", IfMatch='"0000"'))
out["missing"] = code(lambda: s3.get_object(Bucket="sdk", Key="nope"))
out["no_bucket"] = code(lambda: s3.list_objects_v2(Bucket="nobucket"))
deleted = s3.delete_objects(Bucket="sdk", Delete={"Objects": [{"Key": "k/0"}, {"Key": "k/1"}]})
out["deleted"] = sorted(d["Key"] for d in deleted["Deleted"])
up = s3.create_multipart_upload(Bucket="sdk", Key="mp")
p1 = s3.upload_part(Bucket="sdk", Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"a" * (5 << 20))
p2 = s3.upload_part(Bucket="sdk", Key="mp", UploadId=up["UploadId"], PartNumber=2, Body=b"b")
out["uploads"] = len(s3.list_multipart_uploads(Bucket="sdk")["Uploads"])
out["parts"] = [p["PartNumber"] for p in s3.list_parts(Bucket="sdk", Key="mp", UploadId=up["UploadId"])["Parts"]]
out["out_of_order"] = code(lambda: s3.complete_multipart_upload(Bucket="sdk", Key="mp", UploadId=up["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": p2["ETag"]}, {"PartNumber": 1, "ETag": p1["ETag"]}]}))
out["wrong_etag"] = code(lambda: s3.complete_multipart_upload(Bucket="sdk", Key="mp", UploadId=up["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p2["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]}))
s3.complete_multipart_upload(Bucket="sdk", Key="mp", UploadId=up["UploadId"],
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]})
out["mp_size"] = s3.head_object(Bucket="sdk", Key="mp")["ContentLength"]
aborted = s3.create_multipart_upload(Bucket="sdk", Key="gone")
s3.abort_multipart_upload(Bucket="sdk", Key="gone", UploadId=aborted["UploadId"])
out["aborted"] = code(lambda: s3.list_parts(Bucket="sdk", Key="gone", UploadId=aborted["UploadId"]))
out["bad_md5"] = code(lambda: s3.put_object(Bucket="sdk", Key="bad", Body=b"abc", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA=="))
out["bad_md5_stored"] = code(lambda: s3.head_object(Bucket="sdk", Key="bad"))
url = s3.generate_presigned_url("get_object", Params={"Bucket": "sdk", "Key": "k/4"}, ExpiresIn=60)
out["presigned"] = urllib.request.urlopen(url).read().decode()

def raw(method, path, body, headers=None):
    req = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers or {})
    S3SigV4Auth(Credentials(ak, sk), "s3", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, data=body, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

out["bad_xml"] = raw("POST", "/sdk?delete", b"<Delete><Object><Key>k/2", {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="})
print(json.dumps(out))
"#;

#[test]
fn boto3_and_malformed_requests_get_s3_answers_and_the_node_stays_up() {
    if !client_present("boto3", "python3", &["-c", "import boto3"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (_grid, endpoint, key) = gateway(dir.path(), 3);
    let out = Command::new("python3")
        .args(["-c", BOTO, &endpoint, &key.access_key, &key.secret_key])
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .expect("python3 runs");
    let text = ok(out, "the boto3 script");
    let out: serde_json::Value = serde_json::from_str(text.trim()).expect("the script's JSON");
    assert_eq!(
        out["pages"],
        serde_json::json!([["k/0", "k/1"], ["k/2", "k/3"]])
    );
    assert_eq!(out["get"], "xx");
    assert_eq!(out["if_none_match"], "304");
    assert_eq!(out["if_match"], "PreconditionFailed");
    assert_eq!(out["missing"], "NoSuchKey");
    assert_eq!(out["no_bucket"], "NoSuchBucket");
    assert_eq!(out["deleted"], serde_json::json!(["k/0", "k/1"]));
    assert_eq!(out["uploads"], 1);
    assert_eq!(out["parts"], serde_json::json!([1, 2]));
    assert_eq!(out["out_of_order"], "InvalidPartOrder");
    assert_eq!(out["wrong_etag"], "InvalidPart");
    assert_eq!(out["mp_size"], (5 << 20) + 1);
    assert_eq!(out["aborted"], "NoSuchUpload");
    assert_eq!(out["bad_md5"], "BadDigest");
    assert_eq!(out["bad_md5_stored"], "404");
    assert_eq!(out["presigned"], "xxxxx");
    let (status, body) = (&out["bad_xml"][0], out["bad_xml"][1].as_str().unwrap_or(""));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>MalformedXML</Code>"), "{body}");

    // Raw bytes: a body shorter than its length, then a 100 KiB header; the
    // gateway answers (or drops) them and keeps serving.
    let addr = endpoint.trim_start_matches("http://");
    let mut short = std::net::TcpStream::connect(addr).unwrap();
    short
        .write_all(b"PUT /sdk/short HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly this")
        .unwrap();
    drop(short);
    let mut huge = std::net::TcpStream::connect(addr).unwrap();
    let header = format!(
        "GET /sdk HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 << 10)
    );
    let _ = huge.write_all(header.as_bytes());
    let mut answer = Vec::new();
    let _ = huge.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a huge header is refused: {answer}"
    );
    let after =
        reqwest::blocking::get(format!("{endpoint}/sdk")).expect("the gateway still answers");
    assert_eq!(after.status(), 403, "an unsigned request is refused");
    assert!(after.text().unwrap().contains("AccessDenied"));
}
