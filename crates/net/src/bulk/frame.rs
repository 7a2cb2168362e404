//! The bulk channel's bytes, version 1 (all integers little-endian).
//!
//! ```text
//!  open  (over libp2p, /peercloud/bulk-open/1)
//!    request  [version]
//!    answer   [version][port u16][session 16][key 32]
//!  hello (first bytes on the TCP connection)
//!    [magic "pcbulk\0" + version][session 16][mac 32]
//!  frame
//!    [seq u64][code u8][len u32][mac 32][payload len]
//!    mac = BLAKE3 keyed with the session key over
//!          direction | seq | code | len | payload
//! ```
//!
//! The session key travels only inside the noise-encrypted libp2p answer,
//! so a valid MAC proves the frame came from the peer that opened the
//! session, unaltered; the direction byte keeps a request from being
//! reflected as an answer, and the sequence number (one more per request,
//! echoed by its answer) keeps a frame from being replayed. Payloads are
//! not encrypted: the channel carries only what is sealed or public.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version of every bulk message.
pub(crate) const VERSION: u8 = 1;
/// The first bytes of a bulk connection, ending in the version.
pub(crate) const MAGIC: [u8; 8] = *b"pcbulk\x00\x01";
/// A session id.
pub(crate) const SESSION_BYTES: usize = 16;
/// A session key.
pub(crate) const KEY_BYTES: usize = 32;
const MAC_BYTES: usize = 32;
/// seq + code + len + mac.
const HEADER_BYTES: usize = 8 + 1 + 4 + MAC_BYTES;
const GRANT_BYTES: usize = 1 + 2 + SESSION_BYTES + KEY_BYTES;

/// Which way a frame goes: part of its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Direction {
    Hello = b'H',
    Request = b'Q',
    Answer = b'A',
}

/// What a bulk connection failed on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("bulk i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bulk frame of {len} bytes exceeds the {max} byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("bulk frame {seq} out of order (expected {expected})")]
    OutOfOrder { seq: u64, expected: u64 },
    #[error("bulk frame {seq} fails its MAC")]
    BadMac { seq: u64 },
    #[error("not a bulk connection of version {VERSION}")]
    BadMagic,
    #[error("bulk session answer of {len} bytes or version {version} is not version {VERSION}")]
    BadGrant { len: usize, version: u8 },
    #[error("bulk hello names no session granted in the last few seconds")]
    UnknownSession,
    #[error("bulk frame names protocol {code}, which has no bulk channel")]
    UnknownProtocol { code: u8 },
}

/// A session the serving peer opened for the asking one: where to connect
/// and the key both sides MAC with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) port: u16,
    pub(crate) session: [u8; SESSION_BYTES],
    pub(crate) key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.debug_struct("Grant")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Grant {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(GRANT_BYTES);
        out.push(VERSION);
        out.extend_from_slice(&self.port.to_le_bytes());
        out.extend_from_slice(&self.session);
        out.extend_from_slice(&self.key);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Grant, FrameError> {
        let bad = || FrameError::BadGrant {
            len: bytes.len(),
            version: bytes.first().copied().unwrap_or(0),
        };
        if bytes.len() != GRANT_BYTES || bytes[0] != VERSION {
            return Err(bad());
        }
        let port = u16::from_le_bytes([bytes[1], bytes[2]]);
        let session = bytes[3..3 + SESSION_BYTES].try_into().map_err(|_| bad())?;
        let key = bytes[3 + SESSION_BYTES..].try_into().map_err(|_| bad())?;
        Ok(Grant { port, session, key })
    }
}

fn mac(
    key: &[u8; KEY_BYTES],
    direction: Direction,
    seq: u64,
    code: u8,
    payload: &[u8],
) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&[direction as u8]);
    hasher.update(&seq.to_le_bytes());
    hasher.update(&[code]);
    hasher.update(&(payload.len() as u32).to_le_bytes());
    hasher.update(payload);
    *hasher.finalize().as_bytes()
}

/// Writes the hello that binds a new connection to `grant`'s session.
pub(crate) async fn write_hello<W: AsyncWrite + Unpin>(
    io: &mut W,
    grant: &Grant,
) -> Result<(), FrameError> {
    let mut hello = Vec::with_capacity(MAGIC.len() + SESSION_BYTES + MAC_BYTES);
    hello.extend_from_slice(&MAGIC);
    hello.extend_from_slice(&grant.session);
    hello.extend_from_slice(&mac(&grant.key, Direction::Hello, 0, 0, &grant.session));
    io.write_all(&hello).await?;
    io.flush().await?;
    Ok(())
}

/// Reads a hello: the session it names, and its MAC to check once the
/// session's key is looked up ([`hello_valid`]).
pub(crate) async fn read_hello<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<([u8; SESSION_BYTES], [u8; MAC_BYTES]), FrameError> {
    let mut hello = [0u8; MAGIC.len() + SESSION_BYTES + MAC_BYTES];
    io.read_exact(&mut hello).await?;
    if hello[..MAGIC.len()] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let mut session = [0u8; SESSION_BYTES];
    session.copy_from_slice(&hello[MAGIC.len()..MAGIC.len() + SESSION_BYTES]);
    let mut tag = [0u8; MAC_BYTES];
    tag.copy_from_slice(&hello[MAGIC.len() + SESSION_BYTES..]);
    Ok((session, tag))
}

/// Whether `tag` is the hello MAC of `session` under `key` (constant time).
pub(crate) fn hello_valid(
    key: &[u8; KEY_BYTES],
    session: &[u8; SESSION_BYTES],
    tag: &[u8; 32],
) -> bool {
    blake3::Hash::from_bytes(mac(key, Direction::Hello, 0, 0, session))
        == blake3::Hash::from_bytes(*tag)
}

/// Writes one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    io: &mut W,
    key: &[u8; KEY_BYTES],
    direction: Direction,
    seq: u64,
    code: u8,
    payload: &[u8],
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        max: u32::MAX as usize,
    })?;
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(&seq.to_le_bytes());
    header[8] = code;
    header[9..13].copy_from_slice(&len.to_le_bytes());
    header[13..].copy_from_slice(&mac(key, direction, seq, code, payload));
    io.write_all(&header).await?;
    io.write_all(payload).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one frame going `direction` that must carry `expected` as its
/// sequence number and at most `max` payload bytes; returns its code and
/// payload once its MAC checks. `Ok(None)` when the connection closed
/// cleanly before a frame began.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    key: &[u8; KEY_BYTES],
    direction: Direction,
    expected: u64,
    max: usize,
) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
    let mut header = [0u8; HEADER_BYTES];
    let first = io.read(&mut header).await?;
    if first == 0 {
        return Ok(None);
    }
    io.read_exact(&mut header[first..]).await?;
    let seq = u64::from_le_bytes(header[..8].try_into().unwrap_or_default());
    let code = header[8];
    let len = u32::from_le_bytes(header[9..13].try_into().unwrap_or_default()) as usize;
    if seq != expected {
        return Err(FrameError::OutOfOrder { seq, expected });
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // Read into spare capacity: no zeroing pass over a megabyte.
    let mut payload = Vec::with_capacity(len);
    let read = io.take(len as u64).read_to_end(&mut payload).await?;
    if read != len {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    let tag: [u8; 32] = header[13..].try_into().unwrap_or_default();
    if blake3::Hash::from_bytes(mac(key, direction, seq, code, &payload))
        != blake3::Hash::from_bytes(tag)
    {
        return Err(FrameError::BadMac { seq });
    }
    Ok(Some((code, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_BYTES] = [9; KEY_BYTES];

    async fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, &KEY, Direction::Request, 7, 3, payload)
            .await
            .expect("writing to a vec");
        out
    }

    #[tokio::test]
    async fn a_frame_reads_back_with_its_code_and_payload() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let bytes = framed(&payload).await;
        let (code, read) = read_frame(&mut bytes.as_slice(), &KEY, Direction::Request, 7, 1 << 20)
            .await
            .expect("a good frame")
            .expect("not at the end");
        assert_eq!(code, 3);
        assert_eq!(read, payload);
        let empty: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut &*empty, &KEY, Direction::Request, 7, 10).await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn any_flipped_bit_wrong_key_direction_or_order_is_refused() {
        let bytes = framed(b"sealed chunk bytes").await;
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 0x01;
            let read = read_frame(&mut bad.as_slice(), &KEY, Direction::Request, 7, 1 << 20).await;
            assert!(read.is_err(), "a flip at byte {index} went through");
        }
        let other_key = [8; KEY_BYTES];
        assert!(matches!(
            read_frame(
                &mut bytes.as_slice(),
                &other_key,
                Direction::Request,
                7,
                1 << 20
            )
            .await,
            Err(FrameError::BadMac { seq: 7 })
        ));
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), &KEY, Direction::Answer, 7, 1 << 20).await,
            Err(FrameError::BadMac { seq: 7 })
        ));
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), &KEY, Direction::Request, 8, 1 << 20).await,
            Err(FrameError::OutOfOrder {
                seq: 7,
                expected: 8
            })
        ));
        assert!(matches!(
            read_frame(&mut bytes.as_slice(), &KEY, Direction::Request, 7, 4).await,
            Err(FrameError::TooLarge { len: 18, max: 4 })
        ));
        let cut = &bytes[..bytes.len() - 1];
        assert!(
            read_frame(&mut &*cut, &KEY, Direction::Request, 7, 1 << 20)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_hello_checks_only_under_its_session_key() {
        let grant = Grant {
            port: 4242,
            session: [5; SESSION_BYTES],
            key: KEY,
        };
        assert_eq!(Grant::decode(&grant.encode()).expect("decodes"), grant);
        assert!(Grant::decode(&grant.encode()[1..]).is_err());
        let mut bytes = Vec::new();
        write_hello(&mut bytes, &grant)
            .await
            .expect("writing to a vec");
        let (session, tag) = read_hello(&mut bytes.as_slice()).await.expect("a hello");
        assert_eq!(session, grant.session);
        assert!(hello_valid(&KEY, &session, &tag));
        assert!(!hello_valid(&[1; KEY_BYTES], &session, &tag));
        bytes[0] = b'x';
        assert!(matches!(
            read_hello(&mut bytes.as_slice()).await,
            Err(FrameError::BadMagic)
        ));
    }
}
