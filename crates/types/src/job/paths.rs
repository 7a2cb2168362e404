//! Paths inside `/input`. A directory input reaches a provider as one object
//! per file, each named by its path relative to `/input`
//! (`photos/2024/cat.jpg`, the input's name first); the provider creates
//! the directories a path needs. [`check_input_path`] is the one rule for
//! such a path, applied where a tree is read (the local runner, the user's
//! client) and where it is written (a provider staging a dispatch), so a
//! tree that runs locally is staged the same way on the grid, and a path
//! from a peer can never leave the job's input directory.

use std::collections::BTreeSet;

use super::{FILE_NAME_BYTES_MAX, JobSpec};

/// Longest path inside `/input`, in bytes. Every file's path travels in the
/// dispatch, whose message is bounded (64 KiB); this keeps one path a small
/// part of it.
pub const INPUT_PATH_BYTES_MAX: usize = 1024;
/// Most components in a path inside `/input` (the input's name counts as
/// one): deep enough for real trees, shallow enough that a provider's
/// directory creation stays cheap.
pub const INPUT_PATH_DEPTH_MAX: usize = 32;

/// Why a path inside `/input` was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InputPathError {
    /// The path is empty.
    #[error("is empty")]
    Empty,
    /// The path is longer than [`INPUT_PATH_BYTES_MAX`].
    #[error("is {len} bytes, at most {INPUT_PATH_BYTES_MAX}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The path has more components than [`INPUT_PATH_DEPTH_MAX`].
    #[error("has {depth} components, at most {INPUT_PATH_DEPTH_MAX}")]
    TooDeep {
        /// Its number of components.
        depth: usize,
    },
    /// The path starts with `/`.
    #[error("is absolute; a path inside /input is relative to it")]
    Absolute,
    /// One component is not a plain, visible file name.
    #[error("has the component {component:?}, which {reason}")]
    Component {
        /// The component (empty for `a//b` or a trailing `/`).
        component: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Checks a path relative to `/input`: `/`-separated, not absolute, at most
/// [`INPUT_PATH_BYTES_MAX`] bytes and [`INPUT_PATH_DEPTH_MAX`] components,
/// each component a file name of at most [`super::FILE_NAME_BYTES_MAX`]
/// bytes that is not empty, does not start with `.` (so no `.`, `..` or
/// hidden files) and holds no `\` or NUL.
pub fn check_input_path(path: &str) -> Result<(), InputPathError> {
    if path.is_empty() {
        return Err(InputPathError::Empty);
    }
    if path.len() > INPUT_PATH_BYTES_MAX {
        return Err(InputPathError::TooLong { len: path.len() });
    }
    if path.starts_with('/') {
        return Err(InputPathError::Absolute);
    }
    let depth = path.split('/').count();
    if depth > INPUT_PATH_DEPTH_MAX {
        return Err(InputPathError::TooDeep { depth });
    }
    for component in path.split('/') {
        let reason = if component.is_empty() {
            "is empty (a doubled or trailing '/')"
        } else if component.starts_with('.') {
            "starts with '.' ('.', '..' and hidden names are not staged)"
        } else if component.contains(['\\', '\0']) {
            "holds a '\\' or a NUL"
        } else if component.len() > FILE_NAME_BYTES_MAX {
            "is longer than 255 bytes"
        } else {
            continue;
        };
        return Err(InputPathError::Component {
            component: component.to_owned(),
            reason,
        });
    }
    Ok(())
}

/// The input a checked path belongs to: its first component.
pub fn input_name_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// Why the files a dispatch stages do not fit its spec.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StagedPathError {
    /// A path breaks [`check_input_path`].
    #[error("input path {path:?} {source}")]
    Path {
        /// The path as sent.
        path: String,
        /// The rule it breaks.
        source: InputPathError,
    },
    /// A path is not under any of the spec's inputs.
    #[error("input path {path:?} is not under any input the spec names")]
    NotInSpec {
        /// The path.
        path: String,
    },
    /// A path is given twice, or is a file where another path needs a directory.
    #[error("input path {path:?} is given twice, or as both a file and a directory")]
    Clash {
        /// The path.
        path: String,
    },
    /// One of the spec's inputs has no file.
    #[error("the spec's input {name:?} has no file")]
    Missing {
        /// The input's name.
        name: String,
    },
}

/// Checks the paths of the files a dispatch stages for `spec`: each passes
/// [`check_input_path`] and lies under one of the spec's inputs (the input
/// itself for a file, `name/...` for a directory's files), no path is given
/// twice or is both a file and a directory, and every input has a file.
pub fn check_staged_paths<'a>(
    spec: &JobSpec,
    paths: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), StagedPathError> {
    let names: BTreeSet<&str> = spec.inputs.iter().map(|i| i.name.as_str()).collect();
    let mut files = BTreeSet::new();
    let mut covered = BTreeSet::new();
    for path in paths.clone() {
        check_input_path(path).map_err(|source| StagedPathError::Path {
            path: path.to_owned(),
            source,
        })?;
        let name = input_name_of(path);
        if !names.contains(name) {
            return Err(StagedPathError::NotInSpec {
                path: path.to_owned(),
            });
        }
        if !files.insert(path) {
            return Err(StagedPathError::Clash {
                path: path.to_owned(),
            });
        }
        covered.insert(name);
    }
    for path in paths {
        // Every directory the path needs must not be a file.
        let mut at = 0;
        while let Some(slash) = path.get(at..).and_then(|rest| rest.find('/')) {
            let ancestor = path.get(..at + slash).unwrap_or(path);
            if files.contains(ancestor) {
                return Err(StagedPathError::Clash {
                    path: ancestor.to_owned(),
                });
            }
            at += slash + 1;
        }
    }
    if let Some(name) = names.iter().find(|name| !covered.contains(*name)) {
        return Err(StagedPathError::Missing {
            name: (*name).to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_pass() {
        for path in ["data.txt", "photos/2024/cat.jpg", "a/b-c_d e/f.tar.gz"] {
            assert_eq!(check_input_path(path), Ok(()), "{path}");
        }
        assert_eq!(input_name_of("photos/2024/cat.jpg"), "photos");
        assert_eq!(input_name_of("data.txt"), "data.txt");
    }

    fn spec(inputs: &[&str]) -> JobSpec {
        let inputs: Vec<String> = inputs
            .iter()
            .map(|name| format!(r#"{{"name": "{name}", "source": "{name}"}}"#))
            .collect();
        JobSpec::from_json(&format!(
            r#"{{"version": 1, "module": "m.wasm", "inputs": [{}], "max_price": "1"}}"#,
            inputs.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn staged_paths_must_fit_the_spec() {
        let spec = spec(&["data", "notes.txt"]);
        let ok = ["data/a.txt", "data/sub/b.txt", "notes.txt"];
        assert_eq!(check_staged_paths(&spec, ok), Ok(()));
        assert!(matches!(
            check_staged_paths(&spec, ["data/../../etc/passwd", "notes.txt"]),
            Err(StagedPathError::Path {
                source: InputPathError::Component { .. },
                ..
            })
        ));
        assert!(matches!(
            check_staged_paths(&spec, ["/etc/passwd", "data/a", "notes.txt"]),
            Err(StagedPathError::Path {
                source: InputPathError::Absolute,
                ..
            })
        ));
        assert_eq!(
            check_staged_paths(&spec, ["data/a", "notes.txt", "other/x"]),
            Err(StagedPathError::NotInSpec {
                path: "other/x".into()
            })
        );
        assert_eq!(
            check_staged_paths(&spec, ["data/a", "data/a", "notes.txt"]),
            Err(StagedPathError::Clash {
                path: "data/a".into()
            })
        );
        assert_eq!(
            check_staged_paths(&spec, ["data/a/b", "notes.txt", "data/a"]),
            Err(StagedPathError::Clash {
                path: "data/a".into()
            })
        );
        assert_eq!(
            check_staged_paths(&spec, ["data", "data/x", "notes.txt"]),
            Err(StagedPathError::Clash {
                path: "data".into()
            })
        );
        assert_eq!(
            check_staged_paths(&spec, ["data/a"]),
            Err(StagedPathError::Missing {
                name: "notes.txt".into()
            })
        );
    }

    #[test]
    fn escaping_hidden_and_malformed_paths_are_refused() {
        let component = |path: &str| match check_input_path(path) {
            Err(InputPathError::Component { component, .. }) => component,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(component("data/../../etc/passwd"), "..");
        assert_eq!(component(".."), "..");
        assert_eq!(component("data/./x"), ".");
        assert_eq!(component("data/.git/config"), ".git");
        assert_eq!(component("data//x"), "");
        assert_eq!(component("data/"), "");
        assert_eq!(component("data/a\\..\\b"), "a\\..\\b");
        assert_eq!(component("data/nul\0"), "nul\0");
        assert_eq!(
            component(&format!("data/{}", "n".repeat(256))),
            "n".repeat(256)
        );
        assert_eq!(check_input_path(""), Err(InputPathError::Empty));
        assert_eq!(
            check_input_path("/etc/passwd"),
            Err(InputPathError::Absolute)
        );
        let deep = vec!["d"; INPUT_PATH_DEPTH_MAX + 1].join("/");
        assert_eq!(
            check_input_path(&deep),
            Err(InputPathError::TooDeep {
                depth: INPUT_PATH_DEPTH_MAX + 1
            })
        );
        let long = vec!["n".repeat(200); 6].join("/");
        assert!(matches!(
            check_input_path(&long),
            Err(InputPathError::TooLong { .. })
        ));
        let shown = check_input_path("data/../x").unwrap_err().to_string();
        assert!(
            shown.contains("\"..\"") && shown.contains("starts with '.'"),
            "{shown}"
        );
    }
}
