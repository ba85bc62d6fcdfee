//! A guest's stdout and stderr, each line prefixed with its component id (as Spin does),
//! so the output of many components in one terminal or log says who printed what.
//!
//! Lines are buffered per instance and written whole, so two instances printing at once
//! do not interleave within a line; a last line without a newline is written when the
//! instance ends.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Longest partial line kept before it is written anyway (a guest printing without newlines).
const MAX_PENDING: usize = 64 * 1024;

#[derive(Clone, Copy)]
enum Target {
    Stdout,
    Stderr,
}

/// The stdout or stderr handed to every instance of one component.
#[derive(Clone)]
pub struct GuestOutput {
    prefix: Arc<str>,
    target: Target,
}

impl GuestOutput {
    pub fn stdout(component: &str) -> Self {
        Self::new(component, Target::Stdout)
    }

    pub fn stderr(component: &str) -> Self {
        Self::new(component, Target::Stderr)
    }

    fn new(component: &str, target: Target) -> Self {
        GuestOutput {
            prefix: format!("[{component}] ").into(),
            target,
        }
    }

    fn stream(&self) -> PrefixedLines {
        PrefixedLines {
            prefix: self.prefix.clone(),
            target: self.target,
            pending: Vec::new(),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        match self.target {
            Target::Stdout => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            Target::Stderr => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.stream())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.stream())
    }
}

/// One instance's stream: complete lines go out prefixed, the rest waits for its newline.
struct PrefixedLines {
    prefix: Arc<str>,
    target: Target,
    pending: Vec<u8>,
}

impl PrefixedLines {
    fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
        let complete = match self.pending.iter().rposition(|&b| b == b'\n') {
            Some(last_newline) => last_newline + 1,
            None if self.pending.len() >= MAX_PENDING => self.pending.len(),
            None => return Ok(()),
        };
        let lines: Vec<u8> = self.pending.drain(..complete).collect();
        self.emit(&lines)
    }

    /// Writes `text` (one or more lines) with every line prefixed, in one write call.
    fn emit(&self, text: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(text.len() + self.prefix.len() * 2);
        for line in text.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(line);
        }
        if out.last() != Some(&b'\n') {
            out.push(b'\n');
        }
        match self.target {
            Target::Stdout => std::io::stdout().lock().write_all(&out),
            Target::Stderr => std::io::stderr().lock().write_all(&out),
        }
    }
}

impl Drop for PrefixedLines {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let _ = self.emit(&rest);
        }
    }
}

impl OutputStream for PrefixedLines {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        // A partial line waits for its end (or the instance's); nothing else is buffered.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_PENDING)
    }
}

#[async_trait::async_trait]
impl Pollable for PrefixedLines {
    async fn ready(&mut self) {}
}

impl AsyncWrite for PrefixedLines {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.push(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prefix: &str) -> PrefixedLines {
        GuestOutput::stdout(prefix).stream()
    }

    #[test]
    fn keeps_partial_lines_until_their_newline() {
        let mut out = lines("auth");
        out.push(b"half").unwrap();
        assert_eq!(out.pending, b"half");
        out.push(b" a line\nnext").unwrap();
        assert_eq!(out.pending, b"next");
    }

    #[test]
    fn a_guest_that_never_ends_a_line_is_still_written() {
        let mut out = lines("auth");
        out.push(&vec![b'x'; MAX_PENDING]).unwrap();
        assert!(out.pending.is_empty());
    }
}
