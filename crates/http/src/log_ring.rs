//! The last log lines of the process, for the debug bundle (docs/design/operability.md §5).
//!
//! The binary adds a second `tracing-subscriber` fmt layer whose writer is [`LogRing::writer`]:
//! the ring keeps the lines exactly as formatted for stderr (text or JSON), without a file and
//! without knowing about tracing. Bounded twice: at most [`LOG_LINES`] lines of at most
//! [`MAX_LINE_BYTES`] bytes each (40 MB at the very worst; a few MB in practice).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Lines the process-wide ring keeps.
pub const LOG_LINES: usize = 10_000;

/// A longer line is cut (and marked) rather than kept whole.
pub const MAX_LINE_BYTES: usize = 4096;

pub struct LogRing {
    capacity: usize,
    lines: Mutex<VecDeque<String>>,
}

/// The process-wide ring the binary's tracing layer writes and the bundle reads.
pub fn global() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| LogRing::new(LOG_LINES))
}

impl LogRing {
    pub fn new(capacity: usize) -> LogRing {
        LogRing {
            capacity,
            lines: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends the lines of `bytes` (one formatted event, usually one line).
    pub fn push(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = self.lock();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if lines.len() >= self.capacity {
                lines.pop_front();
            }
            lines.push_back(cut(line));
        }
    }

    /// The lines kept, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// A writer for one event: what it is given goes to the ring when it is dropped, so an
    /// event's line is never split between two writers.
    pub fn writer(&self) -> RingWriter<'_> {
        RingWriter {
            ring: self,
            buf: Vec::new(),
        }
    }
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [cut at {MAX_LINE_BYTES} bytes]", &line[..end])
}

pub struct RingWriter<'a> {
    ring: &'a LogRing,
    buf: Vec<u8>,
}

impl Write for RingWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RingWriter<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.ring.push(&self.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_whole_and_bounded() {
        let ring = LogRing::new(3);
        for i in 0..5 {
            let mut w = ring.writer();
            write!(w, "line ").expect("write");
            writeln!(w, "{i}").expect("write");
        }
        assert_eq!(ring.lines(), vec!["line 2", "line 3", "line 4"]);
        ring.push("é".repeat(MAX_LINE_BYTES).as_bytes());
        let last = ring.lines().pop().expect("a line");
        assert!(last.ends_with("[cut at 4096 bytes]"), "{last}");
        assert!(last.len() <= MAX_LINE_BYTES + 32);
    }
}
