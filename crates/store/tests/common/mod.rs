//! What the object-pipeline test files share.

use std::io::{self, Read};

/// A reader that yields `good` bytes, then fails (a source that breaks
/// part way through a put).
pub struct FailingReader {
    pub good: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::other("the source broke"));
        }
        let n = buf.len().min(self.good);
        buf[..n].fill(7);
        self.good -= n;
        Ok(n)
    }
}
