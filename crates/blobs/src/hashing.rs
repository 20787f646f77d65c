//! A writer that counts and hashes exactly the bytes its inner writer accepted.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_lc_rs::digest;
use tokio::io::AsyncWrite;

use crate::Sha256;

pub struct Hashing<W> {
    inner: W,
    digest: digest::Context,
    size: u64,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            digest: digest::Context::new(&digest::SHA256),
            size: 0,
        }
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer, the byte count and the SHA-256 of what it accepted.
    pub fn finish(self) -> (W, u64, Sha256) {
        let digest = self.digest.finish();
        let bytes: &[u8; 32] = digest
            .as_ref()
            .try_into()
            .expect("a SHA-256 digest is 32 bytes");
        (self.inner, self.size, Sha256::from_digest(bytes))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Hashing<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = poll {
            this.digest.update(&buf[..written]);
            this.size += written as u64;
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn hashes_what_was_written() {
        let mut writer = Hashing::new(Vec::new());
        writer.write_all(b"ab").await.unwrap();
        writer.write_all(b"c").await.unwrap();
        let (inner, size, sha256) = writer.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(size, 3);
        assert_eq!(
            sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
