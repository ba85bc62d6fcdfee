// Money is kept only for an order that completes: a card charged after the buyer
// cancelled (here, in another tab) is refunded, and the order page says so.
import { test, expect } from "@playwright/test";
import { openListedTicket, purchase, sell, signUp, snap, unique } from "../support/flows.js";

/** localstripe of the `main` app, with the secret key scripts/run_app.sh gives it. */
const STRIPE = `http://127.0.0.1:${process.env.E2E_MAIN_STRIPE}`;
const STRIPE_AUTH = { Authorization: "Bearer sk_test_localstripe" };

test("a payment that lands after the cancellation is refunded, and the order says so", async ({ browser, request }, testInfo) => {
  const seller = await (await browser.newContext()).newPage();
  const buyer = await (await browser.newContext()).newPage();
  const title = unique("Refunded");
  await signUp(seller);
  await sell(seller, title, "23");
  await signUp(buyer);
  await openListedTicket(buyer, title);
  await purchase(buyer);
  const orderId = new URL(buyer.url()).pathname.split("/").pop();

  // The buyer's browser starts paying (it holds a PaymentIntent)…
  const started = await buyer.request.post("/api/payments", { data: { orderId } });
  expect(started.status()).toBe(201);
  const { stripeId } = await started.json();

  // …cancels the order in another tab, and payments hears of it…
  expect((await buyer.request.delete(`/api/orders/${orderId}`)).status()).toBe(204);
  await expect
    .poll(async () => (await buyer.request.post("/api/payments", { data: { orderId } })).status())
    .toBe(400);

  // …then the first tab's card goes through at Stripe anyway.
  await request.post(`${STRIPE}/v1/payment_intents/${stripeId}`, {
    headers: STRIPE_AUTH,
    form: { payment_method: "pm_card_visa" },
  });
  const confirmed = await request.post(`${STRIPE}/v1/payment_intents/${stripeId}/confirm`, { headers: STRIPE_AUTH });
  expect((await confirmed.json()).status).toBe("succeeded");
  // The follow-up call (localstripe's webhook may have recorded the payment already).
  const followUp = await buyer.request.post("/api/payments/confirm", { data: { orderId } });
  expect([200, 409]).toContain(followUp.status());

  // The order stays cancelled and tells the buyer the money went back.
  await expect(async () => {
    await buyer.reload();
    await expect(buyer.getByText("Your payment was refunded")).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(buyer.getByText("Order Cancelled")).toBeVisible();
  await snap(buyer, testInfo, "order-refunded");
  const refunds = await request.get(`${STRIPE}/v1/refunds?payment_intent=${stripeId}`, { headers: STRIPE_AUTH });
  expect((await refunds.json()).data).toHaveLength(1);

  await buyer.goto("/orders");
  await expect(buyer.getByRole("listitem").filter({ hasText: title })).toContainText("Your payment was refunded");
});
