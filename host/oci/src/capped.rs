//! A sink that holds at most a set number of bytes: a registry that streams more than a
//! layer's descriptor declares is cut off when it passes the declared size, not buffered.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// Bytes written into memory up to `cap`; one byte more fails the write (and so the pull).
#[derive(Debug)]
pub struct Capped {
    /// What was written.
    pub bytes: Vec<u8>,
    cap: usize,
    /// Whether a write went past `cap`.
    pub overflowed: bool,
}

impl Capped {
    /// An empty sink for at most `cap` bytes (allocated as they come, not up front).
    pub fn new(cap: u64) -> Self {
        Self {
            bytes: Vec::new(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            overflowed: false,
        }
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.bytes.len().saturating_add(buf.len()) > self.cap {
            self.overflowed = true;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "more bytes than the layer's descriptor declares",
            )));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_write_past_the_cap_fails_and_keeps_nothing_more() {
        let mut sink = Capped::new(5);
        sink.write_all(b"abc").await.unwrap();
        assert!(sink.write_all(b"def").await.is_err());
        assert!(sink.overflowed);
        assert_eq!(sink.bytes, b"abc");
        let mut exact = Capped::new(3);
        exact.write_all(b"abc").await.unwrap();
        assert!(!exact.overflowed);
    }
}
