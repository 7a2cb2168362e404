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
    let spec = wordcount_spec(dir.path());
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

/// Writes the wordcount job (one input, one named output) into `dir`.
fn wordcount_spec(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(dir.join("wc.wasm"), peercloud_workloads::WORDCOUNT)
        .expect("temp dir is writable");
    std::fs::write(dir.join("t.txt"), "to be or not to be").expect("temp dir is writable");
    let spec = dir.join("job.json");
    std::fs::write(
        &spec,
        r#"{"version": 1, "module": "wc.wasm", "inputs": [{"name": "t.txt", "source": "t.txt"}],
            "outputs": ["counts.json"], "max_price": "0.01"}"#,
    )
    .expect("temp dir is writable");
    spec
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let spec = wordcount_spec(dir.path());
    let out_dir = dir.path().join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_peercloud"))
        .args([
            "job",
            "run",
            spec.to_str().unwrap(),
            "--local",
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .env("PEERCLOUD_DATA_DIR", dir.path())
        .env("PEERCLOUD_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let logs = stderr(&out);
    assert!(logs.contains("run completed"), "the sandbox logged: {logs}");
    assert!(
        !logs.contains('\x1b'),
        "no escape codes in a pipe: {logs:?}"
    );
}

#[test]
fn a_failed_local_run_leaves_out_as_it_was_and_shows_the_modules_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // Writes /output/partial.txt (fd 4: a local run mounts /input as fd 3),
    // says why on stderr, then traps.
    let module = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open"
        (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "partial.txt")
      (data (i32.const 32) "partial")
      (data (i32.const 64) "error: the input is empty")
      (func (export "_start")
        (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 16) (i32.const 11)
                (i32.const 1) (i64.const 0x3fffffff) (i64.const 0x3fffffff) (i32.const 0) (i32.const 8))
          (then unreachable))
        (i32.store (i32.const 0) (i32.const 32))
        (i32.store (i32.const 4) (i32.const 7))
        (drop (call $fd_write (i32.load (i32.const 8)) (i32.const 0) (i32.const 1) (i32.const 12)))
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 25))
        (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 12)))
        unreachable))"#;
    std::fs::write(dir.path().join("dies.wat"), module).unwrap();
    let spec = dir.path().join("dies.json");
    std::fs::write(
        &spec,
        r#"{"version": 1, "module": "dies.wat", "max_price": "0.01"}"#,
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
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
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("trap: "), "{text}");
    assert!(text.contains("error: the input is empty"), "{text}");
    assert!(out_dir.is_dir(), "the user's directory stays");
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "nothing of the failed run: {left:?}");
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

#[test]
fn a_grid_run_checks_out_before_anything_is_posted() {
    let dir = tempfile::tempdir().unwrap();
    let spec = wordcount_spec(dir.path());
    // No wallet and no node here: a refusal that names `--out` came first.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("counts.json"), "{}").unwrap();
    let out = peercloud(
        &[
            "job",
            "run",
            spec.to_str().unwrap(),
            "--out",
            full.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("--out")
            && text.contains("is not empty")
            && text.contains("nothing was posted"),
        "{text}"
    );
    assert!(
        !text.contains("wallet"),
        "refused before the wallet: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(full.join("counts.json")).unwrap(),
        "{}"
    );
    // A directory the run created is removed again when the run fails.
    let fresh = dir.path().join("fresh/out");
    let out = peercloud(
        &[
            "job",
            "run",
            spec.to_str().unwrap(),
            "--out",
            fresh.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("wallet"), "{}", stderr(&out));
    assert!(
        !dir.path().join("fresh").exists(),
        "the directories made for --out are removed"
    );
}
