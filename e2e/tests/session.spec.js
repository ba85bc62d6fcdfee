// Signing in and out, pages that need a session, validation errors, and unknown pages.
import { test, expect } from "@playwright/test";
import { sell, signUp, snap, unique } from "../support/flows.js";

test("a signed-out visitor is sent to sign in, and can sign in and out", async ({ page }, testInfo) => {
  await page.goto("/");
  await expect(page.getByRole("link", { name: "Sign In" })).toBeVisible();
  await snap(page, testInfo, "home-signed-out");
  for (const path of ["/tickets/new", "/orders", "/orders/some-order"]) {
    await page.goto(path);
    await expect(page).toHaveURL(/\/auth\/signin$/);
  }
  await snap(page, testInfo, "auth-signin");

  const browserContext = page.context();
  const other = await browserContext.browser().newContext();
  const { email, password } = await signUp(await other.newPage());
  await other.close();

  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("link", { name: "My Orders" })).toBeVisible();
  await page.getByRole("link", { name: "My Orders" }).click();
  await expect(page.getByText("You have no orders yet.")).toBeVisible();

  await page.getByRole("link", { name: "Sign Out" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("link", { name: "Sign In" })).toBeVisible();
  await page.goto("/orders");
  await expect(page).toHaveURL(/\/auth\/signin$/);
});

test("validation errors are listed in the alert and nothing is created", async ({ page }, testInfo) => {
  const email = `${unique("valid")}@example.com`;
  await page.goto("/auth/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("abc");
  await page.getByRole("button", { name: "Create account" }).click();
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("Password must be between 4 and 20 characters");
  await expect(page).toHaveURL(/\/auth\/signup$/);
  await snap(page, testInfo, "auth-signup-error");

  await signUp(page, email);
  await page.getByRole("link", { name: "Sell Tickets" }).click();
  await page.getByLabel("Title").fill("   ");
  await page.getByLabel("Price (USD)").fill("0");
  await page.getByRole("button", { name: "List ticket" }).click();
  await expect(alert.getByRole("listitem")).toHaveText(["Title is required", "Price must be greater than 0"]);
  await expect(page).toHaveURL(/\/tickets\/new$/);
  await snap(page, testInfo, "tickets-new-error");

  // The same email again is refused.
  const second = await page.context().browser().newContext();
  const again = await second.newPage();
  await again.goto("/auth/signup");
  await again.getByLabel("Email").fill(email);
  await again.getByLabel("Password").fill("secret-pw");
  await again.getByRole("button", { name: "Create account" }).click();
  await expect(again.getByRole("alert")).toContainText("Email in use");
  await second.close();
});

test("an unknown page says so, and an empty list says so", async ({ page }, testInfo) => {
  await page.goto("/no/such/page");
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await snap(page, testInfo, "not-found");
  await signUp(page);
  await page.goto("/orders");
  await expect(page.getByText("You have no orders yet.")).toBeVisible();
  await snap(page, testInfo, "orders-empty");
  await sell(page, unique("Listed"), "5");
  await expect(page.getByRole("heading", { name: "Tickets for sale" })).toBeVisible();
});
