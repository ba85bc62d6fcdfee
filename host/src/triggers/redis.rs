//! The Redis trigger: SUBSCRIBE to every `[[trigger.redis]]` channel and run each message
//! in a fresh instance of every component subscribed to that channel (or, for components
//! named by `--reuse-instances`, in a reused one: see `reused_instance`).
//!
//! One subscriber connection per Redis address. When Redis goes away the subscriber logs
//! it and reconnects with backoff; messages published meanwhile are lost to pub/sub
//! (at-most-once), which is why services publish through an outbox and sweep.
//!
//! For the same reason `tessera up` announces that it serves only once every address
//! has subscribed (or a short wait ran out): an app that answered HTTP before its
//! subscribers listened would lose the events its first requests publish.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::manifest::ComponentId;
use crate::runtime::{ComponentHandle, LoadedComponent, Runtime};
use crate::traces::Trace;
use crate::triggers::reused_instance::{HandlerInstance, Parking};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// At most this long between attempts while Redis is away, so every subscriber is back
/// within about a second of Redis: messages published before it resubscribes are lost
/// to it, and publishers (the services' outbox) hold events for a few seconds after a
/// Redis restart on that promise. A refused connection is cheap to retry.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A subscribed component: its id and its current version (which holds the pre-linked
/// Redis entry point). Swapping the version leaves the subscriptions alone.
struct RedisComponent {
    id: ComponentId,
    handle: ComponentHandle,
    /// Where its idle instances wait, when its instances are reused.
    reuse: Option<Parking>,
}

/// Everything subscribed on one Redis server: channel → components.
struct Subscription {
    address: String,
    channels: BTreeMap<String, Vec<Arc<RedisComponent>>>,
    /// Set the first time every channel is subscribed.
    ever_subscribed: AtomicBool,
}

pub struct RedisTrigger {
    runtime: Arc<Runtime>,
    subscriptions: Vec<Subscription>,
    instances: Arc<Semaphore>,
    /// How many subscriptions have subscribed at least once.
    subscribed: watch::Sender<usize>,
    /// Handlers still running, so shutdown can let them finish (their outbox relays
    /// and publishes need Redis, which dev services stop right after).
    in_flight: TaskTracker,
}

impl RedisTrigger {
    /// Resolves address → channel → components before connecting anywhere. The
    /// components in `reuse` handle their messages in reused instances.
    pub fn new(
        app: &App,
        runtime: Arc<Runtime>,
        instances: Arc<Semaphore>,
        reuse: &BTreeSet<ComponentId>,
    ) -> anyhow::Result<Self> {
        let mut by_address: BTreeMap<String, BTreeMap<String, Vec<Arc<RedisComponent>>>> =
            BTreeMap::new();
        let mut entry_points: std::collections::HashMap<ComponentId, Arc<RedisComponent>> =
            Default::default();
        for trigger in &app.redis_triggers {
            let target = match entry_points.get(&trigger.component) {
                Some(t) => t.clone(),
                None => {
                    let t = Arc::new(RedisComponent {
                        id: trigger.component.clone(),
                        handle: runtime.component(&trigger.component)?.clone(),
                        reuse: reuse.contains(&trigger.component).then(Parking::default),
                    });
                    entry_points.insert(trigger.component.clone(), t.clone());
                    t
                }
            };
            ::redis::Client::open(trigger.address.as_str()).map_err(|e| {
                anyhow::anyhow!(
                    "[[trigger.redis]] for component `{}`: invalid Redis address {:?}: {e}",
                    trigger.component,
                    trigger.address
                )
            })?;
            by_address
                .entry(trigger.address.clone())
                .or_default()
                .entry(trigger.channel.clone())
                .or_default()
                .push(target);
        }
        let subscriptions = by_address
            .into_iter()
            .map(|(address, channels)| Subscription {
                address,
                channels,
                ever_subscribed: AtomicBool::new(false),
            })
            .collect();
        Ok(RedisTrigger {
            runtime,
            subscriptions,
            instances,
            subscribed: watch::Sender::new(0),
            in_flight: TaskTracker::new(),
        })
    }

    /// Addresses this trigger will subscribe on (for dev services).
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.subscriptions.iter().map(|s| s.address.as_str())
    }

    /// Waits until every address has subscribed once, for at most `limit`; whether it
    /// did. (Subscribers keep retrying in the background either way.)
    pub async fn wait_until_subscribed(&self, limit: Duration) -> bool {
        let all = self.subscriptions.len();
        let mut subscribed = self.subscribed.subscribe();
        tokio::time::timeout(limit, subscribed.wait_for(|count| *count >= all))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// Waits, at most `limit`, for the handlers already running; the caller has stopped
    /// the subscribers (aborted `run`) so no new ones start. Whether all finished.
    pub async fn drain(&self, limit: Duration) -> bool {
        self.in_flight.close();
        tokio::time::timeout(limit, self.in_flight.wait())
            .await
            .is_ok()
    }

    /// Runs every subscriber until the process stops (or the task running it is aborted).
    pub async fn run(self: Arc<Self>) {
        let subscribers = (0..self.subscriptions.len()).map(|i| self.subscribe_forever(i));
        futures::future::join_all(subscribers).await;
    }

    async fn subscribe_forever(&self, index: usize) {
        let sub = &self.subscriptions[index];
        let mut backoff = MIN_BACKOFF;
        let mut was_connected = false;
        loop {
            match self.listen(sub, &mut was_connected).await {
                Ok(()) => {
                    tracing::warn!(address = %sub.address, "lost the connection to Redis; reconnecting")
                }
                Err(e) if was_connected => {
                    tracing::warn!(address = %sub.address, "lost the connection to Redis ({e}); reconnecting")
                }
                Err(e) => {
                    tracing::warn!(address = %sub.address, "cannot subscribe to Redis ({e}); retrying in {backoff:?}")
                }
            }
            if was_connected {
                backoff = MIN_BACKOFF;
                was_connected = false;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Subscribes and dispatches messages until the connection ends.
    async fn listen(&self, sub: &Subscription, was_connected: &mut bool) -> anyhow::Result<()> {
        let client = ::redis::Client::open(sub.address.as_str())?;
        let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting"))??;
        for channel in sub.channels.keys() {
            pubsub.subscribe(channel).await?;
        }
        *was_connected = true;
        for channel in sub.channels.keys() {
            eprintln!("Subscribed to {}/{channel}", sub.address);
        }
        if !sub.ever_subscribed.swap(true, Ordering::SeqCst) {
            self.subscribed.send_modify(|count| *count += 1);
        } else if let Some(metrics) = crate::metrics::get() {
            metrics.redis_reconnect(&sub.address);
        }
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let channel = msg.get_channel_name().to_owned();
            let payload = msg.get_payload_bytes().to_vec();
            let Some(targets) = sub.channels.get(&channel) else {
                continue;
            };
            for target in targets {
                self.dispatch(target.clone(), channel.clone(), payload.clone())
                    .await;
            }
        }
        Ok(())
    }

    /// Runs one message in a fresh instance; waits only for a free instance slot, so
    /// messages are handled concurrently up to the instance limit.
    async fn dispatch(&self, target: Arc<RedisComponent>, channel: String, payload: Vec<u8>) {
        let received = std::time::Instant::now();
        let Ok(permit) = self.instances.clone().acquire_owned().await else {
            return;
        };
        let runtime = self.runtime.clone();
        self.in_flight.spawn(async move {
            let _permit = permit;
            let started = std::time::Instant::now();
            let mut payload = payload;
            let trace = Trace::redis_message(target.id.as_str(), &channel, &mut payload);
            let result = handle_message(&runtime, &target, &payload, trace.clone()).await;
            if let Some(trace) = trace {
                trace.end(result.as_ref().err().map(|e| format!("{e:#}")).as_deref());
            }
            let micros = started.elapsed().as_micros() as u64;
            if let Some(metrics) = crate::metrics::get() {
                metrics.message(&channel, target.id.as_str(), result.is_ok(), received.elapsed());
            }
            match result {
                Ok(()) => {
                    tracing::info!(target: "tessera::message", %channel, component = %target.id, outcome = "ok", micros)
                }
                Err(e) => {
                    tracing::error!(target: "tessera::message", %channel, component = %target.id, outcome = "failed", micros, "message handling failed: {e:#}")
                }
            }
        });
    }
}

async fn handle_message(
    runtime: &Runtime,
    target: &RedisComponent,
    payload: &Vec<u8>,
    trace: Option<Trace>,
) -> anyhow::Result<()> {
    // Taken once: this message runs on this version to the end, even if `tessera watch`
    // installs a new one meanwhile.
    let loaded = target.handle.current();
    let parked = target.reuse.as_ref().and_then(|p| p.take(&loaded));
    let timeout = runtime.limits.timeout;
    let run = async {
        let mut instance = match parked {
            Some(mut instance) => {
                runtime.arm_deadline(&mut instance.store);
                instance
            }
            None => instantiate(runtime, loaded).await?,
        };
        instance.store.data_mut().set_trace(trace);
        let outcome = instance
            .handler
            .fermyon_spin_inbound_redis()
            .call_handle_message(&mut instance.store, payload)
            .await;
        instance.uses += 1;
        anyhow::Ok((instance, outcome))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok((instance, Ok(Ok(()))))) => {
            if let Some(parking) = &target.reuse {
                parking.park(instance);
            }
            Ok(())
        }
        Ok(Ok((_, Ok(Err(e))))) => Err(anyhow::anyhow!("component returned {e:?}")),
        Ok(Ok((_, Err(trap)))) => Err(trap.into()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(anyhow::anyhow!("timed out after {timeout:?}")),
    }
}

/// A fresh instance of `loaded`'s message handler.
async fn instantiate(
    runtime: &Runtime,
    loaded: Arc<LoadedComponent>,
) -> anyhow::Result<HandlerInstance> {
    let Some(pre) = &loaded.redis else {
        // The runtime links the entry point of every subscribed component.
        anyhow::bail!("the component has no Redis entry point");
    };
    let mut store = runtime.new_store(&loaded)?;
    let handler = pre.instantiate_async(&mut store).await?;
    Ok(HandlerInstance {
        version: loaded,
        store,
        handler,
        uses: 0,
    })
}
