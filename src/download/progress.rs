//! The download progress on stderr: on a terminal one line redrawn at most 10 times a second;
//! otherwise (a log, a pipe) a plain line every 10% (every 10 s when the size is unknown).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(100);
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub(super) struct Progress {
    enabled: bool,
    tty: bool,
    total: Option<u64>,
    start: Instant,
    last: Instant,
    /// Plain mode: the next tenth of `total` to report.
    next_tenth: u64,
}

impl Progress {
    pub(super) fn new(enabled: bool, total: Option<u64>) -> Progress {
        let now = Instant::now();
        let tty = std::io::stderr().is_terminal();
        Progress { enabled, tty, total, start: now, last: now, next_tenth: 1 }
    }

    pub(super) fn update(&mut self, got: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self.tty {
            if now.duration_since(self.last) >= REDRAW {
                self.last = now;
                self.draw(got, false);
            }
        } else if let Some(total) = self.total.filter(|&t| t > 0) {
            // 100% is `finish`'s line.
            if got * 10 >= total * self.next_tenth && got < total {
                self.next_tenth = (got * 10 / total + 1).min(10);
                self.draw(got, false);
            }
        } else if now.duration_since(self.last) >= PLAIN_EVERY {
            self.last = now;
            self.draw(got, false);
        }
    }

    pub(super) fn finish(&mut self, got: u64) {
        if self.enabled {
            self.draw(got, true);
        }
    }

    /// Ends a redrawn line so the error that follows starts on its own line.
    pub(super) fn abandon(&mut self) {
        if self.enabled && self.tty {
            eprintln!();
        }
    }

    fn draw(&self, got: u64, done: bool) {
        let line = progress_line(got, self.total, self.start.elapsed().as_secs_f64());
        let mut err = std::io::stderr().lock();
        let _ = match (self.tty, done) {
            (true, false) => write!(err, "\r{line}\x1b[K"),
            (true, true) => writeln!(err, "\r{line}\x1b[K"),
            (false, _) => writeln!(err, "{line}"),
        };
        let _ = err.flush();
    }
}

/// `"  12.3 / 45.6 MB  27%  8.9 MB/s"` (MB = 10^6 bytes); without a total, `"  12.3 MB  8.9 MB/s"`.
pub fn progress_line(got: u64, total: Option<u64>, secs: f64) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let rate = if secs > 0.0 { mb(got) / secs } else { 0.0 };
    match total {
        Some(t) if t > 0 => {
            let pct = (got as f64 * 100.0 / t as f64).min(100.0);
            let bar_len = 24;
            let filled = ((pct / 100.0) * bar_len as f64) as usize;
            format!(
                "[{}{}] {:.1} / {:.1} MB {pct:3.0}% {rate:.1} MB/s",
                "#".repeat(filled),
                " ".repeat(bar_len - filled),
                mb(got),
                mb(t)
            )
        }
        _ => format!("{:.1} MB {rate:.1} MB/s", mb(got)),
    }
}
