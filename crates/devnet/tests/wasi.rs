//! A directory input and stdin through the real user-side flow on the
//! in-process grid: the client stores each file of the tree as its own
//! object, the dispatch carries each file's path, two providers stage the
//! tree, run `wasi-check` with one input as stdin, and agree on the digest.

use std::path::Path;

use peercloud_client::{JobBundle, RunOptions, run_job};
use peercloud_devnet::Grid;

/// FNV-1a 64, as `wasi-check` computes it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("temp dir is writable");
    std::fs::write(path, text).expect("temp dir is writable");
}

#[test]
fn a_directory_input_and_stdin_run_on_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job");
    std::fs::create_dir_all(&job).unwrap();
    std::fs::write(job.join("wasi-check.wasm"), peercloud_workloads::WASI_CHECK).unwrap();
    // Created out of name order: the listing must not depend on it.
    write(&job.join("tree/sub/z.txt"), "zed");
    write(&job.join("tree/b.txt"), "bee");
    write(&job.join("tree/sub/deeper/c.txt"), "sea");
    write(&job.join("tree/a.txt"), "a");
    std::fs::create_dir_all(job.join("tree/empty")).unwrap();
    let stdin = "to be read from stdin\n".repeat(100);
    write(&job.join("stdin.txt"), &stdin);
    let spec = serde_json::json!({
        "version": 1,
        "name": "wasi check",
        "module": "wasi-check.wasm",
        "inputs": [
            {"name": "data", "source": "tree"},
            {"name": "lines.txt", "source": "stdin.txt"},
        ],
        "stdin": "lines.txt",
        "outputs": ["summary.txt"],
        "limits": {"fuel": 1000000000, "memory_bytes": 67108864, "wall_time_ms": 20000},
        "redundancy": 2,
        "max_price": "0.01",
    });
    let spec_path = job.join("job.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();

    let bundle = JobBundle::load(&spec_path).unwrap();
    let paths: Vec<&str> = bundle.inputs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "data/a.txt",
            "data/b.txt",
            "data/sub/deeper/c.txt",
            "data/sub/z.txt",
            "lines.txt"
        ],
        "one object per file, by its path under /input"
    );

    let grid = Grid::start(&dir.path().join("grid"), 3).unwrap();
    let node = grid.node(1).expect("a provider");
    let report = run_job(&node, grid.user(), &bundle, &RunOptions::default()).unwrap();
    assert_eq!(report.paid.len(), 2, "both providers agreed on the digest");

    let (name, summary) = &report.outputs[0];
    assert_eq!(name, "summary.txt");
    let summary = String::from_utf8(summary.clone()).unwrap();
    let line = |path: &str, text: &str| {
        format!(
            "f /input/{path} {} {:016x}\n",
            text.len(),
            fnv(text.as_bytes())
        )
    };
    let expected = [
        "cwd: /\n".to_owned(),
        format!(
            "stdin: {} bytes, fnv {:016x}\n",
            stdin.len(),
            fnv(stdin.as_bytes())
        ),
        format!(
            "scratch: read back (working directory holds work)\ninput:\n{}",
            "d /input/data\n"
        ),
        line("data/a.txt", "a"),
        line("data/b.txt", "bee"),
        "d /input/data/sub\n".to_owned(),
        "d /input/data/sub/deeper\n".to_owned(),
        line("data/sub/deeper/c.txt", "sea"),
        line("data/sub/z.txt", "zed"),
        line("lines.txt", &stdin),
    ]
    .concat();
    assert_eq!(summary, expected);
}
