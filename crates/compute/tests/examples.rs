//! The real example workloads under the sandbox: wordcount counts the corpus
//! correctly and deterministically, render writes valid PNG tiles that
//! stitch into the whole picture, kernel agrees with its native build.

// Helpers outside #[test] functions panic too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{Dirs, executor};
use peercloud_compute::{Executor, Limits, RunOutcome, RunRequest};
use peercloud_types::JobSpec;

#[path = "../../../examples/kernel/src/lib.rs"]
mod kernel;

fn stage_corpus(input: &Path) {
    for (name, text) in peercloud_workloads::corpus() {
        std::fs::write(input.join(name), text).unwrap();
    }
}

fn wordcount(executor: &Executor, dirs: &Dirs, top: usize) -> RunOutcome {
    let mut request = dirs.request(peercloud_workloads::WORDCOUNT);
    request.args = vec!["--top".into(), top.to_string()];
    executor.run(&request).unwrap()
}

#[test]
fn wordcount_counts_the_corpus() {
    let dirs = Dirs::new();
    stage_corpus(&dirs.input);
    let outcome = wordcount(&executor(), &dirs, 10);
    assert_eq!(
        outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );

    // The same rule, computed here: runs of alphanumerics, lower-cased.
    let mut expected: HashMap<String, u64> = HashMap::new();
    let mut total = 0u64;
    for (_, text) in peercloud_workloads::corpus() {
        let text = std::str::from_utf8(text).unwrap();
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            total += 1;
            *expected.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&String, &u64)> = expected.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));

    assert_eq!(outcome.outputs.len(), 1);
    assert_eq!(outcome.outputs[0].path, "counts.json");
    let json = std::fs::read(dirs.output.join("counts.json")).unwrap();
    assert_eq!(
        outcome.outputs[0].blake3,
        peercloud_types::Hash32::of(&json)
    );
    let counts: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(counts["files"], 4);
    assert_eq!(counts["total_words"], total);
    assert_eq!(counts["distinct_words"], expected.len());
    let top = counts["top"].as_array().unwrap();
    assert_eq!(top.len(), 10);
    for (entry, (word, count)) in top.iter().zip(&ranked) {
        assert_eq!(entry["word"], word.as_str());
        assert_eq!(entry["count"], **count);
    }
    assert_eq!(top[0]["word"], "the");
    let summary = String::from_utf8(outcome.stdout).unwrap();
    assert!(
        summary.starts_with(&format!("wordcount: 4 files, {total} words")),
        "{summary}"
    );
}

#[test]
fn the_same_job_in_another_directory_has_the_same_digest() {
    let executor = executor();
    let first = Dirs::new();
    stage_corpus(&first.input);
    let second = Dirs::new();
    stage_corpus(&second.input);
    let a = wordcount(&executor, &first, 20);
    let b = wordcount(&Executor::new(Default::default()).unwrap(), &second, 20);
    assert_ne!(first.output, second.output);
    assert_eq!(a.output_digest, b.output_digest);
    assert_eq!(
        a.fuel_consumed, b.fuel_consumed,
        "fuel is deterministic too"
    );

    let changed = Dirs::new();
    stage_corpus(&changed.input);
    std::fs::write(changed.input.join("zz-extra.txt"), b"one more word").unwrap();
    let c = wordcount(&executor, &changed, 20);
    assert_ne!(
        a.output_digest, c.output_digest,
        "another input, another digest"
    );
}

#[test]
fn the_example_spec_runs_as_written() {
    let spec = JobSpec::from_json(peercloud_workloads::WORDCOUNT_SPEC).unwrap();
    let dirs = Dirs::new();
    for input in &spec.inputs {
        let peercloud_types::job::Source::Path(path) = &input.source else {
            panic!("a path")
        };
        let source = Path::new(peercloud_workloads::EXAMPLES_DIR).join(path);
        std::fs::copy(source, dirs.input.join(&input.name)).unwrap();
    }
    let request = RunRequest::for_job(
        &spec,
        peercloud_workloads::WORDCOUNT,
        Some(dirs.input.clone()),
        &dirs.output,
    );
    let outcome = executor().run(&request).unwrap();
    assert_eq!(outcome.exit_code, 0);
    let names: Vec<&str> = outcome.outputs.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(names, spec.outputs);
}

/// Runs one render tile and decodes it: (width, height, RGB bytes).
fn render(executor: &Executor, args: &str) -> (u32, u32, Vec<u8>) {
    let dirs = Dirs::new();
    let mut request = RunRequest::new(peercloud_workloads::RENDER, &dirs.output);
    request.args = args.split_whitespace().map(String::from).collect();
    request.limits = Limits {
        fuel: 20_000_000_000,
        ..Limits::default()
    };
    let outcome = executor.run(&request).unwrap();
    assert_eq!(
        outcome.exit_code,
        0,
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert_eq!(outcome.outputs.len(), 1);
    let file = std::fs::File::open(dirs.output.join(&outcome.outputs[0].path)).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    pixels.truncate(frame.buffer_size());
    (frame.width, frame.height, pixels)
}

#[test]
fn render_writes_a_png_tile_of_the_right_size() {
    let spec = JobSpec::from_json(peercloud_workloads::RENDER_SPEC).unwrap();
    let executor = executor();
    let (width, height, pixels) = render(&executor, &spec.args.join(" "));
    assert_eq!((width, height), (256, 256));
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(3).collect();
    assert!(
        distinct.len() > 1000,
        "a picture, not a flat colour: {} colours",
        distinct.len()
    );
}

#[test]
fn render_tiles_stitch_into_the_whole_picture() {
    let (width, height, size) = (40u32, 30u32, 16u32);
    let scene = format!("--width {width} --height {height} --max-iter 200");
    let executor = executor();
    let (_, _, whole) = render(
        &executor,
        &format!("{scene} --tile-x 0 --tile-y 0 --tile-size {width}"),
    );
    let mut stitched = vec![0u8; whole.len()];
    for tile_y in 0..height.div_ceil(size) {
        for tile_x in 0..width.div_ceil(size) {
            let args = format!("{scene} --tile-x {tile_x} --tile-y {tile_y} --tile-size {size}");
            let (tile_width, tile_height, pixels) = render(&executor, &args);
            assert_eq!(tile_width, size.min(width - tile_x * size));
            assert_eq!(tile_height, size.min(height - tile_y * size));
            for row in 0..tile_height {
                let from = (row * tile_width * 3) as usize;
                let y = tile_y * size + row;
                let to = ((y * width + tile_x * size) * 3) as usize;
                stitched[to..to + (tile_width * 3) as usize]
                    .copy_from_slice(&pixels[from..from + (tile_width * 3) as usize]);
            }
        }
    }
    assert!(stitched == whole, "the tiles differ from the whole picture");
}

#[test]
fn kernel_agrees_with_its_native_build() {
    let dirs = Dirs::new();
    let mut request = RunRequest::new(peercloud_workloads::KERNEL, &dirs.output);
    request.args = ["--iterations", "100000", "--seed", "5"]
        .map(String::from)
        .to_vec();
    let outcome = executor().run(&request).unwrap();
    let expected = format!(
        "kernel: iterations=100000 seed=5 result={:#018x}\n",
        kernel::mix(5, 100_000)
    );
    assert_eq!(String::from_utf8(outcome.stdout).unwrap(), expected);
}
