//! The epoch ticker: one thread per executor that advances the engine's
//! epoch every [`crate::EPOCH_TICK_MS`]. Each running store checks its wall
//! clock and output size when the epoch passes its deadline, so a tick is
//! the granularity of the wall-time and output limits.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// Owns the ticker thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Ticker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking `engine` every `period`.
    pub(crate) fn start(engine: Engine, period: Duration) -> std::io::Result<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("compute-epoch".into())
            .spawn(move || {
                // Dropping the sender disconnects the channel and ends the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the ticker cannot be handled here; the engine is going away.
            let _ = thread.join();
        }
    }
}
