//! Builds the example workloads (`<repo>/examples`, its own cargo workspace)
//! for `wasm32-wasip1` in release and copies the modules into `OUT_DIR`, where
//! `src/lib.rs` embeds them; also writes the corpus table.
//!
//! The inner cargo gets its own target directory under `OUT_DIR` (the outer
//! build holds the lock of the shared one) and an environment stripped of
//! what the outer build set for itself (flags, target, jobserver, wrappers),
//! so it builds the examples exactly as a person running
//! `cargo build --release --target wasm32-wasip1 --manifest-path examples/Cargo.toml` would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The modules the examples workspace produces, by binary name.
const MODULES: [&str; 4] = ["wordcount", "render", "kernel", "wasi-check"];
/// The WebAssembly target the examples are built for.
const TARGET: &str = "wasm32-wasip1";
/// Environment variables the outer build sets that must not reach the inner one.
const STRIPPED_ENV: [&str; 12] = [
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "MAKEFLAGS",
    "MFLAGS",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
];
/// `CARGO_*` variables the inner cargo keeps: where the registry and its
/// credentials live and how to reach the network. Every other `CARGO_*`
/// variable describes the outer build and is removed.
const KEPT_CARGO_ENV_PREFIXES: [&str; 5] = [
    "CARGO_HOME",
    "CARGO_NET_",
    "CARGO_HTTP_",
    "CARGO_REGISTRIES_",
    "CARGO_REGISTRY_",
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let examples = manifest_dir.join("../../examples");
    let examples = examples.canonicalize().unwrap_or_else(|e| {
        fail(&format!(
            "the examples workspace {} is missing: {e}",
            examples.display()
        ))
    });

    rerun_if_changed(&examples);
    ensure_target_installed();

    let target_dir = out_dir.join("wasm-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(examples.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Build scripts talk to cargo on stdout; the inner cargo's output goes to stderr.
        .stdout(std::io::stderr());
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let outer_cargo = key.starts_with("CARGO_")
            && !KEPT_CARGO_ENV_PREFIXES.iter().any(|p| key.starts_with(p));
        if outer_cargo || STRIPPED_ENV.contains(&key) {
            command.env_remove(key);
        }
    }
    let status = command
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo: {e}")));
    if !status.success() {
        fail(&format!(
            "building the example workloads failed ({status}); see the cargo output above, or run: \
             cargo build --release --target {TARGET} --manifest-path {}",
            examples.join("Cargo.toml").display()
        ));
    }

    for name in MODULES {
        let built = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{name}.wasm"));
        let copy = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&built, &copy).unwrap_or_else(|e| {
            fail(&format!(
                "cannot copy {} to {}: {e}",
                built.display(),
                copy.display()
            ))
        });
    }
    write_corpus_table(&examples.join("corpus"), &out_dir.join("corpus.rs"));
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| fail(&format!("cargo did not set {key}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: peercloud-workloads: {message}");
    std::process::exit(1);
}

/// Tells cargo to rebuild when any source of the examples changes (a
/// directory is scanned recursively); `target/` is left out.
fn rerun_if_changed(examples: &Path) {
    for file in ["Cargo.toml", "Cargo.lock", "wordcount.json", "render.json"] {
        println!("cargo:rerun-if-changed={}", examples.join(file).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        examples.join("corpus").display()
    );
    for name in MODULES {
        println!(
            "cargo:rerun-if-changed={}",
            examples.join(name).join("Cargo.toml").display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            examples.join(name).join("src").display()
        );
    }
}

/// Makes sure the standard library for the target is installed. A fresh
/// rustup toolchain lacks it, and a `rust-toolchain.toml` does not add it to a
/// toolchain that is already installed, so when it is missing and rustup is
/// present the build installs it (saying so); without rustup it fails with the
/// fix instead of the inner build's "can't find crate for `core`".
fn ensure_target_installed() {
    let Some(sysroot) = sysroot() else { return };
    let lib = sysroot.join("lib/rustlib").join(TARGET);
    if lib.is_dir() {
        return;
    }
    let toolchain = rustup_toolchain(&sysroot);
    eprintln!(
        "the {TARGET} target is missing from {}; installing it with rustup",
        sysroot.display()
    );
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Some(toolchain) = &toolchain {
        rustup.args(["--toolchain", toolchain]);
    }
    let status = rustup.stdout(std::io::stderr()).status();
    let fix = format!("rustup target add {TARGET}");
    match status {
        // Cargo shows this again on later builds that reuse this run's
        // output, so it says what happened, not what is happening.
        Ok(status) if status.success() && lib.is_dir() => println!(
            "cargo:warning=the {TARGET} target was missing from {}; installed it with rustup",
            sysroot.display()
        ),
        Ok(status) => fail(&format!(
            "`{fix}` failed ({status}), so the example workloads cannot be built; run it by hand"
        )),
        Err(e) => fail(&format!(
            "the {TARGET} target is not installed (no {}) and rustup cannot be run ({e}); \
             install the target's standard library for this toolchain (with rustup: {fix})",
            lib.display()
        )),
    }
}

/// The sysroot of the compiler cargo builds with.
fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!sysroot.is_empty()).then(|| PathBuf::from(sysroot))
}

/// The rustup toolchain that owns `sysroot` (`<RUSTUP_HOME>/toolchains/<name>`),
/// else the one rustup chose for this build, so the target lands in the
/// toolchain that is building rather than rustup's default.
fn rustup_toolchain(sysroot: &Path) -> Option<String> {
    let parent = sysroot.parent()?;
    if parent.file_name().is_some_and(|n| n == "toolchains") {
        return sysroot.file_name()?.to_str().map(str::to_owned);
    }
    std::env::var("RUSTUP_TOOLCHAIN").ok()
}

/// Writes `corpus.rs`: a sorted table of the corpus's `.txt` files, each
/// embedded with `include_bytes!`.
fn write_corpus_table(corpus: &Path, out: &Path) {
    let entries = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", corpus.display())));
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        let entry =
            entry.unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", corpus.display())));
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if name.ends_with(".txt") && path.is_file() {
            files.push((name, path));
        }
    }
    files.sort();
    let mut code = String::from("&[\n");
    for (name, path) in &files {
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    std::fs::write(out, code)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
}
