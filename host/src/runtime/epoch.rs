//! wasmtime's epoch, the clock of the guests' timeouts: a thread advances it every
//! [`TICK`], and a store whose deadline (in ticks) has passed traps the next time its
//! guest checks (at function entries and loop heads), so a guest that loops forever is
//! stopped.
//!
//! Ticking is only needed while a guest can run, so the thread stops when none can: a
//! store holds a [`Ticking`] from the moment it is armed for a piece of work (a request, a
//! message, an instantiation) until it is dropped or parked between uses
//! ([`crate::state::HostState::disarm`]). After 100 ms with no store armed the thread
//! parks, and the next [`EpochTicker::arm`] wakes it before its guest runs. An idle host
//! then makes no wake-ups at all (it made 100 a second: 3–5 ms of CPU every second);
//! under load every store is armed anyway and the thread never parks.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances; timeouts are counted in these ticks.
pub const TICK: Duration = Duration::from_millis(10);

/// Ticks with no store armed before the thread parks. Waking it costs the request that
/// does so one `futex` call; each tick costs the machine a wake-up (~40 µs of CPU on a
/// cold core): after 100 ms of quiet, parking is the cheaper of the two.
const IDLE_TICKS_BEFORE_PARKING: u32 = 10;

/// Advances the engine's epoch on a thread of its own while some store is armed; stops
/// (and joins the thread) when dropped.
pub struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    /// Stores holding a [`Ticking`].
    armed: AtomicUsize,
    /// The thread has parked, or is about to: an arm must wake it.
    parked: AtomicBool,
    stop: AtomicBool,
    /// Epochs advanced so far (tests observe the ticker through it).
    ticks: AtomicU64,
    /// The ticking thread, to unpark.
    thread: OnceLock<std::thread::Thread>,
}

impl EpochTicker {
    /// Starts the thread that advances `engine`'s epoch.
    pub fn start(engine: Engine) -> Self {
        Self::with_timing(engine, TICK, IDLE_TICKS_BEFORE_PARKING)
    }

    fn with_timing(engine: Engine, tick: Duration, idle_ticks_before_parking: u32) -> Self {
        let shared = Arc::new(Shared {
            armed: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            thread: OnceLock::new(),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("tessera-epoch".into())
            .spawn(move || state.run(&engine, tick, idle_ticks_before_parking));
        let thread = match thread {
            Ok(thread) => {
                let _ = shared.thread.set(thread.thread().clone());
                Some(thread)
            }
            Err(e) => {
                // Without the thread no timeout would ever fire: say so loudly.
                tracing::error!("cannot start the epoch thread (guest timeouts are off): {e}");
                None
            }
        };
        EpochTicker { shared, thread }
    }

    /// Keeps the epoch advancing for as long as the returned value lives, waking the
    /// thread first if it has parked. Hold it while a store's guest can run.
    pub fn arm(&self) -> Ticking {
        // SeqCst pairs with the thread's `parked` store before it reads `armed`: either
        // it sees this store armed and does not park, or this sees it parked and wakes it.
        if self.shared.armed.fetch_add(1, Ordering::SeqCst) == 0
            && self.shared.parked.load(Ordering::SeqCst)
            && let Some(thread) = self.shared.thread.get()
        {
            thread.unpark();
        }
        Ticking(self.shared.clone())
    }

    #[cfg(test)]
    fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::SeqCst)
    }

    #[cfg(test)]
    fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn run(&self, engine: &Engine, tick: Duration, idle_ticks_before_parking: u32) {
        let mut idle_ticks = 0;
        while !self.stop.load(Ordering::SeqCst) {
            if self.armed.load(Ordering::SeqCst) == 0 {
                idle_ticks += 1;
            } else {
                idle_ticks = 0;
            }
            if idle_ticks > idle_ticks_before_parking {
                self.park_until_armed();
                idle_ticks = 0;
            }
            std::thread::sleep(tick);
            engine.increment_epoch();
            self.ticks.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn park_until_armed(&self) {
        self.parked.store(true, Ordering::SeqCst);
        // `park` may return spuriously, and returns at once if an arm unparked the
        // thread between the store above and this loop: both re-check.
        while self.armed.load(Ordering::SeqCst) == 0 && !self.stop.load(Ordering::SeqCst) {
            std::thread::park();
        }
        self.parked.store(false, Ordering::SeqCst);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Held by a store while its guest can run: the epoch keeps advancing, so the store's
/// deadline can pass.
pub struct Ticking(Arc<Shared>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.armed.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use tessera_blackbox::wait_until;
    use wasmtime::{Config, Instance, Module, Store};

    use super::*;

    const TEST_TICK: Duration = Duration::from_millis(1);
    const PATIENCE: Duration = Duration::from_secs(5);

    fn engine() -> Engine {
        let mut config = Config::new();
        config.epoch_interruption(true);
        Engine::new(&config).expect("engine")
    }

    #[test]
    fn parks_when_nothing_is_armed_and_ticks_again_when_armed() {
        let ticker = EpochTicker::with_timing(engine(), TEST_TICK, 3);
        assert!(
            wait_until(PATIENCE, || ticker.is_parked()),
            "timed out waiting for the idle ticker to park"
        );

        let armed = ticker.arm();
        let at_arm = ticker.ticks();
        assert!(
            wait_until(PATIENCE, || ticker.ticks() >= at_arm + 5),
            "timed out waiting for ticks after the arm"
        );
        assert!(!ticker.is_parked());

        drop(armed);
        assert!(
            wait_until(PATIENCE, || ticker.is_parked()),
            "timed out waiting for the ticker to park again"
        );
    }

    #[test]
    fn an_armed_store_stays_ticking_however_long_it_runs() {
        let ticker = EpochTicker::with_timing(engine(), TEST_TICK, 3);
        let _armed = ticker.arm();
        let at_arm = ticker.ticks();
        // Far longer than the idle threshold: the thread must not park meanwhile.
        assert!(
            wait_until(PATIENCE, || ticker.ticks() >= at_arm + 30),
            "timed out waiting for many ticks"
        );
        assert!(!ticker.is_parked());
    }

    /// The point of the whole module: a guest that never returns, started after the
    /// ticker has parked, is still interrupted by its deadline.
    #[test]
    fn a_runaway_guest_armed_after_the_ticker_parked_is_interrupted() {
        let engine = engine();
        let ticker = EpochTicker::with_timing(engine.clone(), TEST_TICK, 3);
        assert!(
            wait_until(PATIENCE, || ticker.is_parked()),
            "timed out waiting for the idle ticker to park"
        );

        let module =
            Module::new(&engine, r#"(module (func (export "run") (loop br 0)))"#).expect("module");
        let armed = ticker.arm();
        let (done, outcome) = std::sync::mpsc::channel();
        let runner_engine = engine.clone();
        std::thread::spawn(move || {
            let _armed = armed;
            let mut store = Store::new(&runner_engine, ());
            store.epoch_deadline_trap();
            store.set_epoch_deadline(5);
            let result = Instance::new(&mut store, &module, &[]).and_then(|instance| {
                let run = instance.get_typed_func::<(), ()>(&mut store, "run")?;
                run.call(&mut store, ())
            });
            let _ = done.send(result.is_err());
        });

        let interrupted = outcome.recv_timeout(Duration::from_secs(5));
        if interrupted.is_err() {
            // Free the runaway thread before failing, so the test process can exit.
            for _ in 0..10 {
                engine.increment_epoch();
            }
        }
        assert_eq!(interrupted, Ok(true), "the guest was not interrupted");
    }

    #[test]
    fn dropping_the_ticker_stops_a_parked_thread() {
        let ticker = EpochTicker::with_timing(engine(), TEST_TICK, 3);
        assert!(
            wait_until(PATIENCE, || ticker.is_parked()),
            "timed out waiting for the idle ticker to park"
        );
        // Joins the thread: this returns only if the drop woke it.
        drop(ticker);
    }
}
