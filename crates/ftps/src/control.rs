//! The control channel: reading command lines with a length cap and writing replies, over plain
//! TCP before `AUTH TLS` and over TLS after.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::reply::Reply;

pub struct ControlChannel<S> {
    stream: BufReader<S>,
    line: Vec<u8>,
    max_line_bytes: usize,
    /// A client that stops reading must not hold its session forever.
    write_timeout: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LineRead {
    Line(Vec<u8>),
    /// The line grew past the cap without a line feed.
    TooLong,
    /// The client closed the connection.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ControlChannel<S> {
    pub fn new(stream: S, max_line_bytes: usize, write_timeout: Duration) -> ControlChannel<S> {
        ControlChannel {
            stream: BufReader::new(stream),
            line: Vec::new(),
            max_line_bytes,
            write_timeout,
        }
    }

    /// Reads one line. Cancel-safe: bytes of an unfinished line stay buffered for the next call,
    /// so it can race a transfer in `select!` without losing a pipelined command.
    pub async fn read_line(&mut self) -> io::Result<LineRead> {
        loop {
            let available = self.stream.fill_buf().await?;
            if available.is_empty() {
                return Ok(LineRead::Closed);
            }
            let (taken, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(newline) => (newline + 1, true),
                None => (available.len(), false),
            };
            let room = self.max_line_bytes.saturating_sub(self.line.len());
            if taken > room {
                return Ok(LineRead::TooLong);
            }
            self.line.extend_from_slice(&available[..taken]);
            self.stream.consume(taken);
            if complete {
                return Ok(LineRead::Line(std::mem::take(&mut self.line)));
            }
        }
    }

    /// What the client sent so far and no line has taken yet (waiting for some if there is
    /// none), without consuming it.
    pub async fn buffered(&mut self) -> io::Result<&[u8]> {
        self.stream.fill_buf().await
    }

    /// The first byte the client sent, without consuming it.
    pub async fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        Ok(self.stream.fill_buf().await?.first().copied())
    }

    pub async fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        let stream = self.stream.get_mut();
        let write = async {
            stream.write_all(reply.to_wire().as_bytes()).await?;
            stream.flush().await
        };
        tokio::time::timeout(self.write_timeout, write)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ))
            })
    }

    /// Whether the client sent bytes beyond the current line (e.g. a ClientHello right behind
    /// `AUTH TLS` before our `234`), which must not be silently dropped on a TLS upgrade.
    pub fn has_buffered_input(&self) -> bool {
        !self.stream.buffer().is_empty() || !self.line.is_empty()
    }

    pub fn into_inner(self) -> S {
        self.stream.into_inner()
    }

    pub fn get_ref(&self) -> &S {
        self.stream.get_ref()
    }

    pub async fn shutdown(&mut self) {
        let shutdown = self.stream.get_mut().shutdown();
        let _ = tokio::time::timeout(self.write_timeout, shutdown).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn reads_lines_and_caps_their_length() {
        let (client, server) = tokio::io::duplex(64);
        let mut control = ControlChannel::new(server, 16, Duration::from_secs(5));
        let mut client = client;
        client.write_all(b"NOOP\r\nUSER a\r\n").await.unwrap();
        assert_eq!(
            control.read_line().await.unwrap(),
            LineRead::Line(b"NOOP\r\n".to_vec())
        );
        assert_eq!(
            control.read_line().await.unwrap(),
            LineRead::Line(b"USER a\r\n".to_vec())
        );
        client.write_all(&[b'x'; 40]).await.unwrap();
        assert_eq!(control.read_line().await.unwrap(), LineRead::TooLong);
        let (client, server) = tokio::io::duplex(64);
        drop(client);
        let mut control = ControlChannel::new(server, 16, Duration::from_secs(5));
        assert_eq!(control.read_line().await.unwrap(), LineRead::Closed);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_times_out_the_reply() {
        let (_client, server) = tokio::io::duplex(8);
        let mut control = ControlChannel::new(server, 64, Duration::from_millis(50));
        let error = control
            .reply(&Reply::new(200, "a reply longer than the 8-byte pipe"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_cancelled_read_keeps_the_partial_line() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut control = ControlChannel::new(server, 64, Duration::from_secs(5));
        client.write_all(b"AB").await.unwrap();
        let cancelled =
            tokio::time::timeout(std::time::Duration::from_millis(20), control.read_line()).await;
        assert!(cancelled.is_err());
        client.write_all(b"OR\r\n").await.unwrap();
        assert_eq!(
            control.read_line().await.unwrap(),
            LineRead::Line(b"ABOR\r\n".to_vec())
        );
    }
}
