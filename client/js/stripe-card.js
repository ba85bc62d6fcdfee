// Card entry with Stripe.js Elements, hosted in a same-origin frame.
//
// Stripe.js runs in the frame's own JavaScript realm. localstripe's stand-in (used in
// development and tests) declares a global `class Element`; loaded into the page itself it
// would shadow the DOM's `Element`, which wasm-bindgen's glue checks values against, and the
// app would stop updating the page. Stripe's real Elements render in iframes of their own,
// so hosting them one frame down changes nothing for them: one code path for both.

const FRAME_DOCUMENT = `<!doctype html>
<html><head><meta charset="utf-8"><style>
  html, body { margin: 0; background: transparent; font: 16px system-ui, sans-serif; }
  #card { padding: 10px 12px; border: 1px solid #cbd5e1; border-radius: 8px; background: #fff;
          display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
  #card input { font: inherit; padding: 4px 6px; border: 1px solid #e2e8f0; border-radius: 4px; }
  #card span { color: #64748b; font-size: 13px; }
  /* While Stripe shows something over the page (3-D Secure), the frame covers the
     viewport; the card field steps aside. */
  html.overlay, html.overlay body { height: 100%; background: rgba(15, 23, 42, 0.45); }
  html.overlay #card { visibility: hidden; }
</style></head><body><div id="card"></div></body></html>`;

/** Waits for `target` to fire `load`, or rejects on `error`. */
function loaded(target, what) {
  return new Promise((resolve, reject) => {
    target.addEventListener("load", () => resolve(), { once: true });
    target.addEventListener("error", () => reject(new Error(`Could not load ${what}.`)), {
      once: true,
    });
  });
}

/**
 * Mounts a card Element inside `container` and resolves to a handle for the calls below.
 * `scriptUrl` is where Stripe.js comes from (the API's `/api/payments/config`).
 */
export async function mountCard(container, scriptUrl, publishableKey) {
  const frame = document.createElement("iframe");
  frame.className = "card-frame";
  frame.title = "Card details";
  frame.srcdoc = FRAME_DOCUMENT;
  const frameReady = loaded(frame, "the card form");
  container.replaceChildren(frame);
  await frameReady;

  const doc = frame.contentDocument;
  const script = doc.createElement("script");
  script.src = scriptUrl;
  const scriptReady = loaded(script, "Stripe.js (is the payment service reachable?)");
  doc.head.appendChild(script);
  await scriptReady;

  const stripe = frame.contentWindow.Stripe(publishableKey);
  const card = stripe.elements().create("card");
  card.mount(doc.getElementById("card"));

  // The frame is as tall as what it shows (Stripe's field grows to show errors).
  const fit = () => {
    if (!frame.classList.contains("card-frame-overlay")) {
      frame.style.height = `${doc.getElementById("card").offsetHeight}px`;
    }
  };
  new frame.contentWindow.ResizeObserver(fit).observe(doc.getElementById("card"));
  fit();

  // Stripe.js puts its 3-D Secure challenge (localstripe: a confirm box) into the frame's
  // body; while anything besides the card field is there, the frame covers the viewport
  // so the challenge is seen whole.
  const overlay = () => {
    const covering = [...doc.body.children].some(
      (child) => child.id !== "card" && child.tagName !== "SCRIPT",
    );
    frame.classList.toggle("card-frame-overlay", covering);
    doc.documentElement.classList.toggle("overlay", covering);
    if (!covering) fit();
  };
  new frame.contentWindow.MutationObserver(overlay).observe(doc.body, { childList: true });
  return { stripe, card };
}

/** Stripe's error as a plain `Error` with its message. */
function failure(error) {
  const message = (error && error.message) || "The card could not be used.";
  return new Error(message);
}

/**
 * Saves the entered card against a SetupIntent (`clientSecret` from the API) and resolves
 * to the PaymentMethod id to pay with.
 */
export async function confirmSetup(handle, clientSecret) {
  const result = await handle.stripe.confirmCardSetup(clientSecret, {
    payment_method: { card: handle.card },
  });
  if (!result || result.error) throw failure(result && result.error);
  const method = result.setupIntent && result.setupIntent.payment_method;
  if (!method) throw failure(null);
  return typeof method === "string" ? method : method.id;
}

/** Finishes a PaymentIntent that needs the cardholder (3-D Secure). */
export async function confirmPayment(handle, clientSecret) {
  const result = await handle.stripe.confirmCardPayment(clientSecret);
  if (!result || result.error) throw failure(result && result.error);
}
