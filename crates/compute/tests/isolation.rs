//! A module reaches nothing of the host but its two directories: writes to
//! `/input`, `..` escapes, absolute paths and symbolic links all fail inside
//! the module, and the host side is checked to be untouched.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Dirs, command, executor, small_limits};
use peercloud_compute::ComputeError;

/// Errno of `path_open` at fd `$dir` of the path at `$ptr`/`$len` with
/// `oflags`, asking for every right (the 30 rights of WASI preview 1).
const TRY_OPEN: &str = r#"
  (func $try_open (param $dir i32) (param $ptr i32) (param $len i32) (param $oflags i32) (result i32)
    (call $path_open (local.get $dir) (i32.const 0) (local.get $ptr) (local.get $len)
      (local.get $oflags) (i64.const 0x3fffffff) (i64.const 0x3fffffff) (i32.const 0) (i32.const 8)))"#;

const O_CREAT: i32 = 1;
const O_TRUNC: i32 = 8;
/// Preopened descriptors: `/input` is 3 and `/output` 4 when both are mounted.
const INPUT_FD: i32 = 3;
const OUTPUT_FD: i32 = 4;

#[test]
fn writes_outside_output_fail_and_leave_the_host_untouched() {
    let dirs = Dirs::new();
    let original = b"the user's input, not to be changed";
    std::fs::write(dirs.input.join("data.txt"), original).unwrap();
    let outside = dirs.root.path().join("outside.txt");
    let absolute = dirs.root.path().join("absolute.txt");
    let absolute_text = absolute.to_str().unwrap();

    // (directory fd, path, oflags): each open must fail.
    let attempts: Vec<(i32, String, i32)> = vec![
        (INPUT_FD, "new.txt".into(), O_CREAT),
        (INPUT_FD, "data.txt".into(), O_TRUNC),
        (INPUT_FD, "data.txt".into(), 0),
        (OUTPUT_FD, "../outside.txt".into(), O_CREAT),
        (OUTPUT_FD, "../in/data.txt".into(), O_TRUNC),
        (OUTPUT_FD, absolute_text.into(), O_CREAT),
        (INPUT_FD, "../outside.txt".into(), O_CREAT),
    ];
    let mut data = String::new();
    let mut body = String::new();
    let mut at = 1024;
    for (i, (fd, path, oflags)) in attempts.iter().enumerate() {
        data.push_str(&format!("(data (i32.const {at}) {path:?})\n"));
        // An open for writing that succeeds ends the run with 100 + its index.
        body.push_str(&format!(
            "(if (i32.eqz (call $try_open (i32.const {fd}) (i32.const {at}) (i32.const {}) (i32.const {oflags})))
               (then (call $proc_exit (i32.const {}))))\n",
            path.len(),
            100 + i
        ));
        at += 256;
    }
    let module = command(&body, &format!("{TRY_OPEN}\n{data}"));
    let mut request = dirs.request(module);
    request.limits = small_limits();
    let outcome = executor().run(&request).unwrap();

    // Opening data.txt read-only with every right asked is refused too on a
    // read-only mount, so every attempt failed:
    assert_eq!(
        outcome.exit_code,
        0,
        "attempt {} succeeded",
        outcome.exit_code - 100
    );
    assert_eq!(
        std::fs::read(dirs.input.join("data.txt")).unwrap(),
        original
    );
    assert_eq!(
        std::fs::read_dir(&dirs.input).unwrap().count(),
        1,
        "nothing created in /input"
    );
    assert!(!outside.exists());
    assert!(!absolute.exists());
    assert!(outcome.outputs.is_empty());
}

#[test]
fn a_symbolic_link_out_of_output_leads_nowhere() {
    let dirs = Dirs::new();
    let target = dirs.root.path().join("target.txt");
    std::fs::write(&target, b"keep").unwrap();
    // path_symlink("../target.txt", /output, "link"), then open "link" for writing.
    let body = format!(
        r#"(drop (call $path_symlink (i32.const 1024) (i32.const 13) (i32.const {OUTPUT_FD})
             (i32.const 1280) (i32.const 4)))
           (if (i32.eqz (call $try_open (i32.const {OUTPUT_FD}) (i32.const 1280) (i32.const 4) (i32.const {O_TRUNC})))
             (then (call $proc_exit (i32.const 100))))"#
    );
    let extra = format!(
        r#"(import "wasi_snapshot_preview1" "path_symlink"
             (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
           {TRY_OPEN}
           (data (i32.const 1024) "../target.txt")
           (data (i32.const 1280) "link")"#
    );
    // Imports must come first in a module: splice the extra import in at the top.
    let module = String::from_utf8(command(&body, "")).unwrap();
    let module = module.replacen("(memory", &format!("{extra}\n  (memory"), 1);
    let mut request = dirs.request(module.into_bytes());
    request.limits = small_limits();
    let result = executor().run(&request);
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    match result {
        // The link was created: the outputs are refused and removed.
        Err(ComputeError::OutputInvalid { path, .. }) => assert_eq!(path, "link"),
        // The link was refused: nothing to see.
        Ok(outcome) => assert_eq!(outcome.exit_code, 0),
        Err(other) => panic!("unexpected {other}"),
    }
    assert_eq!(std::fs::read_dir(&dirs.output).unwrap().count(), 0);
}
