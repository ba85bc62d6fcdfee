//! Outbound MQTT: `fermyon:spin/mqtt@2.0.0` over rumqttc (MQTT 3.1.1, plain TCP).
//!
//! As in Spin, `open` is allowed only when the address (`mqtt://host:port?client_id=…`) is
//! granted by the component's `allowed_outbound_hosts`; otherwise the guest gets
//! `connection-failed("address mqtt://… is not permitted")`. `open` connects at once, so a
//! broker that is down or refuses the credentials is the guest's error right there, and
//! `publish` returns when the broker has acknowledged the message at the requested QoS.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use wasmtime::component::{Linker, Resource};

use crate::bindings::mqtt::{self, Error, Qos};
use crate::state::HostState;

/// How long `open` waits for the broker's CONNACK and `publish` for its acknowledgement.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest message a guest may publish (rumqttc's default is 10 KiB).
const MAX_PACKET: usize = 1 << 20;

/// The resource behind a guest's mqtt `connection` handle.
pub struct MqttConnection {
    client: AsyncClient,
    events: EventLoop,
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    mqtt::add_to_linker::<_, super::Data>(linker, |s| s)?;
    Ok(())
}

/// A client id no other connection of this host uses (brokers drop a duplicate's peer).
fn unique_client_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("tessera-{}-{n}", std::process::id())
}

/// Polls the event loop until `done` says the awaited packet went by.
async fn wait_for(
    events: &mut EventLoop,
    mut done: impl FnMut(&Event) -> bool,
) -> Result<(), Error> {
    let wait = async {
        loop {
            match events.poll().await {
                Ok(event) if done(&event) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(Error::ConnectionFailed(e.to_string())),
            }
        }
    };
    tokio::time::timeout(ANSWER_TIMEOUT, wait)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Other(format!(
                "the broker did not answer within {ANSWER_TIMEOUT:?}"
            )))
        })
}

impl mqtt::Host for HostState {}

impl mqtt::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<MqttConnection>, Error>> {
        let Ok(url) = url::Url::parse(&address) else {
            return Ok(Err(Error::InvalidAddress));
        };
        let (Some(host), "mqtt") = (url.host_str(), url.scheme()) else {
            return Ok(Err(Error::InvalidAddress));
        };
        let port = url.port().unwrap_or(1883);
        if !self.component.spec.allowed_hosts.allows("mqtt", host, port) {
            tracing::warn!(component = %self.component.spec.id, %host, port, "mqtt open denied: address not in allowed_outbound_hosts");
            return Ok(Err(Error::ConnectionFailed(format!(
                "address mqtt://{host}:{port} is not permitted"
            ))));
        }
        let client_id = url
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(unique_client_id);
        let mut options = MqttOptions::new(client_id, host, port);
        // rumqttc refuses intervals under a second (0 turns keep-alive off).
        options
            .set_keep_alive(Duration::from_secs(keep_alive_interval_in_secs))
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        if !username.is_empty() {
            options.set_credentials(username, password);
        }
        let (client, mut events) = AsyncClient::new(options, 16);
        if let Err(e) = wait_for(&mut events, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await
        {
            return Ok(Err(e));
        }
        Ok(Ok(self.table.push(MqttConnection { client, events })?))
    }

    async fn publish(
        &mut self,
        conn: Resource<MqttConnection>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let MqttConnection { client, events } = self.table.get_mut(&conn)?;
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        if let Err(e) = client.publish(topic, qos, false, payload).await {
            return Ok(Err(Error::Other(e.to_string())));
        }
        // Done when the broker has the message at the requested QoS.
        let acknowledged = move |e: &Event| {
            matches!(
                (qos, e),
                (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                    | (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_)))
                    | (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_)))
            )
        };
        Ok(wait_for(events, acknowledged).await)
    }

    async fn drop(&mut self, conn: Resource<MqttConnection>) -> wasmtime::Result<()> {
        let MqttConnection { client, mut events } = self.table.delete(conn)?;
        // Send DISCONNECT politely off the wasm thread; failure only means it is gone.
        tokio::spawn(async move {
            if client.disconnect().await.is_ok() {
                let _ = wait_for(&mut events, |e| {
                    matches!(e, Event::Outgoing(Outgoing::Disconnect))
                })
                .await;
            }
        });
        Ok(())
    }
}
