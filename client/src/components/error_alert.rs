//! The one alert style for errors: every message, as a list.

use leptos::prelude::*;

use crate::api::ApiError;

/// Shows every message of `error`, or nothing when it is `None`.
#[component]
pub fn ErrorAlert(
    /// The error to show; nothing when `None`.
    #[prop(into)]
    error: Signal<Option<ApiError>>,
) -> impl IntoView {
    move || {
        error.get().map(|error| {
            view! {
                <div class="alert" role="alert">
                    <strong>"Something went wrong"</strong>
                    <ul>
                        {error.messages().into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
                    </ul>
                </div>
            }
        })
    }
}
