//! `job run --local`: a spec with local paths runs in the sandbox; bad specs,
//! missing files, CIDs and occupied output directories get clear errors.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::command;
use peercloud_compute::local::{LocalRunError, run_local};
use peercloud_compute::{ComputeError, Executor, ExecutorConfig};

fn write_spec(dir: &Path, module: &str, outputs: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("wordcount.wasm"), peercloud_workloads::WORDCOUNT)
        .expect("temp dir is writable");
    std::fs::write(dir.join("a.txt"), "one two two three three three")
        .expect("temp dir is writable");
    let spec = format!(
        r#"{{"version": 1, "module": "{module}", "args": ["--top", "2"],
            "inputs": [{{"name": "a.txt", "source": "a.txt"}}], "outputs": {outputs},
            "max_price": "0.01"}}"#
    );
    let path = dir.join("job.json");
    std::fs::write(&path, spec).expect("temp dir is writable");
    path
}

#[test]
fn runs_a_spec_from_local_paths() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "wordcount.wasm", r#"["counts.json"]"#);
    let executor = Executor::new(ExecutorConfig::default()).unwrap();
    let out = dir.path().join("out");
    let run = run_local(&executor, &spec, &out).unwrap();
    assert_eq!(run.outcome.exit_code, 0);
    assert_eq!(
        listing(&out),
        ["counts.json"],
        "the outputs and nothing else"
    );
    assert!(run.outcome.fuel_consumed > 0);
    let counts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("counts.json")).unwrap()).unwrap();
    assert_eq!(counts["total_words"], 6);
    assert_eq!(counts["top"][0]["word"], "three");

    // The same spec again gives the same digest (in a fresh output directory).
    let again = run_local(&executor, &spec, &dir.path().join("out2")).unwrap();
    assert_eq!(again.outcome.output_digest, run.outcome.output_digest);
    // An occupied output directory is refused, nothing overwritten.
    assert!(matches!(
        run_local(&executor, &spec, &out),
        Err(LocalRunError::OutputDir { .. })
    ));
}

#[test]
fn bad_input_gets_errors_that_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Executor::new(ExecutorConfig::default()).unwrap();

    let missing = write_spec(dir.path(), "nope.wasm", "[]");
    let err = run_local(&executor, &missing, &dir.path().join("o1")).unwrap_err();
    assert!(
        matches!(err, LocalRunError::ReadFile { ref field, .. } if field == "module"),
        "{err}"
    );
    assert!(err.to_string().contains("build the examples first"));

    let cid = peercloud_types::ContentId::of(b"x");
    let by_cid = write_spec(dir.path(), &cid.to_string(), "[]");
    let err = run_local(&executor, &by_cid, &dir.path().join("o2")).unwrap_err();
    assert!(matches!(err, LocalRunError::NeedsPath { .. }), "{err}");

    let wants_more = write_spec(dir.path(), "wordcount.wasm", r#"["report.pdf"]"#);
    let err = run_local(&executor, &wants_more, &dir.path().join("o3")).unwrap_err();
    assert!(
        matches!(err, LocalRunError::MissingOutput { ref name, .. } if name == "report.pdf"),
        "{err}"
    );
    assert!(
        !dir.path().join("o3").exists(),
        "a run that failed leaves no outputs (not even counts.json)"
    );

    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"version": 1, "module": "m.wasm", "max_price": "0.01", "redundancy": 99}"#,
    )
    .unwrap();
    let err = run_local(
        &executor,
        &dir.path().join("bad.json"),
        &dir.path().join("o4"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("redundancy"), "{err}");

    std::fs::write(dir.path().join("garbage.wasm"), b"not wasm at all").unwrap();
    let not_wasm = write_spec(dir.path(), "garbage.wasm", "[]");
    let err = run_local(&executor, &not_wasm, &dir.path().join("o5")).unwrap_err();
    assert!(matches!(err, LocalRunError::Compute(_)), "{err}");
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A spec whose module writes `/output/partial.txt` and then ends with `end`
/// (WAT instructions). A local run mounts `/input` (fd 3) and `/output` (fd 4).
fn failing_spec(dir: &Path, name: &str, end: &str, limits: &str) -> std::path::PathBuf {
    let body = format!(
        r#"
        (local $fd i32)
        (if (call $path_open (i32.const 4) (i32.const 0) (i32.const 16) (i32.const 11)
                (i32.const 1) (i64.const 0x3fffffff) (i64.const 0x3fffffff) (i32.const 0) (i32.const 8))
          (then unreachable))
        (local.set $fd (i32.load (i32.const 8)))
        (i32.store (i32.const 0) (i32.const 32))
        (i32.store (i32.const 4) (i32.const 7))
        (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 12))
          (then unreachable))
        {end}"#
    );
    let module = command(
        &body,
        r#"(data (i32.const 16) "partial.txt") (data (i32.const 32) "partial")"#,
    );
    std::fs::write(dir.join(format!("{name}.wat")), module).unwrap();
    let spec = format!(
        r#"{{"version": 1, "module": "{name}.wat", "limits": {limits}, "max_price": "0.01"}}"#
    );
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, spec).unwrap();
    path
}

#[test]
fn a_failed_run_leaves_the_output_directory_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let executor = Executor::new(ExecutorConfig::default()).unwrap();
    let trap = failing_spec(dir.path(), "trap", "unreachable", "{}");
    let spin = failing_spec(
        dir.path(),
        "spin",
        "(loop $spin (br $spin))",
        r#"{"fuel": 1000000}"#,
    );
    let slow = failing_spec(
        dir.path(),
        "slow",
        "(loop $spin (br $spin))",
        r#"{"fuel": 18446744073709551615, "wall_time_ms": 200}"#,
    );
    let exits = failing_spec(dir.path(), "exits", "(call $proc_exit (i32.const 3))", "{}");

    for (spec, why) in [(&trap, "trap"), (&spin, "fuel"), (&slow, "wall time")] {
        // A directory the run creates is gone again, with its missing parents.
        let fresh = dir.path().join(format!("new-{why}")).join("out");
        let err = run_local(&executor, spec, &fresh).unwrap_err();
        let expected = match why {
            "trap" => matches!(err, LocalRunError::Compute(ComputeError::Trap { .. })),
            "fuel" => matches!(err, LocalRunError::Compute(ComputeError::OutOfFuel { .. })),
            _ => matches!(
                err,
                LocalRunError::Compute(ComputeError::WallTimeExceeded { .. })
            ),
        };
        assert!(expected, "{why}: {err}");
        assert!(
            !dir.path().join(format!("new-{why}")).exists(),
            "{why}: what the run created is removed"
        );

        // A directory the user made stays, empty.
        let existing = dir.path().join(format!("existing-{why}"));
        std::fs::create_dir(&existing).unwrap();
        run_local(&executor, spec, &existing).unwrap_err();
        assert!(existing.is_dir(), "{why}: the user's directory stays");
        assert!(
            listing(&existing).is_empty(),
            "{why}: {:?}",
            listing(&existing)
        );
    }

    // A module that exits (even with a nonzero code) finished: its outputs stay.
    let out = dir.path().join("exited");
    let run = run_local(&executor, &exits, &out).unwrap();
    assert_eq!(run.outcome.exit_code, 3);
    assert_eq!(listing(&out), ["partial.txt"]);
    assert_eq!(std::fs::read(out.join("partial.txt")).unwrap(), b"partial");
}
