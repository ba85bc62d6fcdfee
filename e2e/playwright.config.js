// Browser tests: Playwright drives Debian's Chromium (never a downloaded browser) against
// two copies of the built app, each with its own Redis, localstripe and sqlite files:
//   main  — the default 180 s lock window, for the purchase journey;
//   short — a few seconds' lock window, to watch an order expire.
// Ports are picked free on 127.0.0.1 once, in the runner, and handed to the workers
// through the environment (the config is loaded again in each worker).
import { defineConfig } from "@playwright/test";
import { apps } from "./support/apps.js";

const { main, short } = await apps();

export default defineConfig({
  testDir: "./tests",
  // The machine has two cores; both apps and the browser share them.
  workers: 2,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"], ["html", { open: "never" }]],
  outputDir: "test-results",
  use: {
    baseURL: main.url,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: [main, short].map((app) => ({
    command: "bash ../scripts/run_app.sh",
    url: `${app.url}/api/users/currentuser`,
    env: app.env,
    // The first run compiles every component (the Python and TypeScript ones take tens of
    // seconds each, two apps at once); later runs reuse the compile cache.
    timeout: 240_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
    gracefulShutdown: { signal: "SIGTERM", timeout: 5_000 },
  })),
});
