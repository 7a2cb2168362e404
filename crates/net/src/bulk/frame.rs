//! The bulk channel's bytes, version 1 (all integers little-endian).
//!
//! ```text
//!  open  (over libp2p, /peercloud/bulk-open/1)
//!    request  [version]
//!    answer   [version][port u16][session 16][key 32]
//!  hello (first bytes on the TCP connection)
//!    [magic "pcbulk\0" + version][session 16][tag 16]
//!  frame
//!    [seq u64][code u8][len u32][payload len, encrypted][tag 16]
//! ```
//!
//! Every frame is AES-256-GCM under the session key: the header is the
//! associated data, the nonce is the direction and the sequence number
//! (one more per request, echoed by its answer), so each (key, nonce) is
//! used once, a request cannot be reflected as an answer nor a frame
//! replayed. The key travels only inside the noise-encrypted libp2p answer:
//! a frame that opens came from the peer that opened the session,
//! unaltered and unread by anyone else. The hello is the same seal over
//! nothing, with the session id as associated data. (AES-GCM with the
//! processor's AES instructions costs less per byte than noise's
//! ChaCha20-Poly1305, or even than a BLAKE3 MAC.)

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version of every bulk message.
pub(crate) const VERSION: u8 = 1;
/// The first bytes of a bulk connection, ending in the version.
pub(crate) const MAGIC: [u8; 8] = *b"pcbulk\x00\x01";
/// A session id.
pub(crate) const SESSION_BYTES: usize = 16;
/// A session key.
pub(crate) const KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 16;
/// seq + code + len.
const HEADER_BYTES: usize = 8 + 1 + 4;
const GRANT_BYTES: usize = 1 + 2 + SESSION_BYTES + KEY_BYTES;

/// Which way a frame goes: part of its nonce.
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
    #[error("bulk frame {seq} does not open under the session key")]
    BadTag { seq: u64 },
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
/// and the key both sides seal with.
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

    /// The session's sealing key.
    pub(crate) fn sealer(&self) -> SessionKey {
        SessionKey::new(&self.key)
    }
}

/// A session's AES-256-GCM key.
pub(crate) struct SessionKey(LessSafeKey);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    pub(crate) fn new(key: &[u8; KEY_BYTES]) -> SessionKey {
        // 32 bytes is AES-256's key length: the only way `new` fails.
        let unbound = UnboundKey::new(&AES_256_GCM, key);
        SessionKey(LessSafeKey::new(unbound.unwrap_or_else(|_| {
            unreachable!("a 32-byte key is an AES-256 key")
        })))
    }

    fn nonce(direction: Direction, seq: u64) -> Nonce {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[0] = direction as u8;
        nonce[NONCE_LEN - 8..].copy_from_slice(&seq.to_le_bytes());
        Nonce::assume_unique_for_key(nonce)
    }

    /// Seals `payload` in place; returns the tag.
    fn seal(
        &self,
        direction: Direction,
        seq: u64,
        aad: &[u8],
        payload: &mut [u8],
    ) -> [u8; TAG_BYTES] {
        let tag =
            self.0
                .seal_in_place_separate_tag(Self::nonce(direction, seq), Aad::from(aad), payload);
        let mut out = [0u8; TAG_BYTES];
        // Sealing fails only past AES-GCM's 64 GiB per nonce; a frame is
        // bounded far below that, and a failure leaves a tag that never opens.
        if let Ok(tag) = tag {
            out.copy_from_slice(tag.as_ref());
        }
        out
    }

    /// Opens `sealed` (ciphertext then tag) in place; the plaintext's length.
    fn open(&self, direction: Direction, seq: u64, aad: &[u8], sealed: &mut [u8]) -> Option<usize> {
        self.0
            .open_in_place(Self::nonce(direction, seq), Aad::from(aad), sealed)
            .ok()
            .map(|plain| plain.len())
    }
}

/// Writes the hello that binds a new connection to `grant`'s session.
pub(crate) async fn write_hello<W: AsyncWrite + Unpin>(
    io: &mut W,
    grant: &Grant,
) -> Result<(), FrameError> {
    let tag = grant
        .sealer()
        .seal(Direction::Hello, 0, &grant.session, &mut []);
    let mut hello = Vec::with_capacity(MAGIC.len() + SESSION_BYTES + TAG_BYTES);
    hello.extend_from_slice(&MAGIC);
    hello.extend_from_slice(&grant.session);
    hello.extend_from_slice(&tag);
    io.write_all(&hello).await?;
    io.flush().await?;
    Ok(())
}

/// Reads a hello: the session it names, and its tag to check once the
/// session's key is looked up ([`hello_valid`]).
pub(crate) async fn read_hello<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<([u8; SESSION_BYTES], [u8; TAG_BYTES]), FrameError> {
    let mut hello = [0u8; MAGIC.len() + SESSION_BYTES + TAG_BYTES];
    io.read_exact(&mut hello).await?;
    if hello[..MAGIC.len()] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let mut session = [0u8; SESSION_BYTES];
    session.copy_from_slice(&hello[MAGIC.len()..MAGIC.len() + SESSION_BYTES]);
    let mut tag = [0u8; TAG_BYTES];
    tag.copy_from_slice(&hello[MAGIC.len() + SESSION_BYTES..]);
    Ok((session, tag))
}

/// Whether `tag` is the hello of `session` under `key`.
pub(crate) fn hello_valid(
    key: &SessionKey,
    session: &[u8; SESSION_BYTES],
    tag: &[u8; TAG_BYTES],
) -> bool {
    let mut sealed = *tag;
    key.open(Direction::Hello, 0, session, &mut sealed) == Some(0)
}

fn header(seq: u64, code: u8, len: u32) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(&seq.to_le_bytes());
    header[8] = code;
    header[9..].copy_from_slice(&len.to_le_bytes());
    header
}

/// Seals `payload` in place and writes it as one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    io: &mut W,
    key: &SessionKey,
    direction: Direction,
    seq: u64,
    code: u8,
    mut payload: Vec<u8>,
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len(),
        max: u32::MAX as usize,
    })?;
    let header = header(seq, code, len);
    let tag = key.seal(direction, seq, &header, &mut payload);
    io.write_all(&header).await?;
    io.write_all(&payload).await?;
    io.write_all(&tag).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one frame going `direction` that must carry `expected` as its
/// sequence number and at most `max` payload bytes; returns its code and
/// payload once it opens. `Ok(None)` when the connection closed cleanly
/// before a frame began.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    key: &SessionKey,
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
    let len = u32::from_le_bytes(header[9..].try_into().unwrap_or_default()) as usize;
    if seq != expected {
        return Err(FrameError::OutOfOrder { seq, expected });
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    // Read into spare capacity: no zeroing pass over a megabyte.
    let sealed_len = len + TAG_BYTES;
    let mut payload = Vec::with_capacity(sealed_len);
    let read = io.take(sealed_len as u64).read_to_end(&mut payload).await?;
    if read != sealed_len {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if key.open(direction, seq, &header, &mut payload) != Some(len) {
        return Err(FrameError::BadTag { seq });
    }
    payload.truncate(len);
    Ok(Some((code, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; KEY_BYTES] = [9; KEY_BYTES];

    async fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let key = SessionKey::new(&KEY);
        write_frame(&mut out, &key, Direction::Request, 7, 3, payload.to_vec())
            .await
            .expect("writing to a vec");
        out
    }

    async fn read(
        bytes: &[u8],
        key: &[u8; KEY_BYTES],
        direction: Direction,
        expected: u64,
        max: usize,
    ) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
        let mut bytes = bytes;
        read_frame(&mut bytes, &SessionKey::new(key), direction, expected, max).await
    }

    #[tokio::test]
    async fn a_frame_reads_back_with_its_code_and_payload_and_is_not_in_the_clear() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let bytes = framed(&payload).await;
        assert!(
            bytes.windows(64).all(|w| w != &payload[1000..1064]),
            "the payload is on the wire in the clear"
        );
        let (code, opened) = read(&bytes, &KEY, Direction::Request, 7, 1 << 20)
            .await
            .expect("a good frame")
            .expect("not at the end");
        assert_eq!(code, 3);
        assert_eq!(opened, payload);
        assert!(matches!(
            read(&[], &KEY, Direction::Request, 7, 10).await,
            Ok(None)
        ));
    }

    #[tokio::test]
    async fn any_flipped_bit_wrong_key_direction_or_order_is_refused() {
        let bytes = framed(b"sealed chunk bytes").await;
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 0x01;
            let opened = read(&bad, &KEY, Direction::Request, 7, 1 << 20).await;
            assert!(opened.is_err(), "a flip at byte {index} went through");
        }
        assert!(matches!(
            read(&bytes, &[8; KEY_BYTES], Direction::Request, 7, 1 << 20).await,
            Err(FrameError::BadTag { seq: 7 })
        ));
        assert!(matches!(
            read(&bytes, &KEY, Direction::Answer, 7, 1 << 20).await,
            Err(FrameError::BadTag { seq: 7 })
        ));
        assert!(matches!(
            read(&bytes, &KEY, Direction::Request, 8, 1 << 20).await,
            Err(FrameError::OutOfOrder {
                seq: 7,
                expected: 8
            })
        ));
        assert!(matches!(
            read(&bytes, &KEY, Direction::Request, 7, 4).await,
            Err(FrameError::TooLarge { len: 18, max: 4 })
        ));
        let cut = &bytes[..bytes.len() - 1];
        assert!(
            read(cut, &KEY, Direction::Request, 7, 1 << 20)
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
        assert!(!format!("{grant:?}").contains("9, 9"));
        let mut bytes = Vec::new();
        write_hello(&mut bytes, &grant)
            .await
            .expect("writing to a vec");
        let (session, tag) = read_hello(&mut bytes.as_slice()).await.expect("a hello");
        assert_eq!(session, grant.session);
        assert!(hello_valid(&SessionKey::new(&KEY), &session, &tag));
        assert!(!hello_valid(
            &SessionKey::new(&[1; KEY_BYTES]),
            &session,
            &tag
        ));
        assert!(!hello_valid(
            &SessionKey::new(&KEY),
            &[6; SESSION_BYTES],
            &tag
        ));
        bytes[0] = b'x';
        assert!(matches!(
            read_hello(&mut bytes.as_slice()).await,
            Err(FrameError::BadMagic)
        ));
    }
}
