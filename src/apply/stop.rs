//! Stopping a run on SIGINT or SIGTERM.
//!
//! # Guarantees
//! - The first signal asks the run to start nothing new: operations already
//!   running finish (each is one AWS create, update or delete with its
//!   wait), the lock is released and the summary says what was done and
//!   what was not. The exit status is 128 + the signal (130, 143).
//! - A second signal abandons the running operations at once. That is safe
//!   too: every create tags its object in the create call, so the next run
//!   finds what was made and goes on from there.

use tokio::sync::watch;

/// How many stop requests arrived, and the last signal's number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    pub count: u32,
    pub signal: i32,
}

impl Requests {
    /// `SIGINT`, `SIGTERM`.
    pub fn name(&self) -> &'static str {
        match self.signal {
            2 => "SIGINT",
            15 => "SIGTERM",
            _ => "a signal",
        }
    }

    /// The exit status a run stopped by this signal ends with.
    pub fn exit_code(&self) -> u8 {
        u8::try_from(128 + self.signal).unwrap_or(1)
    }
}

/// The receiving end: cheap to clone, read by the executor and the CLI.
#[derive(Debug, Clone)]
pub struct Stop {
    rx: watch::Receiver<Requests>,
}

impl Stop {
    /// A stop that never comes (tests, and commands that change nothing).
    pub fn never() -> Stop {
        let (tx, rx) = watch::channel(Requests::default());
        // Kept alive for the life of the process: `changed()` then waits
        // forever instead of failing.
        std::mem::forget(tx);
        Stop { rx }
    }

    /// Listens for SIGINT and SIGTERM from now on: they no longer end the
    /// process, they are counted here. Must run inside the runtime.
    pub fn from_signals() -> std::io::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = watch::channel(Requests::default());
        tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                };
                tx.send_modify(|r| {
                    r.count += 1;
                    r.signal = signal;
                });
            }
        });
        Ok(Stop { rx })
    }

    /// What has been asked so far.
    pub fn requests(&self) -> Requests {
        *self.rx.borrow()
    }

    pub fn requested(&self) -> bool {
        self.requests().count > 0
    }

    /// Waits for the next request.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until at least one request has arrived.
    pub async fn first(&mut self) -> Requests {
        while !self.requested() {
            self.changed().await;
        }
        self.requests()
    }
}
