//! The wire form of every request and response: a 4-byte big-endian length,
//! then that many opaque bytes.
//!
//! One [`BytesCodec`] serves one [`Protocol`] and enforces its request and
//! response bounds on both sides: a writer refuses an oversized message
//! before writing a byte, and a reader refuses an oversized length prefix
//! before reading the body. The body's buffer grows as its bytes arrive
//! (from [`READ_BUFFER_INITIAL_BYTES`], at most doubling), so a peer that
//! announces a large message and sends little makes us hold little.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::protocol::Protocol;

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX_BYTES: usize = 4;
/// First allocation for a message body: most messages (offers, acks,
/// results) fit, and a chunk or a block batch takes a few doublings.
pub const READ_BUFFER_INITIAL_BYTES: usize = 16 * 1024;

/// Length-prefixed opaque bytes for one protocol, bounded by its limit.
#[derive(Debug, Clone, Copy)]
pub struct BytesCodec {
    protocol: Protocol,
}

impl BytesCodec {
    /// The codec for `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        BytesCodec { protocol }
    }

    /// The largest message this codec reads or writes, in bytes.
    pub fn message_bytes_max(&self) -> usize {
        self.protocol.message_bytes_max()
    }

    fn too_large(&self, len: usize, max: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "message of {len} bytes on {} exceeds the {max} byte limit",
                self.protocol.name(),
            ),
        )
    }

    /// Reads one framed message of at most [`BytesCodec::message_bytes_max`].
    pub async fn read_message<T>(&self, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_within(io, self.message_bytes_max()).await
    }

    /// Reads one framed message, refusing a length above `max` before
    /// reading the body, and growing the body's buffer only as bytes arrive.
    pub async fn read_within<T>(&self, io: &mut T, max: usize) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix);
        let len = usize::try_from(len).map_err(|_| self.too_large(usize::MAX, max))?;
        if len > max {
            return Err(self.too_large(len, max));
        }
        let mut body = vec![0u8; len.min(READ_BUFFER_INITIAL_BYTES)];
        let mut filled = 0;
        while filled < len {
            if filled == body.len() {
                let grown = (body.len() * 2).min(len);
                body.try_reserve_exact(grown - body.len())
                    .map_err(io::Error::other)?;
                body.resize(grown, 0);
            }
            match io.read(&mut body[filled..]).await {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} message ended after {filled} of its {len} bytes",
                            self.protocol.name()
                        ),
                    ));
                }
                Ok(read) => filled += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(body)
    }

    /// Writes one framed message of at most [`BytesCodec::message_bytes_max`].
    pub async fn write_message<T>(&self, io: &mut T, data: &[u8]) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_within(io, data, self.message_bytes_max()).await
    }

    /// Writes one framed message, refusing one above `max` before anything
    /// reaches the stream.
    pub async fn write_within<T>(&self, io: &mut T, data: &[u8], max: usize) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if data.len() > max {
            return Err(self.too_large(data.len(), max));
        }
        let len = u32::try_from(data.len()).map_err(|_| self.too_large(data.len(), max))?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(data).await?;
        io.flush().await
    }
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_within(io, self.protocol.request_bytes_max())
            .await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_within(io, self.protocol.response_bytes_max())
            .await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_within(io, &request, self.protocol.request_bytes_max())
            .await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write_within(io, &response, self.protocol.response_bytes_max())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use proptest::prelude::*;

    fn framed(len: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        bytes
    }

    proptest! {
        #[test]
        fn round_trips_within_the_limit(
            protocol in prop::sample::select(Protocol::ALL.to_vec()),
            data in prop::collection::vec(any::<u8>(), 0..4096),
        ) {
            let codec = BytesCodec::new(protocol);
            let mut wire = Cursor::new(Vec::new());
            block_on(codec.write_message(&mut wire, &data)).unwrap();
            let wire = wire.into_inner();
            prop_assert_eq!(wire.len(), LENGTH_PREFIX_BYTES + data.len());
            let read = block_on(codec.read_message(&mut Cursor::new(wire))).unwrap();
            prop_assert_eq!(read, data);
        }

        #[test]
        fn truncated_frames_are_errors(
            data in prop::collection::vec(any::<u8>(), 1..512),
            cut in any::<prop::sample::Index>(),
        ) {
            let codec = BytesCodec::new(Protocol::Offer);
            let wire = framed(data.len() as u32, &data);
            let cut = cut.index(wire.len());
            let result = block_on(codec.read_message(&mut Cursor::new(wire[..cut].to_vec())));
            prop_assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    /// A peer that announces a large message and trickles its body: records
    /// the largest buffer the codec offered against the bytes given so far.
    struct Trickle {
        wire: Vec<u8>,
        at: usize,
        worst: f64,
    }

    impl futures::AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let given = self.at.saturating_sub(LENGTH_PREFIX_BYTES);
            let ratio = buf.len() as f64 / given.max(READ_BUFFER_INITIAL_BYTES) as f64;
            self.worst = self.worst.max(ratio);
            let n = buf.len().min(1000).min(self.wire.len() - self.at);
            let at = self.at;
            buf[..n].copy_from_slice(&self.wire[at..at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn buffers_grow_with_the_bytes_that_arrive_not_with_the_prefix() {
        let codec = BytesCodec::new(Protocol::BlockSync);
        let announced = Protocol::BlockSync.response_bytes_max() as u32;
        // 100 kB of an announced 8 MiB, then the peer goes quiet.
        let mut peer = Trickle {
            wire: framed(announced, &[9; 100_000]),
            at: 0,
            worst: 0.0,
        };
        let read = block_on(codec.read_within(&mut peer, announced as usize));
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            peer.worst <= 2.0,
            "offered {:.1}x the bytes received",
            peer.worst
        );
        // A whole message trickled in arrives intact.
        let body: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut peer = Trickle {
            wire: framed(body.len() as u32, &body),
            at: 0,
            worst: 0.0,
        };
        assert_eq!(block_on(codec.read_message(&mut peer)).unwrap(), body);
        assert!(peer.worst <= 2.0, "{}", peer.worst);
    }

    #[test]
    fn a_request_is_bounded_by_its_own_limit_not_the_response_limit() {
        use libp2p::request_response::Codec;
        let mut codec = BytesCodec::new(Protocol::BlockSync);
        let name = StreamProtocol::new(Protocol::BlockSync.name());
        let len = Protocol::BlockSync.request_bytes_max() as u32 + 1;
        let error =
            block_on(codec.read_request(&name, &mut Cursor::new(framed(len, &[])))).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // The same length is a fine response.
        let body = vec![1u8; len as usize];
        let read = block_on(codec.read_response(&name, &mut Cursor::new(framed(len, &body))));
        assert_eq!(read.unwrap(), body);
    }

    #[test]
    fn exactly_the_limit_is_accepted() {
        let codec = BytesCodec::new(Protocol::Offer);
        let data = vec![1u8; Protocol::Offer.message_bytes_max()];
        let mut wire = Cursor::new(Vec::new());
        block_on(codec.write_message(&mut wire, &data)).unwrap();
        let read = block_on(codec.read_message(&mut Cursor::new(wire.into_inner()))).unwrap();
        assert_eq!(read.len(), data.len());
    }

    #[test]
    fn oversized_write_is_refused_before_any_byte() {
        for protocol in Protocol::ALL {
            let codec = BytesCodec::new(protocol);
            let data = vec![0u8; protocol.message_bytes_max() + 1];
            let mut wire = Cursor::new(Vec::new());
            let error = block_on(codec.write_message(&mut wire, &data)).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(wire.into_inner().is_empty(), "{}", protocol.name());
        }
    }

    #[test]
    fn oversized_length_prefix_is_refused_without_reading_the_body() {
        for protocol in Protocol::ALL {
            let codec = BytesCodec::new(protocol);
            let len = protocol.message_bytes_max() as u32 + 1;
            // Only the prefix is present: an attempt to read the body would
            // report UnexpectedEof instead of InvalidData.
            let error =
                block_on(codec.read_message(&mut Cursor::new(framed(len, &[])))).unwrap_err();
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidData,
                "{}",
                protocol.name()
            );
            let error =
                block_on(codec.read_message(&mut Cursor::new(framed(u32::MAX, &[])))).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        }
    }
}
