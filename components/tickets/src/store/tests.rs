use common::events::Event;
use common::outbox::testing::pending;
use common::sqlite::testing::MemoryDb;

use super::*;
use crate::domain::EditRefusal;

const NOW: u64 = 1_795_514_580;

fn store() -> Tickets<MemoryDb> {
    let store = Tickets::new(MemoryDb::new()).unwrap();
    // Opening again (every instance does) keeps the data.
    Tickets::new(&store.db).unwrap();
    store
}

fn ticket(id: &str) -> Ticket {
    Ticket::new(
        id.into(),
        Title::parse(Some("Concert")).unwrap(),
        PriceCents::from_cents(1099).unwrap(),
        "seller",
    )
}

fn listed(store: &Tickets<MemoryDb>, ids: &[&str]) {
    for id in ids {
        store.insert(&ticket(id), NOW).unwrap();
    }
}

fn reserve(store: &Tickets<MemoryDb>, ticket: &str, order: &str, version: u64) -> OrderEffect {
    store
        .apply_order_event(order, version, ticket, NOW, |t| t.reserve(order))
        .unwrap()
}

fn release(store: &Tickets<MemoryDb>, ticket: &str, order: &str, version: u64) -> OrderEffect {
    store
        .apply_order_event(order, version, ticket, NOW, |t| t.release(order))
        .unwrap()
}

fn ids(page: &Page) -> Vec<&str> {
    page.tickets.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn an_inserted_ticket_is_found_and_announced() {
    let store = store();
    listed(&store, &["t1"]);
    assert_eq!(store.find("t1").unwrap(), Some(ticket("t1")));
    assert_eq!(store.find("t2").unwrap(), None);
    assert_eq!(
        pending(store.db()).unwrap(),
        vec![ticket("t1").created_event()]
    );
}

#[test]
fn a_failed_insert_leaves_no_event_and_a_failed_enqueue_no_ticket() {
    let store = store();
    listed(&store, &["t1"]);
    assert!(store.insert(&ticket("t1"), NOW).is_err());
    assert_eq!(pending(store.db()).unwrap().len(), 1);

    store.db().fail_statements_containing("INSERT INTO outbox");
    assert!(store.insert(&ticket("t2"), NOW).is_err());
    store.db().heal();
    assert_eq!(store.find("t2").unwrap(), None);
}

#[test]
fn available_tickets_page_newest_first() {
    let store = store();
    listed(&store, &["t1", "t2", "t3", "t4", "t5"]);
    assert!(matches!(
        reserve(&store, "t4", "o1", 0),
        OrderEffect::Changed(_)
    ));

    let first = store.available(2, None).unwrap();
    assert_eq!(ids(&first), ["t5", "t3"]);
    let second = store.available(2, first.next).unwrap();
    assert_eq!(ids(&second), ["t2", "t1"]);
    assert_eq!(second.next, None, "nothing after t1");

    let all = store.available(4, None).unwrap();
    assert_eq!(ids(&all), ["t5", "t3", "t2", "t1"]);
    assert_eq!(all.next, None);
    assert_eq!(store.available(100, None).unwrap().tickets.len(), 4);
    assert!(store.available(1, None).unwrap().next.is_some());
}

#[test]
fn cursors_are_digits() {
    assert_eq!(
        Cursor::parse("42").map(|c| c.to_string()).as_deref(),
        Some("42")
    );
    for bad in ["", "-1", "+1", "1.5", "abc", "99999999999999999999", " 1"] {
        assert_eq!(Cursor::parse(bad), None, "{bad}");
    }
}

#[test]
fn an_update_bumps_the_version_and_is_announced() {
    let store = store();
    listed(&store, &["t1"]);
    let title = Title::parse(Some("Opera")).unwrap();
    let price = PriceCents::from_cents(5000).unwrap();
    let updated = store
        .update("t1", NOW, |t| {
            t.edit("seller", title, price)
                .map_err(|refusal| anyhow!("{refusal:?}"))
        })
        .unwrap()
        .unwrap();
    assert_eq!(updated.version, 1);
    assert_eq!(store.find("t1").unwrap(), Some(updated.clone()));
    assert_eq!(
        pending(store.db()).unwrap(),
        vec![ticket("t1").created_event(), updated.updated_event()]
    );
}

#[test]
fn a_refused_update_changes_nothing() {
    let store = store();
    listed(&store, &["t1"]);
    let title = Title::parse(Some("Opera")).unwrap();
    let price = PriceCents::from_cents(5000).unwrap();
    let refused = store.update("t1", NOW, |t| {
        t.edit("intruder", title, price)
            .map_err(|refusal| anyhow!("{refusal:?}"))
    });
    assert_eq!(
        refused.unwrap_err().to_string(),
        format!("{:?}", EditRefusal::NotOwner)
    );
    assert_eq!(store.find("t1").unwrap(), Some(ticket("t1")));
    assert_eq!(pending(store.db()).unwrap().len(), 1);

    let missing = store.update("nope", NOW, |t| Ok::<_, anyhow::Error>(t.clone()));
    assert_eq!(missing.unwrap(), None);
}

#[test]
fn a_change_must_bump_the_version_by_one() {
    let store = store();
    listed(&store, &["t1"]);
    let err = store
        .update("t1", NOW, |t| Ok::<_, anyhow::Error>(t.clone()))
        .unwrap_err();
    assert!(err.to_string().contains("bump its version by one"), "{err}");
    assert_eq!(pending(store.db()).unwrap().len(), 1);
}

#[test]
fn a_reservation_is_stored_and_announced_once() {
    let store = store();
    listed(&store, &["t1"]);
    let OrderEffect::Changed(reserved) = reserve(&store, "t1", "o1", 0) else {
        panic!("not reserved");
    };
    assert_eq!(reserved.order_id.as_deref(), Some("o1"));
    assert_eq!(reserved.version, 1);
    assert_eq!(store.find("t1").unwrap(), Some(reserved.clone()));

    // A duplicate delivery is recognised by the order's version.
    assert_eq!(reserve(&store, "t1", "o1", 0), OrderEffect::Stale);
    let events = pending(store.db()).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], reserved.updated_event());
}

#[test]
fn a_ticket_held_by_another_order_stays_with_it() {
    let store = store();
    listed(&store, &["t1"]);
    reserve(&store, "t1", "o1", 0);
    assert_eq!(
        reserve(&store, "t1", "o2", 0),
        OrderEffect::Unchanged(Unchanged::HeldByAnother("o1".into()))
    );
    // A late cancel of the other order does not free it either.
    assert_eq!(
        release(&store, "t1", "o2", 1),
        OrderEffect::Unchanged(Unchanged::NotHeld)
    );
    assert_eq!(
        store.find("t1").unwrap().unwrap().order_id.as_deref(),
        Some("o1")
    );
    assert_eq!(pending(store.db()).unwrap().len(), 2);
}

#[test]
fn the_holder_releases_once() {
    let store = store();
    listed(&store, &["t1"]);
    reserve(&store, "t1", "o1", 0);
    let OrderEffect::Changed(released) = release(&store, "t1", "o1", 1) else {
        panic!("not released");
    };
    assert_eq!((released.order_id, released.version), (None, 2));
    assert_eq!(release(&store, "t1", "o1", 1), OrderEffect::Stale);
    assert_eq!(pending(store.db()).unwrap().len(), 3);
}

#[test]
fn a_cancel_overtaking_its_create_leaves_the_ticket_free() {
    let store = store();
    listed(&store, &["t1"]);
    assert_eq!(
        release(&store, "t1", "o1", 1),
        OrderEffect::Unchanged(Unchanged::NotHeld)
    );
    assert_eq!(reserve(&store, "t1", "o1", 0), OrderEffect::Stale);
    assert_eq!(store.find("t1").unwrap(), Some(ticket("t1")));
}

#[test]
fn events_for_unknown_tickets_change_nothing() {
    let store = store();
    assert_eq!(reserve(&store, "t9", "o1", 0), OrderEffect::UnknownTicket);
    assert_eq!(pending(store.db()).unwrap(), Vec::<Event>::new());
}

#[test]
fn a_failed_enqueue_rolls_the_reservation_back() {
    let store = store();
    listed(&store, &["t1"]);
    store.db().fail_statements_containing("INSERT INTO outbox");
    let result = store.apply_order_event("o1", 0, "t1", NOW, |t| t.reserve("o1"));
    assert!(result.is_err());
    store.db().heal();
    assert_eq!(store.find("t1").unwrap(), Some(ticket("t1")));
    // The order's version was rolled back too, so a redelivery would still apply.
    assert!(matches!(
        reserve(&store, "t1", "o1", 0),
        OrderEffect::Changed(_)
    ));
}
