//! Progress of running operations: what each waits for, and how it is
//! shown.
//!
//! Kinds say what an operation is waiting for with [`note`] (`waiting for
//! available (modifying)`); the executor runs each operation in a
//! [`scope`] and shows the note with the operation's elapsed time. On a
//! terminal, [`Display`] keeps a live line per running operation and a
//! total bar at the bottom (indicatif), with finished lines scrolling
//! above; elsewhere (CI logs, pipes) it prints plain lines only, and a
//! line per running operation at a steady interval.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::{Printer, Style};

/// What one running operation is waiting for, if it said.
pub type Slot = Arc<Mutex<Option<String>>>;

tokio::task_local! {
    static CURRENT: Slot;
}

/// Runs `fut` with a fresh note slot, returned for the display to read.
pub fn scope<F: std::future::Future>(fut: F) -> (Slot, impl std::future::Future<Output = F::Output>) {
    let slot: Slot = Arc::default();
    (slot.clone(), CURRENT.scope(slot, fut))
}

/// Says what the current operation waits for (`None`: nothing). Outside an
/// operation (a read, a test) it does nothing.
pub fn note(text: Option<String>) {
    let _ = CURRENT.try_with(|slot| {
        if let Ok(mut s) = slot.lock() {
            *s = text;
        }
    });
}

/// How often plain output repeats the line of each running operation.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(10);

/// Human elapsed time: `42s`, `4m10s`, `1h02m`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

struct Running {
    label: String,
    verb: &'static str,
    slot: Slot,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Running {
    fn line(&self) -> String {
        let what = self.slot.lock().ok().and_then(|s| s.clone()).unwrap_or_else(|| format!("still {}…", self.verb));
        format!("{}: {what} [{}]", self.label, elapsed(self.started.elapsed()))
    }
}

/// The executor's output while operations run.
pub struct Display {
    printer: Printer,
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    running: BTreeMap<usize, Running>,
    last_plain: Instant,
}

impl Display {
    /// Live lines when stdout is a terminal, else plain lines.
    pub fn new(printer: &Printer, ops: usize) -> Display {
        let (multi, total) = if printer.tty {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let total = multi.add(ProgressBar::new(ops as u64));
            total.set_style(
                ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} operations [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            (Some(multi), Some(total))
        } else {
            (None, None)
        };
        Display { printer: *printer, multi, total, running: BTreeMap::new(), last_plain: Instant::now() }
    }

    /// Whether this display draws live lines.
    pub fn is_live(&self) -> bool {
        self.multi.is_some()
    }

    /// A line that stays (above the live lines on a terminal).
    pub fn println(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => self.printer.out(text),
        }
    }

    pub fn start(&mut self, i: usize, label: String, verb: (&'static str, &'static str), slot: Slot) {
        let bar = self.multi.as_ref().map(|m| {
            let total = self.total.as_ref().expect("live displays have a total bar");
            let b = m.insert_before(total, ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_message(format!("{label}: {}…", verb.0));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        if bar.is_none() {
            self.printer.out(&format!("{label}: {}…", verb.0));
        }
        self.running.insert(i, Running { label, verb: verb.0, slot, started: Instant::now(), bar });
    }

    /// Operation `i` ended: its line `text` stays.
    pub fn finish(&mut self, i: usize, text: &str) {
        if let Some(r) = self.running.remove(&i)
            && let Some(b) = r.bar
        {
            b.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&b);
            }
        }
        if let Some(t) = &self.total {
            t.inc(1);
        }
        self.println(text);
    }

    /// Operations that never ran (skipped) still count toward the total.
    pub fn skipped(&self, n: usize) {
        if let Some(t) = &self.total {
            t.inc(n as u64);
        }
    }

    /// Refreshes live lines; in plain mode, prints each running operation's
    /// line every [`PLAIN_INTERVAL`].
    pub fn tick(&mut self) {
        if self.is_live() {
            for r in self.running.values() {
                if let Some(b) = &r.bar {
                    b.set_message(r.line());
                }
            }
            return;
        }
        if self.last_plain.elapsed() < PLAIN_INTERVAL {
            return;
        }
        self.last_plain = Instant::now();
        for r in self.running.values() {
            self.printer.out(&r.line());
        }
    }

    /// Removes the live lines (before the summary).
    pub fn clear(&mut self) {
        for r in self.running.values() {
            if let Some(b) = &r.bar {
                b.finish_and_clear();
            }
        }
        if let Some(t) = &self.total {
            t.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }

    /// An error line, painted.
    pub fn error(&self, text: &str) {
        self.println(&self.printer.paint(Style::Error, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_like_a_clock() {
        assert_eq!(elapsed(Duration::from_secs(42)), "42s");
        assert_eq!(elapsed(Duration::from_secs(250)), "4m10s");
        assert_eq!(elapsed(Duration::from_secs(3720)), "1h02m");
    }

    #[tokio::test]
    async fn notes_reach_the_slot_of_their_operation_only() {
        let (slot, fut) = scope(async {
            note(Some("waiting for available (modifying)".into()));
        });
        fut.await;
        assert_eq!(slot.lock().unwrap().as_deref(), Some("waiting for available (modifying)"));
        note(Some("outside".into()));
    }
}
