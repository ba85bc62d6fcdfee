//! The payment form. Stripe.js is loaded from the address `/api/payments/config` gives when
//! that is Stripe's own (see `is_stripe_js`); card entry is, for now, one of Stripe's test
//! payment-method ids sent as `token` (server-side confirmation), labelled "Test card".

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api;
use crate::components::error_alert::ErrorAlert;

/// Stripe's documented test payment methods: one that succeeds, one that is declined.
const TEST_CARDS: [(&str, &str); 2] = [
    ("pm_card_visa", "Visa ending 4242 (succeeds)"),
    ("pm_card_chargeCustomerFail", "Visa ending 0341 (declined)"),
];

/// Pays `order_id` and goes to `/orders` on success; a decline shows Stripe's message.
#[component]
pub fn CardForm(
    /// The order to pay.
    order_id: String,
    /// The amount, formatted, for the button.
    amount: String,
) -> impl IntoView {
    let navigate = use_navigate();
    let token = RwSignal::new(TEST_CARDS[0].0.to_owned());
    let config = LocalResource::new(api::payments_config);
    Effect::new(move || {
        if let Some(Ok(config)) = config.get()
            && is_stripe_js(&config.stripe_js_url)
        {
            load_script(&config.stripe_js_url);
        }
    });
    let pay = Action::new_local(move |token: &String| {
        let (order_id, token, navigate) = (order_id.clone(), token.clone(), navigate.clone());
        async move {
            api::pay(&order_id, &token).await?;
            navigate("/orders", Default::default());
            Ok(())
        }
    });
    let error = Signal::derive(move || pay.value().get().and_then(Result::err));
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        pay.dispatch(token.get_untracked());
    };
    view! {
        <form class="pay" on:submit=on_submit>
            <label>"Test card"
                <select bind:value=token>
                    {TEST_CARDS.iter().map(|(id, label)| view! { <option value=*id>{*label}</option> }).collect_view()}
                </select>
            </label>
            <p class="hint">"Test mode: no real card is charged."</p>
            <ErrorAlert error/>
            <button type="submit" class="button primary" disabled=move || pay.pending().get()>
                {move || if pay.pending().get() { "Paying…".to_owned() } else { format!("Pay {amount}") }}
            </button>
        </form>
    }
}

/// Only Stripe's own Stripe.js is loaded. localstripe's stand-in declares a global
/// `class Element` in a classic script, which shadows the DOM's `Element` for every global
/// lookup, so wasm-bindgen's `instanceof Element` checks fail and the app stops updating the
/// page (seen: alerts never shown, blank pages after navigation). It cannot create payment
/// methods anyway, so in development the test payment-method ids below are the card entry.
fn is_stripe_js(url: &str) -> bool {
    url.starts_with("https://js.stripe.com/")
}

/// Adds `<script src=url>` to the document once (later calls find it and do nothing).
fn load_script(url: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if document
        .query_selector("script[data-stripe-js]")
        .ok()
        .flatten()
        .is_some()
    {
        return;
    }
    let Ok(script) = document.create_element("script") else {
        return;
    };
    let _ = script.set_attribute("src", url);
    let _ = script.set_attribute("data-stripe-js", "");
    let _ = script.set_attribute("async", "");
    if let Some(head) = document.head() {
        let _ = head.append_child(&script);
    }
}
