// The components in other languages, seen in the browser: the search box on the ticket
// list (search, TypeScript) and the Activity page (activity, Python).
import { test, expect } from "@playwright/test";
import { openListedTicket, purchase, sell, signUp, snap, unique } from "../support/flows.js";

/** Searches from the box on `/` until `title` shows up (events take a moment). */
async function searchUntilFound(page, query, title) {
  const row = page.getByRole("row").filter({ hasText: title });
  await expect(async () => {
    await page.goto("/");
    await page.getByRole("searchbox", { name: "Search tickets" }).fill(query);
    await page.getByRole("button", { name: "Search" }).click();
    await expect(row).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  return row;
}

test("the search box finds a listed ticket and the Activity page tells both sides", async ({ browser }, testInfo) => {
  const seller = await (await browser.newContext()).newPage();
  const buyer = await (await browser.newContext()).newPage();
  const word = unique("Zephyr").replace(/[^A-Za-z0-9]/g, "");
  const title = `${word} Quartet`;

  await signUp(seller);
  await sell(seller, title, "31.25");
  await sell(seller, unique("Unrelated Show"), "5");

  // One word finds it; the other listing is not among the results.
  const row = await searchUntilFound(seller, word.toLowerCase(), title);
  await expect(row).toContainText("$31.25");
  await expect(seller.getByRole("row").filter({ hasText: "Unrelated Show" })).toHaveCount(0);
  await snap(seller, testInfo, "search-results");
  await seller.getByRole("searchbox", { name: "Search tickets" }).fill("nothing-matches-this");
  await seller.getByRole("button", { name: "Search" }).click();
  await expect(seller.getByText(/No tickets match/)).toBeVisible();
  await seller.getByRole("button", { name: "Clear" }).click();
  await expect(seller.getByRole("row").filter({ hasText: "Unrelated Show" })).toBeVisible();

  // Nothing happened yet: the empty state.
  await seller.getByRole("link", { name: "Activity" }).click();
  await expect(seller).toHaveURL(/\/activity$/);
  await expect(seller.getByText("Nothing has happened yet.")).toBeVisible();

  await signUp(buyer);
  await openListedTicket(buyer, title);
  await purchase(buyer);

  // Reserved: no longer found.
  await expect(async () => {
    await buyer.goto("/");
    await buyer.getByRole("searchbox", { name: "Search tickets" }).fill(word);
    await buyer.getByRole("button", { name: "Search" }).click();
    await expect(buyer.getByText(/No tickets match/)).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });

  await expect(async () => {
    await buyer.goto("/activity");
    await expect(buyer.getByText(`You reserved ${title} for $31.25`)).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await snap(buyer, testInfo, "activity-buyer");
  await expect(async () => {
    await seller.goto("/activity");
    await expect(seller.getByText(`Your ticket ${title} was reserved`)).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await snap(seller, testInfo, "activity-seller");
});

test("the Activity page sends a signed-out visitor to sign in", async ({ page }) => {
  await page.goto("/activity");
  await expect(page).toHaveURL(/\/auth\/signin$/);
  await expect(page.getByRole("link", { name: "Activity" })).toHaveCount(0);
});
