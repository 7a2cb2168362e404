//! Exercises what real programs expect of WASI and writes what it saw to
//! `/output/summary.txt`:
//!
//! - `cwd`: the working directory (`std::env::current_dir`);
//! - `stdin`: how many bytes stdin held and their FNV-1a hash;
//! - `scratch`: a file written at a relative path (`work/scratch.txt`) and
//!   read back;
//! - `input`: every entry under `/input`, walked recursively **in the order
//!   the directory listings give** (not sorted here: the sandbox lists in
//!   name order), one line each: `d <path>` or `f <path> <size> <fnv>`.
//!
//! `--flood BYTES` first writes that many bytes to `flood.bin` in the
//! working directory, to test the scratch limit.

use std::io::{Read, Write};
use std::path::Path;

/// FNV-1a, 64 bits: a checksum that needs no dependency.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn walk(dir: &Path, shown: &str, lines: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{shown}/{name}");
        if entry.file_type()?.is_dir() {
            lines.push(format!("d {path}"));
            walk(&entry.path(), &path, lines)?;
        } else {
            let bytes = std::fs::read(entry.path())?;
            lines.push(format!("f {path} {} {:016x}", bytes.len(), fnv(&bytes)));
        }
    }
    Ok(())
}

fn flood(bytes: u64) -> std::io::Result<()> {
    let mut file = std::fs::File::create("flood.bin")?;
    let chunk = vec![0x5a; 64 << 10];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn run() -> std::io::Result<String> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--flood") {
        let bytes = args
            .get(at + 1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| std::io::Error::other("--flood takes a number of bytes"))?;
        flood(bytes)?;
    }
    let mut summary = String::new();
    let cwd = std::env::current_dir()?;
    summary.push_str(&format!("cwd: {}\n", cwd.display()));

    let mut stdin = Vec::new();
    std::io::stdin().read_to_end(&mut stdin)?;
    summary.push_str(&format!(
        "stdin: {} bytes, fnv {:016x}\n",
        stdin.len(),
        fnv(&stdin)
    ));

    std::fs::create_dir_all("work")?;
    let note = format!("{} bytes of stdin", stdin.len());
    std::fs::write("work/scratch.txt", &note)?;
    let back = std::fs::read_to_string(Path::new("work").join("scratch.txt"))?;
    let listed: Vec<String> = std::fs::read_dir(".")?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    summary.push_str(&format!(
        "scratch: {} (working directory holds {})\n",
        if back == note {
            "read back"
        } else {
            "MISMATCH"
        },
        listed.join(", ")
    ));

    let mut lines = Vec::new();
    if Path::new("/input").is_dir() {
        walk(Path::new("/input"), "/input", &mut lines)?;
    }
    summary.push_str("input:\n");
    for line in lines {
        summary.push_str(&line);
        summary.push('\n');
    }
    Ok(summary)
}

fn main() {
    match run() {
        Ok(summary) => {
            if let Err(e) = std::fs::write("/output/summary.txt", summary) {
                eprintln!("wasi-check: cannot write /output/summary.txt: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("wasi-check: {e}");
            std::process::exit(1);
        }
    }
}
