// On a phone-sized screen every page fits the width (no sideways scrolling) and the
// purchase flow works by touch.
import { test, expect } from "@playwright/test";
import { openListedTicket, purchase, sell, signUp, snap, unique } from "../support/flows.js";

test.use({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });

/** Fails when the page is wider than the screen. */
async function expectFitsWidth(page) {
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, `${page.url()} is wider than the screen`).toBeLessThanOrEqual(0);
}

test("every page fits a phone screen", async ({ page, browser }, testInfo) => {
  await page.goto("/auth/signup");
  await expectFitsWidth(page);
  await snap(page, testInfo, "mobile-auth-signup");

  const seller = await (await browser.newContext()).newPage();
  const title = unique("A rather long concert title that has to wrap on a phone");
  await signUp(seller);
  await sell(seller, title, "120");

  await signUp(page);
  await expectFitsWidth(page);
  await snap(page, testInfo, "mobile-home");
  await openListedTicket(page, title);
  await expectFitsWidth(page);
  await purchase(page);
  await expect(page.frameLocator("iframe.card-frame").getByPlaceholder("number")).toBeVisible();
  await expectFitsWidth(page);
  await snap(page, testInfo, "mobile-order");
  await page.goto("/orders");
  await expect(page.getByRole("listitem").filter({ hasText: title })).toBeVisible();
  await expectFitsWidth(page);
  await snap(page, testInfo, "mobile-orders");
  await expect(async () => {
    await page.goto("/activity");
    await expect(page.getByText(`You reserved ${title} for $120.00`)).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expectFitsWidth(page);
  await snap(page, testInfo, "mobile-activity");
});
