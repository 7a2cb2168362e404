//! Peercloud's example workloads, compiled for `wasm32-wasip1` by this
//! crate's build script from the `examples/` workspace and embedded here, so
//! tests, benches and `peercloud demo` run the real modules without a
//! separate build step.
//!
//! - [`WORDCOUNT`]: counts the words of every file in `/input`, writes
//!   `/output/counts.json` (`--top N`, default 20).
//! - [`RENDER`]: renders one tile of a Mandelbrot picture to
//!   `/output/tile-X-Y.png` (`--width W --height H --tile-x X --tile-y Y
//!   --tile-size S [--max-iter N]`); tiles from different nodes stitch exactly.
//! - [`KERNEL`]: an integer-mixing kernel (`--iterations N [--seed S]`), the
//!   same source as [`KERNEL_SOURCE`], for comparing the sandbox with native.
//! - [`WASI_CHECK`]: exercises what real programs expect of WASI (the
//!   working directory, stdin, a scratch file at a relative path, a
//!   recursive listing of `/input` in the order the sandbox gives) and
//!   writes what it saw to `/output/summary.txt` (`--flood BYTES` first
//!   fills the working directory, to test its limit).

/// The `wordcount` module (a WASI command).
pub const WORDCOUNT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wordcount.wasm"));

/// The `render` module (a WASI command).
pub const RENDER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/render.wasm"));

/// The `kernel` module (a WASI command).
pub const KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kernel.wasm"));

/// The `wasi-check` module (a WASI command).
pub const WASI_CHECK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wasi-check.wasm"));

/// Path of the kernel's source (`examples/kernel/src/lib.rs`), for benches that
/// compile the same function natively with `#[path = ...] mod kernel;`.
pub const KERNEL_SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/kernel/src/lib.rs"
);

/// The job spec of the wordcount example (`examples/wordcount.json`); its
/// paths are relative to [`EXAMPLES_DIR`].
pub const WORDCOUNT_SPEC: &str = include_str!("../../../examples/wordcount.json");

/// The job spec of one render tile (`examples/render.json`); its paths are
/// relative to [`EXAMPLES_DIR`].
pub const RENDER_SPEC: &str = include_str!("../../../examples/render.json");

/// The examples workspace on the machine that built this crate (where the
/// specs' relative paths point).
pub const EXAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");

/// The text corpus for `wordcount` (`examples/corpus/*.txt`), sorted by file name.
const CORPUS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/corpus.rs"));

/// The corpus files as `(file name, contents)`, sorted by name: four
/// public-domain openings (Austen, Carroll, Dickens, Melville), about 5 KB.
pub fn corpus() -> &'static [(&'static str, &'static [u8])] {
    CORPUS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every WebAssembly binary starts with `\0asm` and version 1.
    const WASM_HEADER: [u8; 8] = *b"\0asm\x01\0\0\0";

    #[test]
    fn modules_are_webassembly() {
        for module in [WORDCOUNT, RENDER, KERNEL, WASI_CHECK] {
            assert!(module.len() > 1000);
            assert_eq!(module[..8], WASM_HEADER);
        }
    }

    #[test]
    fn corpus_is_sorted_text() {
        let names: Vec<&str> = corpus().iter().map(|(name, _)| *name).collect();
        assert_eq!(names.len(), 4);
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for (name, text) in corpus() {
            assert!(name.ends_with(".txt"));
            assert!(std::str::from_utf8(text).is_ok(), "{name} is not UTF-8");
        }
    }

    #[test]
    fn specs_parse_and_name_files_that_exist() {
        for text in [WORDCOUNT_SPEC, RENDER_SPEC] {
            let spec = peercloud_types::JobSpec::from_json(text).unwrap();
            for input in &spec.inputs {
                let peercloud_types::job::Source::Path(path) = &input.source else {
                    panic!("example inputs are local paths");
                };
                assert!(
                    std::path::Path::new(EXAMPLES_DIR).join(path).is_file(),
                    "{path}"
                );
            }
        }
        let wordcount = peercloud_types::JobSpec::from_json(WORDCOUNT_SPEC).unwrap();
        let names: Vec<&str> = wordcount.inputs.iter().map(|i| i.name.as_str()).collect();
        let corpus: Vec<&str> = corpus().iter().map(|(name, _)| *name).collect();
        assert_eq!(names, corpus, "wordcount.json lists the whole corpus");
    }
}
