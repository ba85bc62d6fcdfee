//! Reused instances for message handlers: a Tessera extension, off unless
//! `tessera up --reuse-instances` names the component.
//!
//! Spin runs every message in a fresh instance, and so does Tessera by default. For a
//! component written in an interpreted language that is most of what a message costs:
//! wiring up CPython or SpiderMonkey and faulting in every page the first call touches
//! (measured here: about 3.4 ms of CPU per message for the Python activity service, its
//! handler's own work a fraction of it). A reused instance pays that once.
//!
//! The trade is isolation between messages of the same component: what a handler leaves
//! in its globals, the next message of that component sees (another component never
//! does; each has its own instances). Name only components that keep nothing between
//! messages, which is how any Spin component must be written anyway, since Spin gives
//! no such reuse.
//!
//! The rules, all here:
//! - up to [`PARKED_PER_COMPONENT`] instances per component wait between messages; a
//!   message takes one that runs the component's current version, and when none is
//!   idle it instantiates fresh, so concurrency and `tessera watch` reloads work as
//!   without reuse;
//! - only an instance whose call returned success is parked again: after a trap, a
//!   timeout or an error the next message starts fresh;
//! - nor is one that still holds a connection it opened (a database, Redis, MQTT):
//!   a guest that leaves closing to its garbage collector would otherwise keep a file
//!   or socket open per message (said once in the log, per component);
//! - an instance is dropped after [`MAX_USES`] messages, which bounds what a handler
//!   leaks (resources it never dropped, heap its allocator never returns).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::Store;

use crate::bindings::redis_handler::RedisHandler;
use crate::runtime::LoadedComponent;
use crate::state::HostState;

/// Messages one instance handles before it is replaced by a fresh one.
pub const MAX_USES: u32 = 1000;

/// Idle instances kept per component. One event often reaches a component on two
/// channels at once (an order's `order:created` and its ticket's `ticket:updated`): with
/// one parked instance, 41 of 600 such messages of the Python service instantiated fresh
/// in 200 back-to-back orders, with two, 1 (propagation p99 7.2 → 5.2 ms). Each costs the
/// memory its instance touched (about 12 MB for the Python or TypeScript one).
pub const PARKED_PER_COMPONENT: usize = 2;

/// The most instances parked at once when `components` components reuse theirs: the
/// pooling allocator needs a slot for each, beside those that run.
pub fn most_parked(components: usize) -> u32 {
    u32::try_from(components.saturating_mul(PARKED_PER_COMPONENT)).unwrap_or(u32::MAX)
}

/// An instantiated message handler and what it has done so far.
pub struct HandlerInstance {
    /// The version it was instantiated from; it is parked only while that is current.
    pub version: Arc<LoadedComponent>,
    pub store: Store<HostState>,
    pub handler: RedisHandler,
    /// Messages it has handled.
    pub uses: u32,
}

/// Where one component's idle instances wait for the next message.
#[derive(Default)]
pub struct Parking {
    idle: Mutex<Vec<HandlerInstance>>,
    /// Whether the log has said that this component's instances keep connections open.
    warned: AtomicBool,
}

impl Parking {
    /// An idle instance of `current`, if there is one; one of an older version is
    /// dropped here (and the next message drops the next one).
    pub fn take(&self, current: &Arc<LoadedComponent>) -> Option<HandlerInstance> {
        let parked = self.lock().pop()?;
        Arc::ptr_eq(&parked.version, current).then_some(parked)
    }

    /// Parks `instance`, which has just handled a message successfully, unless it has
    /// been used up, holds connections, or [`PARKED_PER_COMPONENT`] already wait.
    pub fn park(&self, mut instance: HandlerInstance) {
        if instance.uses >= MAX_USES {
            return;
        }
        let open = instance.store.data_mut().open_connections();
        if open > 0 {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    component = %instance.version.context.spec.id,
                    "not reusing its instance: the message handler returned with {open} \
                     connection(s) still open; drop them before returning to have it reused"
                );
            }
            return;
        }
        // Its guest runs again only once the next message arms it.
        instance.store.data_mut().disarm();
        let mut idle = self.lock();
        if idle.len() < PARKED_PER_COMPONENT {
            idle.push(instance);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HandlerInstance>> {
        // Nothing can panic while the lock is held; a poisoned lock still holds a
        // consistent `Vec`.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}
