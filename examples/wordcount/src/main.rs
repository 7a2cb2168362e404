//! `wordcount [--top N] [--input DIR] [--output DIR]`: counts the words of
//! every file in `/input` and writes `/output/counts.json`.
//!
//! A word is a maximal run of alphanumeric characters, lower-cased; anything
//! else separates words. Files are read in name order and the result is
//! sorted (count descending, then word ascending), so the output is the same
//! on every machine. The JSON is formatted by hand to keep the module small.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How many of the most common words are listed when `--top` is not given.
const TOP_DEFAULT: usize = 20;

/// What the command line asked for.
struct Options {
    top: usize,
    input: PathBuf,
    output: PathBuf,
}

/// The counts over all files.
struct Counts {
    files: usize,
    total_words: u64,
    words: HashMap<String, u64>,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!(
                "wordcount: {message}\nusage: wordcount [--top N] [--input DIR] [--output DIR]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("wordcount: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        top: TOP_DEFAULT,
        input: PathBuf::from("/input"),
        output: PathBuf::from("/output"),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--top" => {
                options.top = value
                    .parse()
                    .map_err(|_| format!("--top {value:?} is not a whole number"))?;
            }
            "--input" => options.input = PathBuf::from(value),
            "--output" => options.output = PathBuf::from(value),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn run(options: &Options) -> Result<String, String> {
    let counts = count_dir(&options.input)?;
    let top = most_common(&counts.words, options.top);
    let json = to_json(&counts, &top);
    let path = options.output.join("counts.json");
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut summary = format!(
        "wordcount: {} files, {} words, {} distinct",
        counts.files,
        counts.total_words,
        counts.words.len()
    );
    if let Some((word, count)) = top.first() {
        let _ = write!(summary, "; most common {word:?} ({count})");
    }
    Ok(summary)
}

fn count_dir(dir: &Path) -> Result<Counts, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let kind = entry
            .file_type()
            .map_err(|e| format!("cannot stat {:?}: {e}", entry.path()))?;
        if kind.is_file() {
            paths.push(entry.path());
        }
    }
    // Directory order is the host file system's; name order is everyone's.
    paths.sort();
    let mut counts = Counts {
        files: paths.len(),
        total_words: 0,
        words: HashMap::new(),
    };
    for path in &paths {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        count_text(&String::from_utf8_lossy(&bytes), &mut counts);
    }
    Ok(counts)
}

fn count_text(text: &str, counts: &mut Counts) {
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        counts.total_words += 1;
        *counts.words.entry(word.to_lowercase()).or_insert(0) += 1;
    }
}

/// The `n` most common words, by count descending, ties by word ascending.
fn most_common(words: &HashMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut all: Vec<(&str, u64)> = words.iter().map(|(w, c)| (w.as_str(), *c)).collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all
}

fn to_json(counts: &Counts, top: &[(&str, u64)]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{{");
    let _ = writeln!(out, "  \"files\": {},", counts.files);
    let _ = writeln!(out, "  \"total_words\": {},", counts.total_words);
    let _ = writeln!(out, "  \"distinct_words\": {},", counts.words.len());
    out.push_str("  \"top\": [");
    for (i, (word, count)) in top.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(
            out,
            "    {{\"word\": {}, \"count\": {count}}}",
            json_string(word)
        );
    }
    out.push_str(if top.is_empty() { "]\n" } else { "\n  ]\n" });
    out.push_str("}\n");
    out
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts_of(text: &str) -> Counts {
        let mut counts = Counts {
            files: 1,
            total_words: 0,
            words: HashMap::new(),
        };
        count_text(text, &mut counts);
        counts
    }

    #[test]
    fn words_are_lower_cased_runs_of_alphanumerics() {
        let counts = counts_of("The cat's hat -- the CAT, 2 cats!");
        assert_eq!(counts.total_words, 8);
        assert_eq!(counts.words["the"], 2);
        assert_eq!(counts.words["cat"], 2);
        assert_eq!(counts.words["s"], 1);
        assert_eq!(counts.words["2"], 1);
    }

    #[test]
    fn ties_are_broken_alphabetically() {
        let counts = counts_of("b a c b a c d");
        assert_eq!(
            most_common(&counts.words, 3),
            vec![("a", 2), ("b", 2), ("c", 2)]
        );
    }

    #[test]
    fn json_escapes_what_it_must() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        let counts = counts_of("");
        assert_eq!(
            to_json(&counts, &[]),
            "{\n  \"files\": 1,\n  \"total_words\": 0,\n  \"distinct_words\": 0,\n  \"top\": []\n}\n"
        );
    }
}
