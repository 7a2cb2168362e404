//! The `peercloud` binary as a user runs it: exit codes and messages.

use std::process::{Command, Output};

fn peercloud(args: &[&str], data_dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peercloud"))
        .args(args)
        .env("PEERCLOUD_DATA_DIR", data_dir)
        .output()
        .expect("the peercloud binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn wallet_is_created_once_shown_and_refused_when_exposed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let created = peercloud(&["wallet", "new", "--json"], dir.path());
    assert!(created.status.success(), "{}", stderr(&created));
    let json: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let account = json["account"].as_str().unwrap().to_owned();
    assert!(account.starts_with("pc1"));

    let again = peercloud(&["wallet", "new"], dir.path());
    assert!(!again.status.success());
    assert!(stderr(&again).contains("never overwritten"));

    let shown = peercloud(&["wallet", "show"], dir.path());
    assert!(String::from_utf8_lossy(&shown.stdout).contains(&account));

    let key = dir.path().join("wallet.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exposed = peercloud(&["wallet", "show"], dir.path());
    assert!(!exposed.status.success());
    assert!(
        stderr(&exposed).contains("chmod 600"),
        "{}",
        stderr(&exposed)
    );
}

#[test]
fn a_bad_spec_is_named_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.json");
    std::fs::write(
        &spec,
        r#"{"version": 1, "module": "m.wasm", "max_price": "lots"}"#,
    )
    .unwrap();
    let out = peercloud(&["job", "validate", spec.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_price"), "{}", stderr(&out));

    let out = peercloud(
        &["job", "run", spec.to_str().unwrap(), "--local"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("max_price"), "{}", stderr(&out));

    let out = peercloud(&["job", "validate", "/nonexistent/job.json"], dir.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/job.json"));
}

#[test]
fn job_run_local_prints_status_fuel_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wc.wasm"), peercloud_workloads::WORDCOUNT).unwrap();
    std::fs::write(dir.path().join("t.txt"), "to be or not to be").unwrap();
    let spec = dir.path().join("job.json");
    std::fs::write(
        &spec,
        r#"{"version": 1, "module": "wc.wasm", "inputs": [{"name": "t.txt", "source": "t.txt"}],
            "outputs": ["counts.json"], "max_price": "0.01"}"#,
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = peercloud(
        &[
            "job",
            "run",
            spec.to_str().unwrap(),
            "--local",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exit status   0"), "{text}");
    assert!(text.contains("fuel used"), "{text}");
    assert!(text.contains("counts.json"), "{text}");
    let counts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("counts.json")).unwrap()).unwrap();
    assert_eq!(counts["total_words"], 6);
}

#[test]
fn the_schema_command_prints_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = peercloud(&["job", "schema"], dir.path());
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let published: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/job-spec.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(printed, published);
}
