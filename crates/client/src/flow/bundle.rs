//! The job bundle: what `run_job` sends, read from a spec file and the
//! local files it names. A file input is one object; a directory input is
//! one object per file, each under its path in `/input`
//! (`name/sub/file.txt`), with the same rules as the local runner's (see
//! [`InputTree`]), so a tree runs the same way on the grid as with
//! `--local`. The spec itself keeps the directory's path, so its digest does
//! not depend on the tree; the per-file list is what the dispatch carries.

use std::path::{Path, PathBuf};

use peercloud_types::job::{MODULE_BYTES_MAX, Source, check_input_path};
use peercloud_types::{ContentId, JobSpec};

use super::RemoteError;

/// A job ready to send: the spec, the module and the inputs' bytes (or
/// objects already in storage).
#[derive(Debug, Clone)]
pub struct JobBundle {
    /// The spec.
    pub spec: JobSpec,
    /// The module.
    pub module: Content,
    /// The input files, each by its path under `/input`: a file input's
    /// name, or `name/sub/file` for each file of a directory input (each
    /// file is stored as its own object and dispatched with its path).
    pub inputs: Vec<(String, Content)>,
}

/// Where a module or input comes from.
#[derive(Debug, Clone)]
pub enum Content {
    /// Bytes to upload.
    Bytes(Vec<u8>),
    /// An object already stored (owned by the wallet).
    Stored(ContentId),
}

impl JobBundle {
    /// Reads a spec file and the local files it names (paths relative to it).
    pub fn load(spec_path: &Path) -> Result<JobBundle, RemoteError> {
        let file_err = |path: &Path, reason: String| RemoteError::File {
            path: path.to_owned(),
            reason,
        };
        let text =
            std::fs::read_to_string(spec_path).map_err(|e| file_err(spec_path, e.to_string()))?;
        let spec = JobSpec::from_json(&text).map_err(|e| file_err(spec_path, e.to_string()))?;
        let base = spec_path.parent().unwrap_or(Path::new("."));
        let content = |field: &str, source: &Source, cap: u64| -> Result<Content, RemoteError> {
            match source {
                Source::Cid(cid) => Ok(Content::Stored(*cid)),
                Source::Path(p) => read_capped(&base.join(p), field, cap).map(Content::Bytes),
            }
        };
        let module = content("module", &spec.module, MODULE_BYTES_MAX as u64)?;
        let mut inputs = Vec::new();
        for (n, input) in spec.inputs.iter().enumerate() {
            let field = format!("inputs[{n}].source");
            let dir = match &input.source {
                Source::Path(p) => Some(base.join(p)).filter(|path| path.is_dir()),
                Source::Cid(_) => None,
            };
            match dir {
                Some(dir) if spec.stdin.as_deref() == Some(input.name.as_str()) => {
                    return Err(file_err(
                        spec_path,
                        format!(
                            "`stdin` names the input {:?}, whose source {} is a directory; \
                             stdin reads a file",
                            input.name,
                            dir.display()
                        ),
                    ));
                }
                Some(dir) => {
                    let mut tree = InputTree::new(&field, &input.name, &dir)?;
                    tree.read(&dir, &input.name, &mut inputs)?;
                    tree.finish()?;
                }
                None => inputs.push((
                    input.name.clone(),
                    content(&field, &input.source, INPUT_BYTES_MAX)?,
                )),
            }
            check_dispatch_bounds(&field, &inputs).map_err(|reason| RemoteError::File {
                path: spec_path.to_owned(),
                reason,
            })?;
        }
        Ok(JobBundle {
            spec,
            module,
            inputs,
        })
    }
}

/// Largest input a spec may name as a local file (or a directory's files in
/// all): the bundle holds it in memory while it is sealed and sent. Larger
/// data goes into storage first (`peercloud store put`) and the spec names
/// its CID.
pub const INPUT_BYTES_MAX: u64 = 1 << 30;
/// Most input files one job may send (every file of a directory input
/// counts). Each travels in the dispatch as its path, its CID and its key
/// sealed to the node, about 120 bytes besides the path, and a dispatch
/// message is bounded (64 KiB): 256 of them and their paths
/// ([`DISPATCH_INPUT_PATH_BYTES_MAX`]) leave room for the spec.
pub const DISPATCH_INPUT_FILES_MAX: usize = 256;
/// Most bytes of input paths one job may send in all, for the same reason.
pub const DISPATCH_INPUT_PATH_BYTES_MAX: usize = 16 << 10;

/// Refuses a bundle whose input files would not fit in one dispatch; the
/// reason names `field`, the input that went past the bound.
fn check_dispatch_bounds(field: &str, inputs: &[(String, Content)]) -> Result<(), String> {
    if inputs.len() > DISPATCH_INPUT_FILES_MAX {
        return Err(format!(
            "`{field}`: the job's inputs hold more than {DISPATCH_INPUT_FILES_MAX} files in all, \
             the most one job can send (pack a large tree into one file, or split the job)"
        ));
    }
    let path_bytes: usize = inputs.iter().map(|(path, _)| path.len()).sum();
    if path_bytes > DISPATCH_INPUT_PATH_BYTES_MAX {
        return Err(format!(
            "`{field}`: the paths of the job's input files take more than \
             {DISPATCH_INPUT_PATH_BYTES_MAX} bytes in all, the most one job can send"
        ));
    }
    Ok(())
}

/// A directory input being read into the bundle: each regular file under
/// its path (`name/sub/file`), in name order. The rules are the local
/// runner's, so a tree runs the same way on the grid as with `--local`:
/// every path passes [`check_input_path`] (no names starting with `.`),
/// empty directories are left out, a symbolic link is followed only to a
/// regular file inside the directory, anything else (FIFO, socket, device)
/// is refused; at most [`INPUT_BYTES_MAX`] bytes in all.
struct InputTree<'a> {
    /// `inputs[N].source`.
    field: &'a str,
    /// The directory, canonical (links must resolve inside it).
    root: PathBuf,
    files: usize,
    bytes: u64,
}

impl<'a> InputTree<'a> {
    fn new(field: &'a str, name: &str, dir: &Path) -> Result<InputTree<'a>, RemoteError> {
        let root = std::fs::canonicalize(dir).map_err(|e| RemoteError::File {
            path: dir.to_owned(),
            reason: format!("`{field}` (the directory input {name:?}): {e}"),
        })?;
        Ok(InputTree {
            field,
            root,
            files: 0,
            bytes: 0,
        })
    }

    fn refuse(&self, path: &Path, reason: impl std::fmt::Display) -> RemoteError {
        RemoteError::File {
            path: path.to_owned(),
            reason: format!("`{}`: {reason}", self.field),
        }
    }

    /// Reads the files under `dir`, whose path under `/input` is `relative`.
    fn read(
        &mut self,
        dir: &Path,
        relative: &str,
        out: &mut Vec<(String, Content)>,
    ) -> Result<(), RemoteError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| self.refuse(dir, e))? {
            names.push(entry.map_err(|e| self.refuse(dir, e))?.file_name());
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let Some(name) = name.to_str() else {
                return Err(self.refuse(&path, "has a name that is not UTF-8"));
            };
            let inner = format!("{relative}/{name}");
            check_input_path(&inner)
                .map_err(|e| self.refuse(&path, format!("its path in /input, {inner:?}, {e}")))?;
            let meta = std::fs::symlink_metadata(&path).map_err(|e| self.refuse(&path, e))?;
            if meta.is_dir() {
                self.read(&path, &inner, out)?;
                continue;
            }
            if meta.file_type().is_symlink() {
                self.check_link(&path)?;
            } else if !meta.is_file() {
                return Err(self.refuse(
                    &path,
                    "is not a regular file, directory or link (a FIFO, socket or device)",
                ));
            }
            // Following a link: the size of the file it leads to.
            let size = std::fs::metadata(&path)
                .map_err(|e| self.refuse(&path, e))?
                .len();
            if self.bytes.saturating_add(size) > INPUT_BYTES_MAX {
                return Err(self.refuse(
                    &self.root,
                    format!(
                        "the directory holds more than {INPUT_BYTES_MAX} bytes, the most allowed"
                    ),
                ));
            }
            let bytes = read_capped(&path, self.field, INPUT_BYTES_MAX - self.bytes)?;
            self.files += 1;
            self.bytes += bytes.len() as u64;
            out.push((inner, Content::Bytes(bytes)));
        }
        Ok(())
    }

    /// Refuses a link that leads outside the directory or not to a file.
    fn check_link(&self, path: &Path) -> Result<(), RemoteError> {
        let resolved = std::fs::canonicalize(path)
            .map_err(|e| self.refuse(path, format!("is a link that does not resolve: {e}")))?;
        if !resolved.starts_with(&self.root) {
            return Err(self.refuse(
                path,
                format!("is a link to {}, outside the directory", resolved.display()),
            ));
        }
        if !resolved.is_file() {
            return Err(self.refuse(
                path,
                "is a link to a directory or special file; only links to files are followed",
            ));
        }
        Ok(())
    }

    /// Refuses a directory with no file at all.
    fn finish(self) -> Result<(), RemoteError> {
        if self.files == 0 {
            return Err(self.refuse(
                &self.root,
                "the directory holds no files; a directory input is sent as its files",
            ));
        }
        Ok(())
    }
}

/// Reads the file `field` of a spec names, refusing a directory and anything
/// over `cap` bytes before holding more than `cap + 1` of it (a device such as
/// `/dev/zero` never ends).
fn read_capped(path: &Path, field: &str, cap: u64) -> Result<Vec<u8>, RemoteError> {
    use std::io::Read;
    let refuse = |reason: String| RemoteError::File {
        path: path.to_owned(),
        reason: format!("`{field}`: {reason}"),
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if meta.is_dir() {
        return Err(refuse(
            "is a directory; a spec names one file here (or the CID of a stored object)".into(),
        ));
    }
    if meta.is_file() && meta.len() > cap {
        return Err(refuse(format!(
            "is {} bytes, at most {cap} allowed",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| refuse(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(e.to_string()))?;
    if bytes.len() as u64 > cap {
        return Err(refuse(format!(
            "holds more than {cap} bytes, the most allowed"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_naming(dir: &Path, module: &str, input: &str) -> PathBuf {
        let spec = serde_json::json!({
            "version": 1,
            "name": "bounded reads",
            "module": module,
            "inputs": [{"name": "data", "source": input}],
            "max_price": "0.01",
        });
        let path = dir.join("spec.json");
        std::fs::write(&path, spec.to_string()).unwrap();
        path
    }

    #[test]
    fn a_never_ending_module_is_refused_at_the_cap_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), b"hello").unwrap();
        let spec = spec_naming(dir.path(), "/dev/zero", "data");
        let err = JobBundle::load(&spec).unwrap_err().to_string();
        assert!(
            err.contains("`module`") && err.contains("more than"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_input_becomes_one_file_per_path_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("job.wasm"), b"\0asm").unwrap();
        let folder = dir.path().join("folder");
        std::fs::create_dir_all(folder.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(folder.join("empty")).unwrap();
        std::fs::write(folder.join("z.txt"), b"zed").unwrap();
        std::fs::write(folder.join("sub/deeper/a.txt"), b"deep").unwrap();
        std::fs::write(folder.join("b.txt"), b"bee").unwrap();
        let spec = spec_naming(dir.path(), "job.wasm", "folder");
        let bundle = JobBundle::load(&spec).unwrap();
        let paths: Vec<&str> = bundle.inputs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["data/b.txt", "data/sub/deeper/a.txt", "data/z.txt"]);
        assert!(matches!(&bundle.inputs[1].1, Content::Bytes(b) if b == b"deep"));
        assert_eq!(
            bundle.spec.inputs[0].source,
            Source::Path("folder".into()),
            "the spec (and its digest) keeps the directory's path"
        );

        let ok = spec_naming(dir.path(), "job.wasm", "job.wasm");
        let bundle = JobBundle::load(&ok).unwrap();
        assert!(matches!(&bundle.inputs[0].1, Content::Bytes(b) if b == b"\0asm"));
    }

    #[test]
    fn a_bad_directory_input_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("job.wasm"), b"\0asm").unwrap();
        let folder = dir.path().join("folder");
        std::fs::create_dir_all(&folder).unwrap();
        let spec = spec_naming(dir.path(), "job.wasm", "folder");
        let err = JobBundle::load(&spec).unwrap_err().to_string();
        assert!(
            err.contains("`inputs[0].source`") && err.contains("no files"),
            "{err}"
        );

        std::fs::write(folder.join(".hidden"), b"x").unwrap();
        let err = JobBundle::load(&spec).unwrap_err().to_string();
        assert!(
            err.contains("`inputs[0].source`") && err.contains("\".hidden\""),
            "{err}"
        );
        std::fs::remove_file(folder.join(".hidden")).unwrap();

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("job.wasm"), folder.join("escape")).unwrap();
            let err = JobBundle::load(&spec).unwrap_err().to_string();
            assert!(
                err.contains("`inputs[0].source`") && err.contains("outside"),
                "{err}"
            );
            std::fs::remove_file(folder.join("escape")).unwrap();
            std::fs::write(folder.join("real.txt"), b"real").unwrap();
            std::os::unix::fs::symlink(folder.join("real.txt"), folder.join("alias.txt")).unwrap();
            let bundle = JobBundle::load(&spec).unwrap();
            assert!(matches!(&bundle.inputs[0].1, Content::Bytes(b) if b == b"real"));
        }

        for i in 0..=DISPATCH_INPUT_FILES_MAX {
            std::fs::write(folder.join(format!("f{i:03}")), b"").unwrap();
        }
        let err = JobBundle::load(&spec).unwrap_err().to_string();
        assert!(
            err.contains("`inputs[0].source`") && err.contains("files in all"),
            "{err}"
        );
    }

    #[test]
    fn stdin_from_a_directory_input_is_refused_naming_stdin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("job.wasm"), b"\0asm").unwrap();
        std::fs::create_dir_all(dir.path().join("folder")).unwrap();
        std::fs::write(dir.path().join("folder/a"), b"a").unwrap();
        let spec = serde_json::json!({
            "version": 1,
            "module": "job.wasm",
            "inputs": [{"name": "data", "source": "folder"}],
            "stdin": "data",
            "max_price": "0.01",
        });
        let path = dir.path().join("spec.json");
        std::fs::write(&path, spec.to_string()).unwrap();
        let err = JobBundle::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("`stdin`") && err.contains("directory"),
            "{err}"
        );
    }
}
