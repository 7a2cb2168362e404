//! The wire form of every request and response: a 4-byte big-endian length,
//! then that many opaque bytes.
//!
//! One [`BytesCodec`] serves one [`Protocol`] and enforces its
//! `message_bytes_max()` on both sides: a writer refuses an oversized message
//! before writing a byte, and a reader refuses an oversized length prefix before
//! allocating or reading the body, so a peer can never make us buffer more than
//! the protocol allows.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::protocol::Protocol;

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX_BYTES: usize = 4;

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

    fn too_large(&self, len: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "message of {len} bytes on {} exceeds the {} byte limit",
                self.protocol.name(),
                self.message_bytes_max()
            ),
        )
    }

    /// Reads one framed message, refusing a length above the limit.
    pub async fn read_message<T>(&self, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix);
        let len = usize::try_from(len).map_err(|_| self.too_large(usize::MAX))?;
        if len > self.message_bytes_max() {
            return Err(self.too_large(len));
        }
        let mut body = vec![0u8; len];
        io.read_exact(&mut body).await?;
        Ok(body)
    }

    /// Writes one framed message, refusing a message above the limit before
    /// anything reaches the stream.
    pub async fn write_message<T>(&self, io: &mut T, data: &[u8]) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if data.len() > self.message_bytes_max() {
            return Err(self.too_large(data.len()));
        }
        let len = u32::try_from(data.len()).map_err(|_| self.too_large(data.len()))?;
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
        self.read_message(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_message(io).await
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
        self.write_message(io, &request).await
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
        self.write_message(io, &response).await
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
