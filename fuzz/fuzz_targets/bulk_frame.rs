//! The bulk channel's reader (`crates/net/src/bulk/frame.rs`): the hello and
//! the frames a node reads from whoever connects to its bulk port, before
//! anything proves who that is.
//!
//! Input layout: `[mode][seq][max][stream...]`
//! - `mode & 1`: read a hello (0) or one request frame (1) from `stream`;
//! - `seq`: the sequence number the frame must carry;
//! - `max`: the payload bound, `max * 257` bytes.
//!
//! Properties:
//! - nothing panics, and a refused input is an error, never a frame;
//! - a frame that opens is one sealed under the session key: sealing its
//!   code and payload again at its sequence gives exactly the bytes it took,
//!   and its payload is within the bound (a forged or altered frame never
//!   opens, so the fuzzer should only ever meet the seeds' frames here);
//! - a hello that checks is the hello of the session it names.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peercloud_fuzz::verbose;
use peercloud_net::bulk_fuzzing::{hello, open, read_hello, seal};

fuzz_target!(|data: &[u8]| {
    let [mode, seq, max, stream @ ..] = data else {
        return;
    };
    if mode & 1 == 0 {
        match read_hello(stream) {
            Ok((session, true)) => {
                let expected = hello(session);
                assert_eq!(&stream[..expected.len()], &expected[..], "a hello checked");
            }
            Ok((_, false)) => {}
            Err(reason) => {
                if verbose() {
                    eprintln!("hello refused: {reason}");
                }
            }
        }
        return;
    }
    let seq = u64::from(*seq);
    let max = usize::from(*max) * 257;
    match open(stream, seq, max) {
        Ok(Some((code, payload, took))) => {
            assert!(payload.len() <= max, "a payload over the bound opened");
            assert_eq!(
                seal(seq, code, &payload),
                &stream[..took],
                "an unsealed frame opened"
            );
        }
        Ok(None) => assert!(stream.is_empty(), "a non-empty stream read as its end"),
        Err(reason) => {
            if verbose() {
                eprintln!("frame refused: {reason}");
            }
        }
    }
});
