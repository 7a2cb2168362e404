//! The commands that talk to a node, as a user meets them when something is
//! wrong: the node is not there, or an argument is not what it must be. Each
//! must exit non-zero and say what is wrong, naming it.

use std::path::Path;
use std::process::{Command, Output};

fn peercloud(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peercloud"))
        .args(args)
        .env("PEERCLOUD_DATA_DIR", data_dir)
        .env_remove("PEERCLOUD_NODE")
        .env_remove("PEERCLOUD_NODE_DIR")
        .env_remove("PEERCLOUD_TOKEN_FILE")
        .output()
        .expect("the peercloud binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound address").port()
}

fn new_wallet(dir: &Path) -> String {
    let out = peercloud(&["wallet", "new", "--json"], dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("wallet new --json prints JSON");
    json["account"]
        .as_str()
        .expect("wallet new --json names the account")
        .to_owned()
}

#[test]
fn an_unreachable_node_is_named_and_the_exit_is_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let account = new_wallet(dir.path());
    for args in [
        vec!["--node", "http://127.0.0.1:1", "wallet", "balance"],
        vec![
            "wallet",
            "balance",
            &account,
            "--node",
            "http://127.0.0.1:1",
        ],
        vec!["--node", "http://127.0.0.1:1", "ledger", "status"],
    ] {
        let out = peercloud(&args, dir.path());
        assert!(!out.status.success(), "{args:?} succeeded");
        let text = stderr(&out);
        assert!(text.contains("http://127.0.0.1:1"), "{args:?}: {text}");
        assert!(text.contains("not reachable"), "{args:?}: {text}");
    }
}

#[test]
fn a_node_dir_whose_node_is_gone_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    std::fs::create_dir(&node_dir).unwrap();
    let node_dir_text = node_dir.to_str().unwrap();

    // Never started there: no api.addr.
    let out = peercloud(
        &["--node-dir", node_dir_text, "ledger", "status"],
        dir.path(),
    );
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains(&format!("{node_dir_text}/api.addr")),
        "{text}"
    );
    assert!(text.contains("peercloud node"), "{text}");

    // Started once, stopped since: its address no longer answers.
    let base = format!("http://127.0.0.1:{}", closed_port());
    std::fs::write(node_dir.join("api.addr"), format!("{base}\n")).unwrap();
    std::fs::write(node_dir.join("api.token"), "secret\n").unwrap();
    let out = peercloud(
        &["--node-dir", node_dir_text, "ledger", "status"],
        dir.path(),
    );
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains(&base) && text.contains("not reachable"),
        "{text}"
    );
}

#[test]
fn the_default_node_is_the_devnets_first_provider() {
    let dir = tempfile::tempdir().unwrap();
    let out = peercloud(&["job", "status", &"ab".repeat(32)], dir.path());
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("devnet/node-1/api.addr"), "{text}");
}

#[test]
fn a_bad_cid_for_store_get_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = peercloud(&["store", "get", "not-a-cid", "-o", "out.bin"], dir.path());
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("not-a-cid"), "{text}");
    assert!(text.contains("is not a CID"), "{text}");
    assert!(!dir.path().join("out.bin").exists());
}

#[test]
fn a_bad_job_id_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = peercloud(&["job", "status", "xyz"], dir.path());
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("xyz") && text.contains("64 hex digits"),
        "{text}"
    );
}

#[test]
fn a_bad_transfer_is_refused_before_anything_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let account = new_wallet(dir.path());
    for (amount, why) in [
        ("1.2.3", "is not an amount"),
        ("-1", "is not an amount"),
        ("lots", "is not an amount"),
        ("0.0000000001", "more than 9 decimals"),
        ("0", "more than 0"),
    ] {
        // A node that is not there: the error must be about the amount.
        let out = peercloud(
            &[
                "--node",
                "http://127.0.0.1:1",
                "wallet",
                "transfer",
                &account,
                amount,
            ],
            dir.path(),
        );
        assert!(!out.status.success(), "{amount} was accepted");
        let text = stderr(&out);
        assert!(text.contains(why), "{amount}: {text}");
        assert!(!text.contains("not reachable"), "{amount}: {text}");
    }

    let out = peercloud(&["wallet", "transfer", "pc1nobody", "1"], dir.path());
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("pc1nobody"), "{text}");
}

#[test]
fn store_put_of_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    new_wallet(dir.path());
    let out = peercloud(
        &[
            "--node",
            "http://127.0.0.1:1",
            "store",
            "put",
            "/nonexistent/file.bin",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/file.bin"),
        "{}",
        stderr(&out)
    );
}
