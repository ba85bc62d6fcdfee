use super::*;
use crate::testing::traceparent;
use serde_json::json;

const TICKET_ID: &str = "5b3c9f1e-8d2a-4c6b-9e0f-1a2b3c4d5e6f";
const ORDER_ID: &str = "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5";

/// One event of each type, matching the examples in `wit/README.md`.
fn examples() -> Vec<Event> {
    vec![
        TicketCreated {
            id: TICKET_ID.into(),
            version: 0,
            title: "Concert".into(),
            price_cents: 1099,
            user_id: "7a1d2e3f-4b5c-4d6e-8f90-a1b2c3d4e5f6".into(),
        }
        .into(),
        TicketUpdated {
            id: TICKET_ID.into(),
            version: 1,
            title: "Concert".into(),
            price_cents: 1099,
            user_id: "7a1d2e3f-4b5c-4d6e-8f90-a1b2c3d4e5f6".into(),
            order_id: Some(ORDER_ID.into()),
        }
        .into(),
        OrderCreated {
            id: ORDER_ID.into(),
            version: 0,
            status: OrderStatus::Created,
            user_id: "3f4e5d6c-7b8a-4998-8776-655443322110".into(),
            expires_at: "2026-11-24T10:03:30Z".into(),
            ticket: OrderTicket {
                id: TICKET_ID.into(),
                price_cents: 1099,
            },
        }
        .into(),
        OrderCancelled {
            id: ORDER_ID.into(),
            version: 1,
            ticket: TicketRef {
                id: TICKET_ID.into(),
            },
        }
        .into(),
        OrderCompleted {
            id: ORDER_ID.into(),
            version: 1,
            ticket: TicketRef {
                id: TICKET_ID.into(),
            },
        }
        .into(),
        ExpirationComplete {
            order_id: ORDER_ID.into(),
        }
        .into(),
        PaymentCreated {
            id: "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d".into(),
            order_id: ORDER_ID.into(),
            stripe_id: "pi_3QabcDEF123".into(),
        }
        .into(),
        PaymentRefunded {
            id: "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d".into(),
            order_id: ORDER_ID.into(),
            stripe_id: "pi_3QabcDEF123".into(),
            refund_id: "re_3QabcDEF456".into(),
        }
        .into(),
    ]
}

/// The JSON example under the heading "### `<channel>`" of `wit/README.md`.
fn readme_example(channel: &str) -> Value {
    let readme = include_str!("../../../../wit/README.md");
    let heading = format!("### `{channel}`");
    let section = readme
        .split_once(&heading)
        .unwrap_or_else(|| panic!("wit/README.md has no heading {heading}"))
        .1;
    let block = section
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .unwrap_or_else(|| panic!("no JSON example under {heading}"))
        .0;
    serde_json::from_str(block).unwrap_or_else(|e| panic!("example of {channel}: {e}"))
}

fn envelope(event_type: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0",
        "id": "id-1",
        "type": event_type,
        "source": "/tessera/test",
        "data": data,
    }))
    .unwrap()
}

#[test]
fn every_channel_has_one_example() {
    let channels: Vec<_> = examples().iter().map(Event::channel).collect();
    assert_eq!(channels, channel::ALL);
    assert_eq!(
        channel::ALL,
        [
            "ticket:created",
            "ticket:updated",
            "order:created",
            "order:cancelled",
            "order:completed",
            "expiration:complete",
            "payment:created",
            "payment:refunded",
        ]
    );
}

#[test]
fn every_event_round_trips() {
    for event in examples() {
        let bytes = encode(
            &event,
            "/tessera/test",
            "id-1",
            "2026-11-24T10:00:00Z",
            None,
        );
        assert_eq!(decode(&bytes).unwrap(), event, "{}", event.channel());
    }
}

#[test]
fn every_event_round_trips_with_its_traceparent() {
    let traceparent = traceparent(1);
    for event in examples() {
        let bytes = encode(&event, "/tessera/test", "id-1", "t", Some(&traceparent));
        assert_eq!(decode(&bytes).unwrap(), event, "{}", event.channel());
        let envelope: Envelope = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(envelope.traceparent.as_deref(), Some(traceparent.as_str()));
        assert_eq!(crate::trace::of_message(&bytes), Some(traceparent.clone()));
    }
}

#[test]
fn readme_examples_are_what_encode_writes_and_decode_reads() {
    let mut traced = Vec::new();
    for event in examples() {
        let golden = readme_example(event.channel());
        let decoded = decode(golden.to_string().as_bytes()).unwrap();
        assert_eq!(decoded, event, "{}", event.channel());

        let field = |name: &str| golden[name].as_str().unwrap().to_owned();
        // A documented traceparent must be a valid one, written back as it is.
        let traceparent = golden.get("traceparent").map(|value| {
            let text = value.as_str().unwrap_or_default();
            TraceParent::parse(text).unwrap_or_else(|| panic!("invalid traceparent {value}"))
        });
        if traceparent.is_some() {
            traced.push(event.channel());
        }
        let encoded = encode(
            &event,
            &field("source"),
            &field("id"),
            &field("time"),
            traceparent.as_ref(),
        );
        let encoded: Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(encoded, golden, "{}", event.channel());
    }
    assert_eq!(traced, ["order:created"], "the examples with a traceparent");
}

#[test]
fn envelopes_have_the_documented_attributes_in_order() {
    let event = Event::from(ExpirationComplete {
        order_id: "o1".into(),
    });
    let bytes = encode(
        &event,
        "/tessera/expiration",
        "id-9",
        "2026-11-24T10:03:30Z",
        None,
    );
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"specversion":"1.0","id":"id-9","type":"expiration:complete","source":"/tessera/expiration","time":"2026-11-24T10:03:30Z","datacontenttype":"application/json","data":{"order_id":"o1"}}"#
    );
}

#[test]
fn absent_options_and_optional_attributes_are_accepted() {
    // No time, no datacontenttype, no order_id, an unknown extension and data field.
    let mut bytes = envelope(
        "ticket:updated",
        json!({"id": "t", "version": 2, "title": "T", "price_cents": 5, "user_id": "u", "new": 1}),
    );
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    value["traceparent"] = json!("00-abc");
    bytes = serde_json::to_vec(&value).unwrap();
    let Event::TicketUpdated(ticket) = decode(&bytes).unwrap() else {
        panic!("wrong variant");
    };
    assert_eq!(ticket.order_id, None);
    assert_eq!(ticket.version, 2);
}

#[test]
fn the_traceparent_follows_the_documented_attributes() {
    let event = Event::from(ExpirationComplete {
        order_id: "o1".into(),
    });
    let traceparent = traceparent(7);
    let bytes = encode(&event, "/s", "i", "t", Some(&traceparent));
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        format!(
            r#"{{"specversion":"1.0","id":"i","type":"expiration:complete","source":"/s","time":"t","datacontenttype":"application/json","traceparent":"{traceparent}","data":{{"order_id":"o1"}}}}"#
        )
    );
}

#[test]
fn a_missing_or_invalid_traceparent_never_refuses_an_event() {
    let base: Value =
        serde_json::from_slice(&envelope("expiration:complete", json!({"order_id": "o"}))).unwrap();
    let expected = Event::from(ExpirationComplete {
        order_id: "o".into(),
    });
    for traceparent in [
        None,
        Some(json!("00-abc")),
        Some(json!(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"
        )),
        Some(json!(null)),
        Some(json!(55)),
        Some(json!({"trace": "x"})),
        Some(json!([
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ])),
    ] {
        let mut value = base.clone();
        if let Some(traceparent) = &traceparent {
            value["traceparent"] = traceparent.clone();
        }
        let bytes = serde_json::to_vec(&value).unwrap();
        assert_eq!(decode(&bytes).unwrap(), expected, "{traceparent:?}");
        let envelope: Envelope = serde_json::from_slice(&bytes).unwrap();
        let kept = traceparent.as_ref().and_then(Value::as_str);
        assert_eq!(
            envelope.traceparent.as_deref(),
            kept,
            "as received, if a string"
        );
    }
}

#[test]
fn null_order_id_is_encoded_as_null() {
    let event = Event::from(TicketUpdated {
        id: "t".into(),
        version: 3,
        title: "T".into(),
        price_cents: 5,
        user_id: "u".into(),
        order_id: None,
    });
    let value: Value = serde_json::from_slice(&encode(&event, "s", "i", "t", None)).unwrap();
    assert_eq!(value["data"]["order_id"], Value::Null);
}

#[test]
fn unknown_types_are_refused() {
    let err = decode(&envelope("ticket:deleted", json!({"id": "t"}))).unwrap_err();
    assert!(matches!(&err, DecodeError::UnknownType(t) if t == "ticket:deleted"));
    assert_eq!(err.to_string(), "unknown event type `ticket:deleted`");
}

#[test]
fn other_spec_versions_and_content_types_are_refused() {
    let mut value: Value =
        serde_json::from_slice(&envelope("expiration:complete", json!({"order_id": "o"}))).unwrap();
    value["specversion"] = json!("0.3");
    let err = decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(matches!(err, DecodeError::SpecVersion(v) if v == "0.3"));

    value["specversion"] = json!("1.0");
    value["datacontenttype"] = json!("application/xml");
    let err = decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(matches!(err, DecodeError::ContentType(_)));

    value["datacontenttype"] = json!("Application/JSON; charset=utf-8");
    assert!(decode(&serde_json::to_vec(&value).unwrap()).is_ok());
}

#[test]
fn bad_data_is_refused_with_the_reason() {
    let cases = [
        json!({"id": "t", "version": "1", "title": "T", "price_cents": 5, "user_id": "u"}),
        json!({"id": "t", "version": 1, "title": "T", "price_cents": 5.5, "user_id": "u"}),
        json!({"id": "t", "version": -1, "title": "T", "price_cents": 5, "user_id": "u"}),
        json!({"id": "t", "version": 1, "title": "T", "price_cents": 5}),
        json!(null),
        json!([1, 2]),
    ];
    for data in cases {
        let err = decode(&envelope("ticket:created", data.clone())).unwrap_err();
        let DecodeError::Data { event_type, .. } = &err else {
            panic!("{data}: {err}");
        };
        assert_eq!(event_type, "ticket:created");
        assert!(
            err.to_string()
                .starts_with("invalid data for `ticket:created`: ")
        );
    }

    let order = json!({
        "id": "o", "version": 0, "status": "paid", "user_id": "u",
        "expires_at": "2026-11-24T10:03:30Z", "ticket": {"id": "t", "price_cents": 1},
    });
    let err = decode(&envelope("order:created", order)).unwrap_err();
    assert!(
        err.to_string().contains("unknown order status `paid`"),
        "{err}"
    );
}

#[test]
fn malformed_envelopes_are_refused() {
    for bytes in [
        &b""[..],
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        br#"{"specversion":"1.0","id":"i","type":"ticket:created","source":"s"}"#,
        br#"{"specversion":1.0,"id":"i","type":"t","source":"s","data":{}}"#,
        br#"{"specversion":"1.0","id":"i","type":"t","source":"s","data":{}} x"#,
    ] {
        let err = decode(bytes).unwrap_err();
        assert!(matches!(err, DecodeError::Envelope(_)), "{bytes:?}: {err}");
    }
}

#[test]
fn order_status_uses_the_wit_case_names() {
    for (status, name) in [
        (OrderStatus::Created, "created"),
        (OrderStatus::Cancelled, "cancelled"),
        (OrderStatus::Complete, "complete"),
    ] {
        assert_eq!(serde_json::to_value(status).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<OrderStatus>(json!(name)).unwrap(),
            status
        );
        assert_eq!(status.to_string(), name);
        assert_eq!(name.parse::<OrderStatus>(), Ok(status));
    }
    assert!("Created".parse::<OrderStatus>().is_err());
    assert!(serde_json::from_value::<OrderStatus>(json!(1)).is_err());
}

#[test]
fn newer_versions_only() {
    assert!(is_newer(0, None));
    assert!(is_newer(1, Some(0)));
    assert!(is_newer(5, Some(2)));
    assert!(!is_newer(2, Some(2)));
    assert!(!is_newer(1, Some(2)));
}
