//! What real programs expect of WASI, through `job run --local` and the
//! `wasi-check` example: relative paths in a fresh, bounded scratch
//! directory that is gone after the run, stdin from an input file, and
//! directory inputs staged whole and listed in name order.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{Dirs, executor};
use peercloud_compute::local::{INPUT_DIR_FILES_MAX, LocalRunError, run_local};
use peercloud_compute::sandbox::SCRATCH_DIR_PREFIX;
use peercloud_compute::{ComputeError, Limits};

/// FNV-1a 64, as `wasi-check` computes it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes `wasi-check.wasm` and a spec running it with `extra` JSON fields
/// (`"inputs": ...`, `"stdin": ...`) into `dir`.
fn spec(dir: &Path, extra: &str) -> PathBuf {
    std::fs::write(dir.join("wasi-check.wasm"), peercloud_workloads::WASI_CHECK).unwrap();
    let text = format!(
        r#"{{"version": 1, "module": "wasi-check.wasm", {extra}
            "outputs": ["summary.txt"], "max_price": "0.01"}}"#
    );
    let path = dir.join("job.json");
    std::fs::write(&path, text).unwrap();
    path
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

fn summary(out: &Path) -> String {
    std::fs::read_to_string(out.join("summary.txt")).unwrap()
}

#[test]
fn relative_paths_reach_a_fresh_scratch_that_is_gone_after_and_never_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "");
    let out = dir.path().join("out");
    let run = run_local(&executor(), &spec, &out).unwrap();
    assert_eq!(
        run.outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&run.outcome.stderr)
    );
    let seen = summary(&out);
    assert!(seen.starts_with("cwd: /\n"), "{seen}");
    assert!(
        seen.contains("scratch: read back (working directory holds work)\n"),
        "a fresh, empty working directory: {seen}"
    );
    assert_eq!(
        listing(&out),
        ["summary.txt"],
        "scratch files are not outputs"
    );
    let outputs: Vec<&str> = run
        .outcome
        .outputs
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(outputs, ["summary.txt"], "nor in the digest");
    assert_eq!(
        listing(dir.path()),
        ["job.json", "out", "wasi-check.wasm"],
        "the scratch directory is gone"
    );
    // A second run starts from an empty scratch again (same digest).
    let again = run_local(&executor(), &spec, &dir.path().join("out2")).unwrap();
    assert_eq!(again.outcome.output_digest, run.outcome.output_digest);
}

#[test]
fn a_scratch_flood_hits_its_limit_and_leaves_nothing() {
    let dirs = Dirs::new();
    let mut request = dirs.request(peercloud_workloads::WASI_CHECK);
    request.args = vec!["--flood".into(), (3u64 << 20).to_string()];
    request.limits = Limits {
        scratch_bytes: 1 << 20,
        fuel: 1_000_000_000,
        ..Limits::default()
    };
    let err = executor().run(&request).unwrap_err();
    assert!(
        matches!(
            err,
            ComputeError::ScratchTooLarge {
                limit_bytes: 1_048_576,
                written_bytes
            } if written_bytes > 1 << 20
        ),
        "{err}"
    );
    assert!(err.to_string().contains("limits.scratch_bytes"), "{err}");
    assert_eq!(
        listing(dirs.root.path()),
        ["in", "out"],
        "no scratch directory left beside the output"
    );

    // Within the limit the same flood runs; the scratch still goes.
    let dirs = Dirs::new();
    request.output_dir = dirs.output.clone();
    request.input_dir = Some(dirs.input.clone());
    request.limits.scratch_bytes = 4 << 20;
    executor().run(&request).unwrap();
    assert!(
        listing(dirs.root.path())
            .iter()
            .all(|name| !name.starts_with(SCRATCH_DIR_PREFIX))
    );
}

#[test]
fn stdin_is_the_named_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = b"line one\nline two\n".repeat(1000);
    std::fs::write(dir.path().join("lines.txt"), &text).unwrap();
    let spec = spec(
        dir.path(),
        r#""inputs": [{"name": "lines.txt", "source": "lines.txt"}], "stdin": "lines.txt","#,
    );
    let out = dir.path().join("out");
    run_local(&executor(), &spec, &out).unwrap();
    let expected = format!("stdin: {} bytes, fnv {:016x}\n", text.len(), fnv(&text));
    assert!(summary(&out).contains(&expected), "{}", summary(&out));

    // Without `stdin`, stdin is empty.
    let spec = self::spec(
        dir.path(),
        r#""inputs": [{"name": "lines.txt", "source": "lines.txt"}],"#,
    );
    let out = dir.path().join("out2");
    run_local(&executor(), &spec, &out).unwrap();
    assert!(summary(&out).contains(&format!("stdin: 0 bytes, fnv {:016x}\n", fnv(b""))));
}

#[test]
fn a_stdin_naming_no_input_or_a_directory_is_refused_naming_stdin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tree")).unwrap();
    std::fs::write(dir.path().join("tree/a.txt"), b"a").unwrap();
    for extra in [
        r#""inputs": [{"name": "tree", "source": "tree"}], "stdin": "nope","#,
        r#""inputs": [{"name": "tree", "source": "tree"}], "stdin": "tree","#,
    ] {
        let spec = spec(dir.path(), extra);
        let err = run_local(&executor(), &spec, &dir.path().join("out")).unwrap_err();
        assert!(
            matches!(&err, LocalRunError::Spec { source: peercloud_types::SpecError::Invalid { field, .. }, .. } if field == "stdin"),
            "{err}"
        );
        assert!(err.to_string().contains("`stdin`"), "{err}");
    }
}

/// A tree with subdirectories, files created in an order that is not the
/// names' (the host lists in its own order), and an empty directory.
fn make_tree(root: &Path, reversed: bool) {
    let mut files = vec![
        ("b.txt", "bee"),
        ("a.txt", "a"),
        ("sub/z.txt", "zed"),
        ("sub/deeper/c.txt", "sea"),
        ("sub/m.txt", "em"),
        ("Upper.txt", "capital"),
    ];
    if reversed {
        files.reverse();
    }
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::create_dir_all(root.join("sub/empty")).unwrap();
}

#[test]
fn a_directory_input_is_staged_whole_and_listed_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for (i, reversed) in [false, true].into_iter().enumerate() {
        let tree = dir.path().join(format!("tree{i}"));
        make_tree(&tree, reversed);
        let spec = spec(
            dir.path(),
            &format!(
                r#""inputs": [{{"name": "data", "source": "tree{i}"}},
                              {{"name": "note.txt", "source": "tree{i}/a.txt"}}],"#
            ),
        );
        let out = dir.path().join(format!("out{i}"));
        let run = run_local(&executor(), &spec, &out).unwrap();
        let seen = summary(&out);
        let input = seen.split("input:\n").nth(1).unwrap();
        let line = |path: &str, text: &str| {
            format!(
                "f /input/{path} {} {:016x}\n",
                text.len(),
                fnv(text.as_bytes())
            )
        };
        let expected = [
            "d /input/data\n".to_owned(),
            line("data/Upper.txt", "capital"),
            line("data/a.txt", "a"),
            line("data/b.txt", "bee"),
            "d /input/data/sub\n".to_owned(),
            "d /input/data/sub/deeper\n".to_owned(),
            line("data/sub/deeper/c.txt", "sea"),
            line("data/sub/m.txt", "em"),
            line("data/sub/z.txt", "zed"),
            line("note.txt", "a"),
        ]
        .concat();
        assert_eq!(
            input, expected,
            "name order, files read, empty dirs left out"
        );
        digests.push(run.outcome.output_digest);
    }
    assert_eq!(digests[0], digests[1], "the creation order does not matter");
}

#[test]
fn bad_directory_inputs_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let spec = spec(
        dir.path(),
        r#""inputs": [{"name": "x.txt", "source": "x.txt"}, {"name": "data", "source": "tree"}],"#,
    );
    std::fs::write(dir.path().join("x.txt"), b"x").unwrap();
    let run = |name: &str| run_local(&executor(), &spec, &dir.path().join(name)).unwrap_err();
    let names_field = |err: &LocalRunError| {
        let shown = err.to_string();
        assert!(shown.contains("`inputs[1].source`"), "{shown}");
        assert!(
            !shown.contains("peercloud-input-"),
            "not the staging path: {shown}"
        );
        shown
    };

    let shown = names_field(&run("o1"));
    assert!(shown.contains("no files"), "{shown}");

    std::fs::write(tree.join(".env"), b"SECRET=1").unwrap();
    let shown = names_field(&run("o2"));
    assert!(shown.contains("\".env\""), "{shown}");
    std::fs::remove_file(tree.join(".env")).unwrap();

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path().join("x.txt"), tree.join("escape")).unwrap();
        let shown = names_field(&run("o3"));
        assert!(shown.contains("outside"), "{shown}");
        std::fs::remove_file(tree.join("escape")).unwrap();
        std::os::unix::fs::symlink(&tree, tree.join("loop")).unwrap();
        let shown = names_field(&run("o4"));
        assert!(shown.contains("only links to files"), "{shown}");
        std::fs::remove_file(tree.join("loop")).unwrap();
    }

    for i in 0..=INPUT_DIR_FILES_MAX {
        std::fs::write(tree.join(format!("f{i:05}")), b"").unwrap();
    }
    let shown = names_field(&run("o5"));
    assert!(
        shown.contains(&format!("more than {INPUT_DIR_FILES_MAX} files")),
        "{shown}"
    );
    for name in ["o1", "o2", "o3", "o4", "o5"] {
        assert!(!dir.path().join(name).exists(), "{name}: nothing left");
    }
}
