//! Multipart uploads: each part is kept on this node's disk until the
//! upload completes (`<data>/s3-uploads/<upload id>/<part number>`, written
//! to a temp file, fsynced and renamed, with its MD5 beside it), so an
//! acknowledged part survives a crash; completing streams the parts in
//! order into one bucket put and forgets them; aborting forgets them.
//!
//! Completion checks what S3 checks: the parts listed are in ascending
//! order (`InvalidPartOrder`), each was uploaded with the ETag listed
//! (`InvalidPart`), and every part but the last is at least 5 MiB
//! (`EntityTooSmall`). The object's ETag is S3's: the MD5 of the parts'
//! MD5s, a dash and the number of parts.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use s3s::crypto::{Checksum, Md5};
use s3s::dto::{CompletedPart, Part};
use s3s::{S3Error, S3Result, s3_error};

use super::buckets::{Resolved, timestamp};
use super::keys::S3Key;
use super::names::Upload;
use super::objects::{Checked, Stored};
use super::{Gateway, internal};
use peercloud_types::clock::now_ms;

/// Makes the temp files of parts written at once distinct.
static TEMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Held while a part's file and its MD5 file are renamed into place, and
/// while parts are listed.
static PART_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The smallest part but the last, as S3 has it.
pub const PART_BYTES_MIN: u64 = 5 << 20;
/// The highest part number S3 allows.
pub const PART_NUMBER_MAX: i32 = 10_000;

/// A part on disk: its number, size, MD5 and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartFile {
    pub number: i32,
    pub size: u64,
    pub md5: [u8; 16],
    pub modified_ms: u64,
}

impl PartFile {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }

    pub fn part(&self) -> Part {
        Part {
            part_number: Some(self.number),
            size: Some(self.size as i64),
            e_tag: Some(s3s::dto::ETag::Strong(self.etag())),
            last_modified: Some(timestamp(self.modified_ms)),
            ..Default::default()
        }
    }
}

fn io_failure(what: &str, path: &Path) -> impl FnOnce(io::Error) -> S3Error {
    let path = path.display().to_string();
    let what = what.to_owned();
    move |e| internal(format!("{what} {path}: {e}"))
}

/// Writes a part from `reader` into `dir` durably: temp file, fsync,
/// rename, then its MD5 file the same way.
fn write_part(
    dir: &Path,
    number: i32,
    reader: impl Read,
    expected_len: Option<u64>,
    expected_md5: Option<[u8; 16]>,
) -> S3Result<PartFile> {
    // Two uploads of one part number at once each write their own temp
    // file; the last rename wins, whole.
    let unique = TEMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{number}.{unique}.tmp"));
    let target = dir.join(number.to_string());
    let mut checked = Checked::new(reader, expected_len, expected_md5);
    let mut file = File::create(&temp).map_err(io_failure("creating", &temp))?;
    let copied = io::copy(&mut checked, &mut file);
    let size = match copied {
        Ok(size) => size,
        Err(e) => {
            let _ = fs::remove_file(&temp);
            return Err(super::objects::flow_error(
                peercloud_client::bucket::BucketError::Store(peercloud_store::StoreError::Read {
                    source: e,
                }),
                "",
            ));
        }
    };
    file.sync_all().map_err(io_failure("syncing", &temp))?;
    let md5 = checked
        .digest()
        .ok_or_else(|| internal("the part ended before its body did"))?;
    let md5_path = dir.join(format!("{number}.md5"));
    let md5_temp = dir.join(format!(".{number}.{unique}.md5.tmp"));
    let mut f = File::create(&md5_temp).map_err(io_failure("creating", &md5_temp))?;
    f.write_all(hex::encode(md5).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io_failure("writing", &md5_temp))?;
    {
        // A part's bytes and its MD5 change together (another upload of the
        // same number, or a listing, never sees one without the other).
        let _paired = PART_FILES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        fs::rename(&temp, &target).map_err(io_failure("renaming", &target))?;
        fs::rename(&md5_temp, &md5_path).map_err(io_failure("renaming", &md5_path))?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_failure("syncing", dir))?;
    let meta = fs::metadata(&target).map_err(io_failure("reading", &target))?;
    Ok(PartFile {
        number,
        size,
        md5,
        modified_ms: modified_ms(&meta),
    })
}

/// When a part's file was written, ms since the Unix epoch.
fn modified_ms(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}

/// Every complete part in `dir`, by number.
fn parts_in(dir: &Path) -> S3Result<Vec<PartFile>> {
    let _paired = PART_FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut parts = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_failure("listing", dir))?;
    for entry in entries {
        let path = entry.map_err(io_failure("listing", dir))?.path();
        let Some(number) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let md5_text = match fs::read_to_string(dir.join(format!("{number}.md5"))) {
            Ok(text) => text,
            Err(_) => continue, // written, not yet acknowledged
        };
        let md5 = hex::decode(md5_text.trim())
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| internal(format!("part {number}'s MD5 file is damaged")))?;
        let meta = fs::metadata(&path).map_err(io_failure("reading", &path))?;
        parts.push(PartFile {
            number,
            size: meta.len(),
            md5,
            modified_ms: modified_ms(&meta),
        });
    }
    parts.sort_by_key(|p| p.number);
    Ok(parts)
}

/// The parts `listed` in a completion, checked against those on disk.
fn chosen(listed: &[CompletedPart], on_disk: &[PartFile]) -> S3Result<Vec<PartFile>> {
    if listed.is_empty() {
        return Err(s3_error!(
            InvalidRequest,
            "a completion lists at least one part"
        ));
    }
    let mut out: Vec<PartFile> = Vec::with_capacity(listed.len());
    for part in listed {
        let number = part
            .part_number
            .ok_or_else(|| s3_error!(InvalidPart, "a part without its number"))?;
        if out.last().is_some_and(|p| p.number >= number) {
            return Err(s3_error!(
                InvalidPartOrder,
                "part {number} is listed after a part numbered as high or higher"
            ));
        }
        let file = on_disk
            .iter()
            .find(|p| p.number == number)
            .ok_or_else(|| s3_error!(InvalidPart, "part {number} was not uploaded"))?;
        if let Some(etag) = &part.e_tag
            && etag.value() != file.etag()
        {
            return Err(s3_error!(
                InvalidPart,
                "part {number}'s ETag is {:?}, not {:?}",
                file.etag(),
                etag.value()
            ));
        }
        out.push(file.clone());
    }
    if let Some(small) = out[..out.len() - 1]
        .iter()
        .find(|p| p.size < PART_BYTES_MIN)
    {
        return Err(s3_error!(
            EntityTooSmall,
            "part {} is {} bytes; every part but the last must be at least {PART_BYTES_MIN}",
            small.number,
            small.size
        ));
    }
    Ok(out)
}

/// S3's ETag of an object made of `parts`.
fn multipart_etag(parts: &[PartFile]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(&part.md5);
    }
    let digest: [u8; 16] = md5.finalize();
    format!("{}-{}", hex::encode(digest), parts.len())
}

/// The parts' files one after the other, as one reader.
struct Concatenated {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<File>,
}

impl Read for Concatenated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(file) = &mut self.current {
                let n = file.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            match self.files.next() {
                Some(path) => self.current = Some(File::open(path)?),
                None => return Ok(0),
            }
        }
    }
}

impl Gateway {
    fn upload_dir(&self, id: &str) -> S3Result<PathBuf> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(s3_error!(NoSuchUpload, "no upload {id:?}"));
        }
        Ok(self.uploads.join(id))
    }

    /// The upload `id` of the caller's wallet to `bucket`/`key`.
    pub(super) fn upload_of(
        &self,
        key: &S3Key,
        id: &str,
        bucket: &str,
        object: &str,
    ) -> S3Result<(Upload, PathBuf)> {
        let dir = self.upload_dir(id)?;
        let upload = self
            .names
            .upload(id)
            .map_err(internal)?
            .filter(|u| {
                u.owner == key.wallet().account_id() && u.bucket == bucket && u.key == object
            })
            .ok_or_else(|| {
                s3_error!(
                    NoSuchUpload,
                    "no upload {id:?} of {object:?} in {bucket:?} for this key's wallet"
                )
            })?;
        Ok((upload, dir))
    }

    pub(super) fn start_upload(&self, key: &S3Key, bucket: &str, object: &str) -> S3Result<String> {
        super::objects::checked_key(object)?;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(internal)?;
        let id = hex::encode(id);
        let dir = self.upload_dir(&id)?;
        fs::create_dir_all(&dir).map_err(io_failure("creating", &dir))?;
        let upload = Upload {
            owner: key.wallet().account_id(),
            bucket: bucket.to_owned(),
            key: object.to_owned(),
            created_ms: now_ms(),
        };
        self.names.start_upload(&id, &upload).map_err(internal)?;
        Ok(id)
    }

    pub(super) async fn put_part<R: Read + Send + 'static>(
        &self,
        dir: PathBuf,
        number: i32,
        reader: R,
        expected_len: Option<u64>,
        expected_md5: Option<[u8; 16]>,
    ) -> S3Result<PartFile> {
        if !(1..=PART_NUMBER_MAX).contains(&number) {
            return Err(s3_error!(
                InvalidArgument,
                "part numbers are 1..={PART_NUMBER_MAX}, not {number}"
            ));
        }
        self.blocking(move |_| write_part(&dir, number, reader, expected_len, expected_md5))
            .await
    }

    pub(super) async fn parts(&self, dir: PathBuf) -> S3Result<Vec<PartFile>> {
        self.blocking(move |_| parts_in(&dir)).await
    }

    /// Stores the listed parts as one object and forgets the upload.
    pub(super) async fn complete(
        &self,
        bucket: &Resolved,
        id: &str,
        dir: PathBuf,
        object: &str,
        listed: Vec<CompletedPart>,
    ) -> S3Result<Stored> {
        let on_disk = self.parts(dir.clone()).await?;
        let parts = chosen(&listed, &on_disk)?;
        let etag = multipart_etag(&parts);
        let size: u64 = parts.iter().map(|p| p.size).sum();
        let reader = Concatenated {
            files: parts
                .iter()
                .map(|p| dir.join(p.number.to_string()))
                .collect::<Vec<_>>()
                .into_iter(),
            current: None,
        };
        let stored = self.store(bucket, object, reader, Some(size), None).await?;
        let (names, manifest, multipart) = (self.names.clone(), stored.manifest, etag.clone());
        self.blocking(move |_| names.set_etag(&manifest, &multipart).map_err(internal))
            .await?;
        self.abort(id, dir).await?;
        Ok(Stored { etag, ..stored })
    }

    /// Forgets an upload and its parts.
    pub(super) async fn abort(&self, id: &str, dir: PathBuf) -> S3Result<()> {
        self.names.end_upload(id).map_err(internal)?;
        self.blocking(move |_| match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_failure("removing", &dir)(e)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    #[test]
    fn parts_are_written_durably_and_a_completion_is_checked_as_s3_checks_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![7u8; PART_BYTES_MIN as usize];
        let p1 = write_part(dir.path(), 1, &big[..], Some(big.len() as u64), None).unwrap();
        let p2 = write_part(dir.path(), 2, &b"tail"[..], None, None).unwrap();
        let p3 = write_part(dir.path(), 3, &b"small"[..], None, None).unwrap();
        // A part that is not what it announced leaves nothing behind.
        assert!(write_part(dir.path(), 4, &b"short"[..], Some(9), None).is_err());
        let on_disk = parts_in(dir.path()).unwrap();
        assert_eq!(on_disk, vec![p1.clone(), p2.clone(), p3.clone()]);
        assert_eq!(p2.etag(), hex::encode(Md5::checksum(b"tail")));
        let listed = |parts: &[(i32, String)]| -> Vec<CompletedPart> {
            parts
                .iter()
                .map(|(n, e)| CompletedPart {
                    part_number: Some(*n),
                    e_tag: Some(ETag::Strong(e.clone())),
                    ..Default::default()
                })
                .collect()
        };
        let ok = chosen(&listed(&[(1, p1.etag()), (2, p2.etag())]), &on_disk).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(multipart_etag(&ok).ends_with("-2"));
        let code = |r: S3Result<Vec<PartFile>>| r.unwrap_err().code().as_str().to_owned();
        assert_eq!(
            code(chosen(&listed(&[(2, p2.etag()), (1, p1.etag())]), &on_disk)),
            "InvalidPartOrder"
        );
        assert_eq!(
            code(chosen(&listed(&[(1, p2.etag())]), &on_disk)),
            "InvalidPart"
        );
        assert_eq!(
            code(chosen(&listed(&[(1, p1.etag()), (9, p2.etag())]), &on_disk)),
            "InvalidPart"
        );
        assert_eq!(
            code(chosen(&listed(&[(3, p3.etag()), (2, p2.etag())]), &on_disk)),
            "InvalidPartOrder"
        );
        assert_eq!(
            code(chosen(&listed(&[(2, p2.etag()), (3, p3.etag())]), &on_disk)),
            "EntityTooSmall"
        );
        assert_eq!(code(chosen(&[], &on_disk)), "InvalidRequest");
        let mut all = Concatenated {
            files: ok
                .iter()
                .map(|p| dir.path().join(p.number.to_string()))
                .collect::<Vec<_>>()
                .into_iter(),
            current: None,
        };
        let mut bytes = Vec::new();
        all.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len(), big.len() + 4);
        assert!(bytes.ends_with(b"tail"));
    }
}
