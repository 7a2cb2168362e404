//! `job run --local`: a spec with local paths runs in the sandbox; bad specs,
//! missing files, CIDs and occupied output directories get clear errors.

use std::path::Path;

use peercloud_compute::local::{LocalRunError, run_local};
use peercloud_compute::{Executor, ExecutorConfig};

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
