//! The payment form: a Stripe.js card Element (in a frame of its own, see
//! `js/stripe-card.js`), loaded from the address and with the publishable key that
//! `/api/payments/config` gives, so no key lives in the client.
//!
//! Paying takes three steps: the API opens a SetupIntent, Stripe.js turns the entered card
//! into a PaymentMethod, and the API charges it. A card that needs 3-D Secure is finished
//! by Stripe.js and then recorded by `/api/payments/confirm`.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use wasm_bindgen::prelude::*;

use crate::api::{self, ApiError, Charge};
use crate::components::error_alert::ErrorAlert;

#[wasm_bindgen(module = "/js/stripe-card.js")]
extern "C" {
    #[wasm_bindgen(catch, js_name = mountCard)]
    async fn mount_card(
        container: &web_sys::HtmlElement,
        script_url: &str,
        publishable_key: &str,
    ) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(catch, js_name = confirmSetup)]
    async fn confirm_setup(card: &JsValue, client_secret: &str) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(catch, js_name = confirmPayment)]
    async fn confirm_payment(card: &JsValue, client_secret: &str) -> Result<JsValue, JsValue>;
}

/// Where the card Element is.
#[derive(Clone, Debug, PartialEq)]
enum CardState {
    Loading,
    Ready,
    Failed(ApiError),
}

/// Pays `order_id` and goes to `/orders` on success; a decline shows Stripe's message.
#[component]
pub fn CardForm(
    /// The order to pay.
    order_id: String,
    /// The amount, formatted, for the button.
    amount: String,
) -> impl IntoView {
    let navigate = use_navigate();
    let container = NodeRef::<leptos::html::Div>::new();
    let state = RwSignal::new(CardState::Loading);
    // The Stripe.js handle from `mountCard`; a JS value, so it stays on this thread.
    let card = StoredValue::new_local(JsValue::UNDEFINED);

    let config = LocalResource::new(api::payments_config);
    Effect::new(move || {
        let (Some(config), Some(element)) = (config.get(), container.get()) else {
            return;
        };
        if state.get_untracked() != CardState::Loading {
            return;
        }
        let config = match config {
            Ok(config) => config,
            Err(err) => return state.set(CardState::Failed(err)),
        };
        spawn_local(async move {
            match mount_card(&element, &config.stripe_js_url, &config.publishable_key).await {
                Ok(handle) => {
                    card.set_value(handle);
                    state.set(CardState::Ready);
                }
                Err(err) => state.set(CardState::Failed(card_error(err))),
            }
        });
    });

    let pay = Action::new_local(move |_: &()| {
        let (order_id, navigate) = (order_id.clone(), navigate.clone());
        async move {
            pay_with_card(&order_id, &card.get_value()).await?;
            navigate("/orders", Default::default());
            Ok::<_, ApiError>(())
        }
    });
    let error = Signal::derive(move || match state.get() {
        CardState::Failed(err) => Some(err),
        _ => pay.value().get().and_then(Result::err),
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        pay.dispatch(());
    };
    let ready = move || state.get() == CardState::Ready;
    view! {
        <form class="pay" on:submit=on_submit>
            <label>"Card"</label>
            <div class="card-entry" node_ref=container></div>
            <Show when=move || state.get() == CardState::Loading>
                <p class="muted">"Loading the card form…"</p>
            </Show>
            <ErrorAlert error/>
            <button type="submit" class="button primary" disabled=move || !ready() || pay.pending().get()>
                {move || if pay.pending().get() { "Paying…".to_owned() } else { format!("Pay {amount}") }}
            </button>
        </form>
    }
}

/// SetupIntent → PaymentMethod → charge (→ 3-D Secure and its confirmation).
async fn pay_with_card(order_id: &str, card: &JsValue) -> Result<(), ApiError> {
    let setup_secret = api::setup_payment(order_id).await?;
    let method = confirm_setup(card, &setup_secret)
        .await
        .map_err(card_error)?
        .as_string()
        .ok_or_else(|| ApiError::Card("Stripe.js gave no payment method.".into()))?;
    match api::pay(order_id, &method).await? {
        Charge::Paid => Ok(()),
        Charge::NeedsAction { client_secret } => {
            confirm_payment(card, &client_secret)
                .await
                .map_err(card_error)?;
            api::confirm_payment(order_id).await
        }
    }
}

/// The `message` of what Stripe.js threw (read by name: errors from the card frame belong
/// to another realm, so `instanceof Error` would not recognise them).
fn card_error(thrown: JsValue) -> ApiError {
    let message = js_sys::Reflect::get(&thrown, &JsValue::from_str("message"))
        .ok()
        .and_then(|message| message.as_string())
        .unwrap_or_else(|| "The card form stopped working. Please reload the page.".into());
    ApiError::Card(message)
}
