//! The request-response framing of `crates/net/src/codec.rs`: a 4-byte
//! big-endian length, then that many bytes, bounded per protocol.
//!
//! Input layout: `[flags][chunk][stream...]`
//! - `flags & 7` (mod 5): the protocol (its bound: 64 KiB, 1.1 MiB or 8 MiB);
//! - `flags & 0x08`: read through the libp2p `request_response::Codec` trait
//!   (`read_request`, or `read_response` when `flags & 0x10`) instead of
//!   `BytesCodec::read_message`;
//! - `flags & 0x20`: after the stream, the peer keeps sending filler bytes
//!   forever (so a length up to the bound can be satisfied by a small input);
//! - `flags & 0x40`: the reader answers `Pending` before every chunk;
//! - `chunk`: the most bytes one `poll_read` hands out (0: no limit).
//!
//! Properties:
//! - a length above the protocol's bound is refused as `InvalidData` after
//!   reading only the 4 prefix bytes, and without allocating the body;
//! - reading never allocates more than the announced length (at most the
//!   bound) plus a small constant, whatever the input;
//! - an accepted frame is exactly the announced bytes, the reader consumed
//!   exactly prefix + body, and writing it back gives the same wire bytes;
//! - a stream that ends early is `UnexpectedEof`; nothing panics.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::AsyncRead;
use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use peercloud_fuzz::verbose;
use peercloud_net::Protocol;
use peercloud_net::codec::{BytesCodec, LENGTH_PREFIX_BYTES, READ_BUFFER_INITIAL_BYTES};

/// Counts live heap bytes and their high-water mark. The fuzz loop is single
/// threaded, so the peak over one call is the call's own footprint.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Room for what a read allocates besides the body: an `io::Error` with its
/// formatted message, the boxed future of the trait path.
const OVERHEAD_BYTES: usize = 4096;

/// A peer's stream: the fuzz bytes, optionally followed by endless filler,
/// handed out in bounded chunks, optionally with a `Pending` before each.
struct Peer<'a> {
    data: &'a [u8],
    at: usize,
    filler: bool,
    chunk: usize,
    pending: bool,
    pended: bool,
    consumed: usize,
}

impl AsyncRead for Peer<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending && !self.pended {
            self.pended = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.pended = false;
        let mut n = buf.len();
        if self.chunk > 0 {
            n = n.min(self.chunk);
        }
        let left = &self.data[self.at..];
        let n = if left.is_empty() {
            if !self.filler {
                return Poll::Ready(Ok(0));
            }
            buf[..n].fill(0xa5);
            n
        } else {
            let n = n.min(left.len());
            buf[..n].copy_from_slice(&left[..n]);
            self.at += n;
            n
        };
        self.consumed += n;
        Poll::Ready(Ok(n))
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, chunk, data @ ..] = input else {
        return;
    };
    let protocol = Protocol::ALL[usize::from(flags & 7) % Protocol::ALL.len()];
    let through_trait = flags & 0x08 != 0;
    let as_response = flags & 0x10 != 0;
    let filler = flags & 0x20 != 0;
    let pending = flags & 0x40 != 0;
    let max = match (through_trait, as_response) {
        (false, _) => protocol.message_bytes_max(),
        (true, false) => protocol.request_bytes_max(),
        (true, true) => protocol.response_bytes_max(),
    };

    let mut peer = Peer {
        data,
        at: 0,
        filler,
        chunk: usize::from(*chunk),
        pending,
        pended: false,
        consumed: 0,
    };
    let mut codec = BytesCodec::new(protocol);
    let name = StreamProtocol::new(protocol.name());

    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let result = block_on(async {
        match (through_trait, as_response) {
            (false, _) => codec.read_message(&mut peer).await,
            (true, false) => codec.read_request(&name, &mut peer).await,
            (true, true) => codec.read_response(&name, &mut peer).await,
        }
    });
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);

    // What the stream says (filler included).
    let mut wire = data.to_vec();
    let mut prefix = [0xa5u8; LENGTH_PREFIX_BYTES];
    let have_prefix = filler || wire.len() >= LENGTH_PREFIX_BYTES;
    if wire.len() >= LENGTH_PREFIX_BYTES {
        prefix.copy_from_slice(&wire[..LENGTH_PREFIX_BYTES]);
    } else {
        prefix[..wire.len()].copy_from_slice(&wire);
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if verbose() {
        eprintln!(
            "{protocol:?} len {len} (bound {max}): consumed {}, peak {peak} bytes, {:?}",
            peer.consumed,
            result.as_ref().map(Vec::len)
        );
    }

    if !have_prefix {
        let error = result.expect_err("a read with no length prefix succeeded");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
        assert!(
            peak <= OVERHEAD_BYTES,
            "allocated {peak} bytes on a short prefix"
        );
        return;
    }
    if len > max {
        let error = result.expect_err("a length above the protocol's bound was accepted");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        assert_eq!(
            peer.consumed, LENGTH_PREFIX_BYTES,
            "read past the prefix of an oversized message"
        );
        assert!(
            peak <= OVERHEAD_BYTES,
            "allocated {peak} bytes for a refused {len}-byte message (bound {max})"
        );
        return;
    }
    // The body's buffer starts small and at most doubles as bytes arrive,
    // so memory follows what the peer sent, not what its prefix claimed
    // (a reallocation briefly holds the old and the new buffer).
    let received = peer.consumed.saturating_sub(LENGTH_PREFIX_BYTES);
    let first = len.min(READ_BUFFER_INITIAL_BYTES);
    assert!(
        peak <= 3 * received.max(first) + OVERHEAD_BYTES,
        "allocated {peak} bytes after receiving {received} of a {len}-byte message"
    );
    let have_body = filler || wire.len() >= LENGTH_PREFIX_BYTES + len;
    if !have_body {
        let error = result.expect_err("a truncated body was accepted");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
        return;
    }
    let body = result.expect("a well-framed message within the bound was refused");
    if wire.len() < LENGTH_PREFIX_BYTES + len {
        // The rest came from the filler (which also stood in for any missing
        // prefix bytes, as `prefix` above assumed).
        wire.resize(LENGTH_PREFIX_BYTES + len, 0xa5);
    }
    let expected = &wire[LENGTH_PREFIX_BYTES..LENGTH_PREFIX_BYTES + len];
    assert!(body == expected, "the body read is not the bytes sent");
    assert_eq!(
        peer.consumed,
        LENGTH_PREFIX_BYTES + len,
        "the codec read past the end of its frame"
    );

    // Writing the body back gives the same frame, through both paths.
    let mut out = Cursor::new(Vec::new());
    block_on(codec.write_message(&mut out, &body)).expect("writing what was read");
    assert!(
        out.get_ref()[..] == wire[..LENGTH_PREFIX_BYTES + len],
        "re-framed bytes differ"
    );
    let mut out = Cursor::new(Vec::new());
    block_on(codec.write_response(&name, &mut out, body)).expect("writing what was read");
    assert!(
        out.get_ref()[..] == wire[..LENGTH_PREFIX_BYTES + len],
        "re-framed bytes differ"
    );
});
