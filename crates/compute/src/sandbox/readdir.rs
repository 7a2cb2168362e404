//! `fd_readdir` without the host's order: WASI preview 1 lists a directory
//! in whatever order the host file system keeps it (ext4 hashes names with a
//! per-file-system seed, tmpfs lists newest first) and gives each entry a
//! hash of the host's device and inode. A module that writes a listing as it
//! reads it would then produce different bytes on every node.
//!
//! This replacement asks wasmtime-wasi for the whole listing into a host
//! buffer, sorts the entries by name (bytewise, after `.` and `..`), numbers
//! the cookies in that order, and gives every entry an inode number derived
//! from its name alone. Everything else (which entries exist, their types,
//! how a short buffer is filled) is wasmtime-wasi's.

use wasmtime::{Caller, Extern};
use wasmtime_wasi::p1::types::{Errno, Fd};
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 as _;

use super::RunState;

/// Size of a `dirent` header in guest memory (`d_next` u64, `d_ino` u64,
/// `d_namlen` u32, `d_type` u8, padding).
const DIRENT_BYTES: usize = 24;
/// First size of the host buffer a listing is read into; doubled until the
/// listing fits.
const LISTING_BYTES_START: usize = 64 << 10;
/// Largest listing read, in bytes of `dirent`s and names: about 60,000
/// entries of 255-byte names, more than any directory a job can have
/// (inputs are bounded to 10,000 files, outputs and scratch to 4,096
/// entries). A larger one is refused with `ENOMEM` rather than held.
const LISTING_BYTES_MAX: usize = 16 << 20;

/// One directory entry: its type byte and name.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: u8,
    name: Vec<u8>,
}

/// The replacement of `wasi_snapshot_preview1.fd_readdir`.
pub(crate) fn fd_readdir(
    mut caller: Caller<'_, RunState>,
    fd: i32,
    buf: i32,
    buf_len: i32,
    cookie: i64,
    bufused: i32,
) -> wasmtime::Result<i32> {
    let entries = match listing(&mut caller, fd as u32) {
        Ok(entries) => entries,
        Err(errno) => return Ok(errno as i32),
    };
    // A cookie past the end (or negative, read as a huge u64) lists nothing.
    let skip = usize::try_from(cookie as u64).unwrap_or(usize::MAX);
    let bytes = serialise(&entries, skip, buf_len as u32 as usize);
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Ok(Errno::Inval as i32);
    };
    let used = (bytes.len() as u32).to_le_bytes();
    if memory
        .write(&mut caller, buf as u32 as usize, &bytes)
        .is_err()
        || memory
            .write(&mut caller, bufused as u32 as usize, &used)
            .is_err()
    {
        return Ok(Errno::Fault as i32);
    }
    Ok(Errno::Success as i32)
}

/// The whole listing of directory `fd`, sorted, as wasmtime-wasi gives it.
fn listing(caller: &mut Caller<'_, RunState>, fd: u32) -> Result<Vec<Entry>, Errno> {
    let wasi = &mut caller.data_mut().wasi;
    let mut size = LISTING_BYTES_START;
    loop {
        let mut host = vec![0u8; size];
        let filled = {
            let mut memory = wiggle::GuestMemory::Unshared(&mut host);
            let call = wasi.fd_readdir(
                &mut memory,
                Fd::from(fd),
                wiggle::GuestPtr::new(0),
                size as u32,
                0,
            );
            match wasmtime_wasi::runtime::in_tokio(call) {
                Ok(filled) => filled as usize,
                Err(error) => return Err(error.downcast().unwrap_or(Errno::Io)),
            }
        };
        if filled < size {
            host.truncate(filled);
            let mut entries = parse(&host)?;
            sort(&mut entries);
            return Ok(entries);
        }
        if size >= LISTING_BYTES_MAX {
            return Err(Errno::Nomem);
        }
        size = (size * 2).min(LISTING_BYTES_MAX);
    }
}

/// Reads complete `dirent`s and names out of a listing that fitted.
fn parse(mut bytes: &[u8]) -> Result<Vec<Entry>, Errno> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let (header, rest) = bytes.split_at_checked(DIRENT_BYTES).ok_or(Errno::Io)?;
        let mut namlen = [0u8; 4];
        namlen.copy_from_slice(header.get(16..20).ok_or(Errno::Io)?);
        let namlen = u32::from_le_bytes(namlen) as usize;
        let (name, rest) = rest.split_at_checked(namlen).ok_or(Errno::Io)?;
        entries.push(Entry {
            kind: *header.get(20).ok_or(Errno::Io)?,
            name: name.to_vec(),
        });
        bytes = rest;
    }
    Ok(entries)
}

/// `.` and `..` first, as every listing starts; the rest by name, bytewise.
fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        let rank = |e: &Entry| match e.name.as_slice() {
            b"." => 0,
            b".." => 1,
            _ => 2,
        };
        rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
    });
}

/// The inode number a listing gives `name`: from the name alone, never 0
/// (wasi-libc reads 0 as "unknown" and asks the host).
fn inode_of(name: &[u8]) -> u64 {
    let hash = blake3::hash(name);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first).max(1)
}

/// The entries from index `skip` on as `dirent`s and names, cut at
/// `buf_len` bytes (a cut entry tells the reader to ask again with more).
fn serialise(entries: &[Entry], skip: usize, buf_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate().skip(skip) {
        if out.len() >= buf_len {
            break;
        }
        let next = index as u64 + 1;
        out.extend_from_slice(&next.to_le_bytes());
        out.extend_from_slice(&inode_of(&entry.name).to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u32).to_le_bytes());
        out.push(entry.kind);
        out.extend_from_slice(&[0u8; 3]);
        out.extend_from_slice(&entry.name);
    }
    out.truncate(buf_len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            kind: 4,
            name: name.as_bytes().to_vec(),
        }
    }

    #[test]
    fn dot_entries_come_first_then_names_bytewise() {
        let mut entries = vec![
            entry("b"),
            entry(".."),
            entry("B"),
            entry(".hidden"),
            entry("."),
            entry("a"),
        ];
        sort(&mut entries);
        let names: Vec<&[u8]> = entries.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(
            names,
            [&b"."[..], b"..", b".hidden", b"B", b"a", b"b"],
            "bytewise: '.' < 'B' < 'a'"
        );
    }

    #[test]
    fn serialised_entries_parse_back_and_cookies_count_from_the_skip() {
        let entries = vec![entry("."), entry(".."), entry("data.txt")];
        let all = serialise(&entries, 0, usize::MAX);
        assert_eq!(all.len(), 3 * DIRENT_BYTES + 1 + 2 + 8);
        assert_eq!(parse(&all).unwrap(), entries);
        let tail = serialise(&entries, 2, usize::MAX);
        assert_eq!(&tail[..8], &3u64.to_le_bytes(), "d_next of the third entry");
        assert_eq!(parse(&tail).unwrap(), vec![entry("data.txt")]);
        assert_eq!(serialise(&entries, 0, 30).len(), 30, "cut at the buffer");
        assert!(serialise(&entries, 9, usize::MAX).is_empty());
        assert_eq!(inode_of(b"data.txt"), inode_of(b"data.txt"));
        assert_ne!(inode_of(b"data.txt"), inode_of(b"other"));
    }
}
