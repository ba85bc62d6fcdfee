// The purchase journey, seller and buyer in two browser contexts (two separate sessions).
import { test, expect } from "@playwright/test";
import {
  enterCard, expectOrderStatus, openListedTicket, purchase, secondsLeft, sell, signUp, snap, unique,
} from "../support/flows.js";

test("a seller lists a ticket and a buyer pays for it by card", async ({ browser }, testInfo) => {
  const seller = await (await browser.newContext()).newPage();
  const buyer = await (await browser.newContext()).newPage();
  const title = unique("Arcade Fire");

  await signUp(seller);
  await seller.getByRole("link", { name: "Sell Tickets" }).click();
  const price = seller.getByLabel("Price (USD)");
  await price.fill("25.499");
  await price.blur();
  await expect(price).toHaveValue("25.50"); // rounded to cents on blur
  await snap(seller, testInfo, "tickets-new");
  await seller.goto("/");
  await sell(seller, title, "25.50");

  await signUp(buyer);
  const ticketPage = await openListedTicket(buyer, title);
  await expect(buyer.getByText("$25.50")).toBeVisible();
  await snap(buyer, testInfo, "ticket");
  await purchase(buyer);

  // The countdown ticks live from expiresAt.
  const first = await secondsLeft(buyer);
  expect(first).toBeGreaterThan(150);
  expect(first).toBeLessThanOrEqual(180);
  await expect.poll(() => secondsLeft(buyer), { timeout: 5_000 }).toBeLessThan(first);

  // Held for the buyer: it leaves the list, and its page says it is reserved.
  await expect(async () => {
    await seller.goto("/");
    await expect(seller.getByRole("heading", { name: "Tickets for sale" })).toBeVisible();
    await expect(seller.getByRole("row").filter({ hasText: title })).toHaveCount(0, { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await snap(seller, testInfo, "home-signed-in");
  await seller.goto(ticketPage);
  await expect(seller.getByText("Reserved — not available right now.")).toBeVisible();
  await expect(seller.getByRole("button", { name: "Purchase" })).toHaveCount(0);
  await snap(seller, testInfo, "ticket-reserved");

  await expect(buyer.frameLocator("iframe.card-frame").getByPlaceholder("number")).toBeVisible();
  await snap(buyer, testInfo, "order");
  await enterCard(buyer, "4242424242424242");
  await buyer.getByRole("button", { name: /^Pay \$25\.50$/ }).click();
  await expect(buyer).toHaveURL(/\/orders$/);
  await expectOrderStatus(buyer, title, "complete");
  await snap(buyer, testInfo, "orders");
});

test("a declined card shows Stripe's message and the order can still be paid", async ({ browser }) => {
  const seller = await (await browser.newContext()).newPage();
  const buyer = await (await browser.newContext()).newPage();
  const title = unique("Declined");
  await signUp(seller);
  await sell(seller, title, "10");
  await signUp(buyer);
  await openListedTicket(buyer, title);
  await purchase(buyer);

  await enterCard(buyer, "4000000000000341"); // attaches, then the charge is declined
  await buyer.getByRole("button", { name: /^Pay / }).click();
  const alert = buyer.getByRole("alert");
  await expect(alert).toContainText(/declined/i);
  await expect(buyer).toHaveURL(/\/orders\/[^/]+$/);

  await enterCard(buyer, "4242424242424242");
  await buyer.getByRole("button", { name: /^Pay / }).click();
  await expect(buyer).toHaveURL(/\/orders$/);
  await expectOrderStatus(buyer, title, "complete");
});

test("a card that needs 3-D Secure is authenticated over the page and paid", async ({ browser }, testInfo) => {
  const seller = await (await browser.newContext()).newPage();
  const buyer = await (await browser.newContext()).newPage();
  const title = unique("Secure");
  await signUp(seller);
  await sell(seller, title, "30");
  await signUp(buyer);
  await openListedTicket(buyer, title);
  await purchase(buyer);

  await enterCard(buyer, "4000002500003155"); // requires authentication
  await buyer.getByRole("button", { name: /^Pay / }).click();
  const frame = buyer.locator("iframe.card-frame");
  const challenge = buyer.frameLocator("iframe.card-frame").getByRole("button", { name: "Complete authentication" });
  // Saving the card asks once, charging it asks again; each time the frame covers the page.
  for (const step of ["setup", "payment"]) {
    await expect(challenge, step).toBeVisible();
    await expect(frame).toHaveClass(/card-frame-overlay/);
    if (step === "setup") await snap(buyer, testInfo, "order-3d-secure");
    await challenge.click();
  }
  await expect(buyer).toHaveURL(/\/orders$/);
  await expectOrderStatus(buyer, title, "complete");
});
