//! Every event published on some Redis channels for a whole run, across Redis
//! restarts: the subscriber reconnects at once when its connection drops (pub/sub keeps
//! nothing, so whatever is published while it is away is lost to it, as to the services).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One message as received.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Instant,
    pub channel: String,
    /// The CloudEvents envelope (wit/README.md); `Null` if the payload was not JSON.
    pub envelope: Value,
}

impl Event {
    /// `data.<field>` of the envelope, as a string.
    pub fn data_str(&self, field: &str) -> Option<&str> {
        self.envelope["data"][field].as_str()
    }
}

/// A subscriber running on its own thread until dropped.
pub struct EventLog {
    events: Arc<Mutex<Vec<Event>>>,
    reconnects: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How long a blocked read waits before looking at the stop flag.
const POLL: Duration = Duration::from_millis(250);

impl EventLog {
    /// Subscribes to `channels` at `address` (`redis://…`); returns once subscribed.
    pub fn start(address: &str, channels: &[&str]) -> EventLog {
        let client = redis::Client::open(address).expect("a Redis address");
        let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        let events = Arc::new(Mutex::new(Vec::new()));
        let reconnects = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (subscribed, ready) = std::sync::mpsc::channel();
        let thread = {
            let (events, reconnects, stop) = (events.clone(), reconnects.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut first = Some(subscribed);
                while !stop.load(Ordering::SeqCst) {
                    match listen(&client, &channels, &events, &stop, &mut first) {
                        // Stopped.
                        Ok(()) => return,
                        Err(_) => {
                            reconnects.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            })
        };
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("subscribed to Redis");
        EventLog {
            events,
            reconnects,
            stop,
            thread: Some(thread),
        }
    }

    /// Every event received on `channel`, in order.
    pub fn on(&self, channel: &str) -> Vec<Event> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.channel == channel)
            .cloned()
            .collect()
    }

    /// How many events on `channel` named each value of `data.<field>`.
    pub fn count_by(&self, channel: &str, field: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for event in self.on(channel) {
            if let Some(id) = event.data_str(field) {
                *counts.entry(id.to_owned()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// How many times the connection was lost (and made again).
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::SeqCst)
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Subscribes and records until stopped (`Ok`) or the connection fails (`Err`).
fn listen(
    client: &redis::Client,
    channels: &[String],
    events: &Mutex<Vec<Event>>,
    stop: &AtomicBool,
    first: &mut Option<std::sync::mpsc::Sender<()>>,
) -> redis::RedisResult<()> {
    let mut connection = client.get_connection_with_timeout(POLL)?;
    let mut pubsub = connection.as_pubsub();
    pubsub.set_read_timeout(Some(POLL))?;
    for channel in channels {
        pubsub.subscribe(channel)?;
    }
    if let Some(ready) = first.take() {
        let _ = ready.send(());
    }
    while !stop.load(Ordering::SeqCst) {
        match pubsub.get_message() {
            Ok(message) => {
                let payload: String = message.get_payload().unwrap_or_default();
                let event = Event {
                    at: Instant::now(),
                    channel: message.get_channel_name().to_owned(),
                    envelope: serde_json::from_str(&payload).unwrap_or(Value::Null),
                };
                events.lock().unwrap().push(event);
            }
            Err(err) if err.is_timeout() => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
