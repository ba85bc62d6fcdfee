//! One instance per HTTP component, instantiated ahead of its next request.
//!
//! Instantiating is a fixed part of every request's wait: for the Rust services about a
//! tenth of a short request, for the Python and TypeScript ones milliseconds. After a
//! component has answered a request (once the response has gone out, see
//! `http::release_after_response`) the next instance is instantiated in the
//! background, and the next request takes it instead of instantiating on its own path.
//!
//! Isolation stays Spin's: one fresh instance per request. A ready instance has run
//! nothing but its own start-up (what instantiation runs anyway) and serves exactly one
//! request; the request's data, deadline and trace are given to it when it is taken.
//!
//! The rules (the one about load is the caller's, `http::NextInstance`):
//! - an instance is made ahead only while fewer instances run than the host has cores:
//!   under load it would save no time and only spread the work over more pool slots;
//! - at most one instance per component is ready or being made ready, so the pooling
//!   allocator needs one slot per HTTP component beside those that run
//!   ([`Limits::ready_instances`](crate::runtime::Limits::ready_instances));
//! - a request takes the ready instance only when it runs the component's current
//!   version; after a `tessera watch` reload the stale one is dropped and the request
//!   instantiates as before;
//! - when none is ready (the first request, a burst, a failed preparation) the request
//!   instantiates on its own path, exactly as without this.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::app::App;
use crate::runtime::{ComponentHandle, LoadedComponent, Runtime};
use crate::state::HostState;

/// The most instances ready or being made ready at once for `app`: one per component an
/// HTTP route names. The pooling allocator needs a slot for each, beside those that run.
pub fn most_ready(app: &App) -> u32 {
    let components: std::collections::HashSet<_> =
        app.http_triggers.iter().map(|t| &t.component).collect();
    u32::try_from(components.len()).unwrap_or(u32::MAX)
}

/// An instance of one version of a component, instantiated, not yet used.
pub struct Ready {
    version: Arc<LoadedComponent>,
    pub store: Store<HostState>,
    pub proxy: Proxy,
}

enum Slot {
    Empty,
    /// Being instantiated; nobody starts another meanwhile. A request that finds it so
    /// may claim it and wait for it: it would take longer to instantiate its own,
    /// competing for the same cores.
    Preparing {
        claimed: Option<oneshot::Sender<Ready>>,
    },
    Ready(Ready),
}

/// The ready instance of one HTTP component.
pub struct ReadyInstance {
    slot: Mutex<Slot>,
}

impl Default for ReadyInstance {
    fn default() -> Self {
        ReadyInstance {
            slot: Mutex::new(Slot::Empty),
        }
    }
}

impl ReadyInstance {
    /// The ready instance of `current`, if there is one; or the one being made ready,
    /// once it is, if no other request has claimed it.
    pub async fn take(&self, current: &Arc<LoadedComponent>) -> Option<Ready> {
        let claim = {
            let mut slot = self.slot.lock().ok()?;
            match std::mem::replace(&mut *slot, Slot::Empty) {
                Slot::Ready(ready) => Ok(ready),
                Slot::Preparing { claimed: None } => {
                    let (sender, receiver) = oneshot::channel();
                    *slot = Slot::Preparing {
                        claimed: Some(sender),
                    };
                    Err(receiver)
                }
                other => {
                    *slot = other;
                    return None;
                }
            }
        };
        let ready = match claim {
            Ok(ready) => ready,
            // Closed when the preparation failed: the request instantiates its own.
            Err(receiver) => receiver.await.ok()?,
        };
        // A stale one (a reload came in between) drops here, outside the lock.
        Arc::ptr_eq(&ready.version, current).then_some(ready)
    }

    /// Instantiates the component's current version for the next request, unless one is
    /// already ready or being made ready. A failure (say, a start-up that traps) only
    /// means the next request instantiates on its own, and is reported.
    pub async fn refill(&self, runtime: &Runtime, handle: &ComponentHandle) {
        {
            let Ok(mut slot) = self.slot.lock() else {
                return;
            };
            if !matches!(*slot, Slot::Empty) {
                return;
            }
            *slot = Slot::Preparing { claimed: None };
        }
        let version = handle.current();
        let prepared = instantiate(runtime, &version).await;
        let Ok(mut slot) = self.slot.lock() else {
            return;
        };
        let claimed = match std::mem::replace(&mut *slot, Slot::Empty) {
            Slot::Preparing { claimed } => claimed,
            _ => None,
        };
        let ready = match prepared {
            Ok((store, proxy)) => Ready {
                version,
                store,
                proxy,
            },
            Err(e) => {
                tracing::debug!("could not prepare the next instance: {e:#}");
                return;
            }
        };
        let unclaimed = match claimed {
            Some(request) => request.send(ready).err(),
            None => Some(ready),
        };
        // Nobody waits for it (or the request that did has gone): keep it.
        if let Some(ready) = unclaimed {
            *slot = Slot::Ready(ready);
        }
    }
}

async fn instantiate(
    runtime: &Runtime,
    version: &Arc<LoadedComponent>,
) -> anyhow::Result<(Store<HostState>, Proxy)> {
    let Some(pre) = &version.http else {
        anyhow::bail!("the component has no HTTP entry point");
    };
    let mut store = runtime.new_store(version)?;
    let proxy = tokio::time::timeout(runtime.limits.timeout, pre.instantiate_async(&mut store))
        .await
        .map_err(|_| anyhow::anyhow!("instantiation timed out"))??;
    // Its guest runs again only once the request that takes it arms it.
    store.data_mut().disarm();
    Ok((store, proxy))
}
