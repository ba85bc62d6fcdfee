// What a person does in the browser, as reusable steps, and the screenshot helper.
import { expect } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SCREENSHOTS = join(dirname(dirname(fileURLToPath(import.meta.url))), "screenshots");
let counter = 0;

/** A value no other test (or earlier run) has used. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${process.pid}-${counter}`;
}

/** Saves a full-page screenshot to e2e/screenshots/NAME.png and attaches it to the report. */
export async function snap(page, testInfo, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await testInfo.attach(name, { path, contentType: "image/png" });
}

/** Signs a new user up through the form; the header then offers Sign Out. */
export async function signUp(page, email = `${unique("user")}@example.com`, password = "secret-pw") {
  await page.goto("/auth/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("link", { name: "Sign Out" })).toBeVisible();
  return { email, password };
}

/** Lists a ticket through the Sell Tickets form; returns to the ticket list. */
export async function sell(page, title, price) {
  await page.getByRole("link", { name: "Sell Tickets" }).click();
  await expect(page).toHaveURL(/\/tickets\/new$/);
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Price (USD)").fill(price);
  await page.getByRole("button", { name: "List ticket" }).click();
  await expect(page).toHaveURL(/\/$/);
}

/** Opens the ticket from the list on `/` (reloading until it is listed); returns its URL. */
export async function openListedTicket(page, title) {
  const row = page.getByRole("row").filter({ hasText: title });
  await expect(async () => {
    await page.goto("/");
    await expect(row).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await row.getByRole("link", { name: "View" }).click();
  await expect(page.getByRole("heading", { name: title })).toBeVisible();
  return page.url();
}

/** Purchases the open ticket: lands on the order page with the countdown running. */
export async function purchase(page) {
  await page.getByRole("button", { name: "Purchase" }).click();
  await expect(page).toHaveURL(/\/orders\/[^/]+$/);
  await expect(page.getByText(/Time left to pay: \d+ seconds/)).toBeVisible();
}

/** The seconds the countdown shows. */
export async function secondsLeft(page) {
  const text = await page.getByText(/Time left to pay: \d+ seconds/).textContent();
  return Number(text.match(/(\d+) seconds/)[1]);
}

/** Types a card into the Stripe Elements frame (localstripe's stand-in fields). */
export async function enterCard(page, number) {
  const card = page.frameLocator("iframe.card-frame");
  await card.getByPlaceholder("number").fill(number);
  await card.getByPlaceholder("exp_month").fill("12");
  await card.getByPlaceholder("exp_year").fill("34");
  await card.getByPlaceholder("cvc").fill("123");
  await card.getByPlaceholder("postal_code").fill("94110");
}

/** `/orders` shows `title` with `status`, once the events have caught up (reloads). */
export async function expectOrderStatus(page, title, status) {
  const entry = page.getByRole("listitem").filter({ hasText: title });
  await expect(async () => {
    await page.goto("/orders");
    await expect(entry).toContainText(status, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
}
