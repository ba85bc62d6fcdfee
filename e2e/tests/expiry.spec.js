// The lock window running out, against the `short` app (a few seconds' lock).
import { test, expect } from "@playwright/test";
import { apps, SHORT_LOCK_SECONDS } from "../support/apps.js";
import { watchChannel } from "../support/channel.js";
import { expectOrderStatus, openListedTicket, purchase, secondsLeft, sell, signUp, snap, unique } from "../support/flows.js";

const { short } = await apps();
test.use({ baseURL: short.url });

test("an unpaid order expires, and its ticket is for sale again", async ({ browser }, testInfo) => {
  const seller = await (await browser.newContext()).newPage();
  const buyer = await (await browser.newContext()).newPage();
  const title = unique("Expiring");
  await signUp(seller);
  await sell(seller, title, "42");
  await signUp(buyer);
  await openListedTicket(buyer, title);
  const expirations = await watchChannel(Number(process.env.E2E_SHORT_REDIS), "expiration:complete");
  await purchase(buyer);
  const orderId = new URL(buyer.url()).pathname.split("/").pop();
  expect(await secondsLeft(buyer)).toBeLessThanOrEqual(SHORT_LOCK_SECONDS);

  // The page switches by itself when the countdown reaches zero; no card form is left.
  await expect(buyer.getByText("Order Expired")).toBeVisible({ timeout: (SHORT_LOCK_SECONDS + 5) * 1000 });
  await expect(buyer.getByRole("button", { name: /^Pay / })).toHaveCount(0);
  await snap(buyer, testInfo, "order-expired");

  // The expiration service itself announced the deadline. Observed on the bus before
  // anything asks orders, whose requests would also cancel an overdue order (backstop).
  await expect.poll(() => expirations.seen(orderId), { timeout: 10_000 }).toBe(true);
  expirations.close();

  // The expiration service cancels the order; the ticket is released and listed again.
  await expectOrderStatus(buyer, title, "cancelled");
  await openListedTicket(seller, title);
  await expect(seller.getByRole("button", { name: "Purchase" })).toBeVisible();
});
