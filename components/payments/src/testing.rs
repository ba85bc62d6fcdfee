//! Test helpers: the real store on an in-memory sqlite, a fake Stripe, sessions,
//! requests, and the events in the outbox.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use common::events::{Event, OrderCreated, OrderStatus, OrderTicket};
use common::outbox::testing::pending;
use common::sqlite::Database;
use common::sqlite::testing::MemoryDb;
/// Status, JSON content type and `errors` array of an error response.
pub use common::testing::assert_json_error as assert_error;
pub use common::testing::{body_json, message};
use common::testing::{json_request, user_cookie};
use serde_json::Value;
use spin_sdk::http::{Method, Request};

use crate::domain::{Change, OrderId, Terms};
use crate::routes::Deps;
use crate::store::Payments;
use crate::stripe::{
    Customer, IntentStatus, NewCustomer, NewPaymentIntent, NewRefund, NewSetupIntent, PaymentError,
    PaymentIntent, Refund, SetupIntent, Stripe, StripeError,
};

pub const SECRET: &str = "payments-test-secret";
pub const NOW: u64 = 1_800_000_000;
/// `expires_at` of [`put_order`]'s orders: three minutes after [`NOW`].
pub const EXPIRES_AT: u64 = NOW + 180;
pub const ORDER: &str = "9e8d7c6b-5a4f-4e3d-a2c1-b0a9f8e7d6c5";
pub const OTHER_ORDER: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";

/// The production SQL on a private in-memory database.
pub type TestStore = Payments<MemoryDb>;

pub fn store() -> TestStore {
    Payments::new(MemoryDb::new()).unwrap()
}

/// The handlers' dependencies in tests; pausing does not wait (nobody else runs).
pub type TestDeps = Deps<MemoryDb, FakeStripe>;

pub fn deps() -> TestDeps {
    Deps {
        payments: store(),
        stripe: FakeStripe::default(),
        jwt_secret: SECRET.to_owned(),
        now: NOW,
        pause: |_| {},
    }
}

pub fn order_id(raw: &str) -> OrderId {
    OrderId::parse(raw).unwrap()
}

/// An order replica, as `order:created` makes it.
pub fn put_order(store: &Payments<impl Database>, id: &str, buyer: &str, price_cents: u64) {
    let change = Change::Created {
        version: 0,
        status: OrderStatus::Created,
        terms: Terms {
            user_id: buyer.to_owned(),
            price_cents,
            expires_at: EXPIRES_AT,
        },
    };
    assert!(store.replicate(&order_id(id), change, NOW).unwrap());
}

/// Moves the replica of `id` to `status` at `version`.
pub fn set_status(store: &Payments<impl Database>, id: &str, version: u64, status: OrderStatus) {
    let change = Change::Status { version, status };
    assert!(store.replicate(&order_id(id), change, NOW).unwrap());
}

pub fn order_created(id: &str, buyer: &str, price_cents: u64) -> OrderCreated {
    OrderCreated {
        id: id.to_owned(),
        version: 0,
        status: OrderStatus::Created,
        user_id: buyer.to_owned(),
        expires_at: common::time::rfc3339(EXPIRES_AT),
        ticket: OrderTicket {
            id: "5b3c9f1e-8d2a-4c6b-9e0f-1a2b3c4d5e6f".to_owned(),
            price_cents,
        },
    }
}

/// The `Cookie` header of a session for `user_id`.
pub fn cookie(user_id: &str) -> String {
    user_cookie(SECRET, user_id, NOW - 10)
}

/// A request as `user` (or signed out), with an optional JSON body.
pub fn request(method: Method, path: &str, user: Option<&str>, body: Option<Value>) -> Request {
    json_request(method, path, user.map(cookie), body)
}

/// The events waiting in the outbox, oldest first.
pub fn outbox(store: &TestStore) -> Vec<Event> {
    pending(store.db()).unwrap()
}

/// Payment methods [`FakeStripe`] treats specially (as Stripe's test ids do); any
/// other `pm_…` succeeds.
pub const DECLINED_CARD: &str = "pm_card_chargeCustomerFail";
pub const THREE_D_SECURE_CARD: &str = "pm_card_threeDSecure2Required";
pub const UNKNOWN_CARD: &str = "pm_unknown";

/// A Stripe call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Create(NewPaymentIntent),
    Retrieve(String),
    Setup(NewSetupIntent),
    Customer(NewCustomer),
    Refund(NewRefund),
}

/// A Stripe double: keeps intents, replays answers per idempotency key as Stripe does,
/// and can be taken down.
#[derive(Default)]
pub struct FakeStripe {
    calls: RefCell<Vec<Call>>,
    intents: RefCell<HashMap<String, PaymentIntent>>,
    /// First answer per idempotency key: Ok(intent id) or a decline message.
    answers: RefCell<HashMap<String, Result<String, String>>>,
    down: Cell<bool>,
    /// SetupIntents created so far.
    setups: Cell<usize>,
    /// Customers created so far.
    customers: Cell<usize>,
    /// Runs while a Customer is being created (another request doing the same).
    customer_race: RefCell<Option<Box<dyn Fn()>>>,
    /// Runs while a card is being charged (another instance changing the order).
    charge_race: RefCell<Option<Box<dyn Fn()>>>,
    /// Refunds made: (PaymentIntent, refund id), and the refund per idempotency key.
    refunds: RefCell<Vec<(String, String)>>,
    refund_answers: RefCell<HashMap<String, String>>,
}

impl FakeStripe {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    pub fn creates(&self) -> Vec<NewPaymentIntent> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Create(intent) => Some(intent),
                _ => None,
            })
            .collect()
    }

    /// The Customers created, in order.
    pub fn new_customers(&self) -> Vec<NewCustomer> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Customer(customer) => Some(customer),
                _ => None,
            })
            .collect()
    }

    /// The PaymentIntents refunded (each refund once), in order.
    pub fn refunds(&self) -> Vec<String> {
        let refunds = self.refunds.borrow();
        refunds.iter().map(|(intent, _)| intent.clone()).collect()
    }

    /// The idempotency keys of every refund request, in order.
    pub fn refund_keys(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Refund(refund) => Some(refund.idempotency_key),
                _ => None,
            })
            .collect()
    }

    /// How many intents succeeded, i.e. how many times a card was charged.
    pub fn charges(&self) -> usize {
        self.intents
            .borrow()
            .values()
            .filter(|intent| intent.status == IntentStatus::Succeeded)
            .count()
    }

    pub fn intent(&self, id: &str) -> PaymentIntent {
        self.intents.borrow()[id].clone()
    }

    /// The browser confirmed intent `id` with a good card.
    pub fn succeed(&self, id: &str) {
        self.intents.borrow_mut().get_mut(id).unwrap().status = IntentStatus::Succeeded;
    }

    /// The browser's card for intent `id` was declined.
    pub fn decline(&self, id: &str) {
        let mut intents = self.intents.borrow_mut();
        let intent = intents.get_mut(id).unwrap();
        intent.status = IntentStatus::RequiresPaymentMethod;
        intent.last_payment_error = Some(PaymentError {
            message: Some("Your card was declined.".into()),
        });
    }

    /// Plays another request at every Customer creation, after the check for a
    /// remembered Customer and before the answer.
    pub fn while_creating_customers(&self, other: impl Fn() + 'static) {
        *self.customer_race.borrow_mut() = Some(Box::new(other));
    }

    /// Plays another instance while a card is charged, before the answer.
    pub fn while_charging(&self, other: impl Fn() + 'static) {
        *self.charge_race.borrow_mut() = Some(Box::new(other));
    }

    pub fn go_down(&self) {
        self.down.set(true);
    }

    pub fn come_back(&self) {
        self.down.set(false);
    }

    fn new_intent(&self, request: &NewPaymentIntent, status: IntentStatus) -> PaymentIntent {
        let id = format!("pi_fake{}", self.intents.borrow().len() + 1);
        let intent = PaymentIntent {
            client_secret: Some(format!("{id}_secret_x")),
            id: id.clone(),
            status,
            amount: request.amount_cents,
            currency: "usd".into(),
            metadata: HashMap::from([("orderId".to_owned(), request.order_id.clone())]),
            last_payment_error: None,
        };
        self.intents.borrow_mut().insert(id, intent.clone());
        intent
    }
}

impl Stripe for FakeStripe {
    async fn create_payment_intent(
        &self,
        request: &NewPaymentIntent,
    ) -> Result<PaymentIntent, StripeError> {
        self.calls.borrow_mut().push(Call::Create(request.clone()));
        if self.down.get() {
            return Err(StripeError::Unavailable("connection refused".into()));
        }
        if let Some(answer) = self.answers.borrow().get(&request.idempotency_key) {
            return match answer {
                Ok(id) => Ok(self.intent(id)),
                Err(message) => Err(StripeError::Declined(message.clone())),
            };
        }
        let status = match request.payment_method.as_deref() {
            None => IntentStatus::RequiresPaymentMethod,
            Some(UNKNOWN_CARD) => {
                // Validation failures are not saved under the key, as with Stripe.
                return Err(StripeError::Rejected {
                    status: 400,
                    message: format!("No such PaymentMethod: '{UNKNOWN_CARD}'"),
                    param: Some("payment_method".into()),
                });
            }
            Some(DECLINED_CARD) => IntentStatus::RequiresPaymentMethod,
            Some(THREE_D_SECURE_CARD) => IntentStatus::RequiresAction,
            Some(_) => IntentStatus::Succeeded,
        };
        if let Some(other) = self.charge_race.borrow().as_ref() {
            other();
        }
        let intent = self.new_intent(request, status);
        let declined = request.payment_method.as_deref() == Some(DECLINED_CARD);
        let answer = if declined {
            self.decline(&intent.id);
            Err("Your card was declined.".to_owned())
        } else {
            Ok(intent.id.clone())
        };
        self.answers
            .borrow_mut()
            .insert(request.idempotency_key.clone(), answer.clone());
        answer.map_err(StripeError::Declined)?;
        Ok(intent)
    }

    async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.calls.borrow_mut().push(Call::Retrieve(id.to_owned()));
        if self.down.get() {
            return Err(StripeError::Unavailable("connection refused".into()));
        }
        self.intents
            .borrow()
            .get(id)
            .cloned()
            .ok_or_else(|| StripeError::Rejected {
                status: 404,
                message: format!("No such payment_intent: '{id}'"),
                param: Some("intent".into()),
            })
    }

    async fn create_setup_intent(
        &self,
        setup: &NewSetupIntent,
    ) -> Result<SetupIntent, StripeError> {
        self.calls.borrow_mut().push(Call::Setup(setup.clone()));
        if self.down.get() {
            return Err(StripeError::Unavailable("connection refused".into()));
        }
        self.setups.set(self.setups.get() + 1);
        let id = format!("seti_fake{}", self.setups.get());
        Ok(SetupIntent {
            client_secret: Some(format!("{id}_secret_x")),
            id,
        })
    }

    async fn create_customer(&self, customer: &NewCustomer) -> Result<Customer, StripeError> {
        self.calls
            .borrow_mut()
            .push(Call::Customer(customer.clone()));
        if self.down.get() {
            return Err(StripeError::Unavailable("connection refused".into()));
        }
        if let Some(other) = self.customer_race.borrow().as_ref() {
            other();
        }
        self.customers.set(self.customers.get() + 1);
        Ok(Customer {
            id: format!("cus_fake{}", self.customers.get()),
        })
    }

    async fn create_refund(&self, refund: &NewRefund) -> Result<Refund, StripeError> {
        self.calls.borrow_mut().push(Call::Refund(refund.clone()));
        if self.down.get() {
            return Err(StripeError::Unavailable("connection refused".into()));
        }
        let mut answers = self.refund_answers.borrow_mut();
        if let Some(id) = answers.get(&refund.idempotency_key) {
            return Ok(Refund {
                id: id.clone(),
                status: Some("succeeded".into()),
            });
        }
        let mut refunds = self.refunds.borrow_mut();
        let id = format!("re_fake{}", refunds.len() + 1);
        refunds.push((refund.payment_intent.clone(), id.clone()));
        answers.insert(refund.idempotency_key.clone(), id.clone());
        Ok(Refund {
            id,
            status: Some("succeeded".into()),
        })
    }
}

/// Dependencies on a database leaked for the test, so that another instance played by
/// the fake Stripe (see [`FakeStripe::while_charging`]) can share it.
pub fn shared_deps() -> (&'static MemoryDb, Deps<&'static MemoryDb, FakeStripe>) {
    let db: &'static MemoryDb = Box::leak(Box::new(MemoryDb::new()));
    let deps = Deps {
        payments: Payments::new(db).unwrap(),
        stripe: FakeStripe::default(),
        jwt_secret: SECRET.to_owned(),
        now: NOW,
        pause: (|_| {}) as fn(Duration),
    };
    (db, deps)
}

/// Dependencies whose pauses play another instance: `other` runs at every pause with
/// the same database, and the total time paused is counted.
pub fn with_other_instance<'a>(
    db: &'a MemoryDb,
    paused: &'a Cell<Duration>,
    other: impl Fn(&Payments<&MemoryDb>) + 'a,
) -> Deps<&'a MemoryDb, FakeStripe, impl Fn(Duration) + 'a> {
    Deps {
        payments: Payments::new(db).unwrap(),
        stripe: FakeStripe::default(),
        jwt_secret: SECRET.to_owned(),
        now: NOW,
        pause: move |duration| {
            paused.set(paused.get() + duration);
            other(&Payments::new(db).unwrap());
        },
    }
}

/// Runs a future to completion (the fake never waits).
pub fn run<F: std::future::Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}
