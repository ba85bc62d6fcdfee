// The web client's weight and time to first render, in Debian's Chromium via Playwright.
//   bash benches/client.sh   (starts the built app on a free port and runs this)
// Each run opens `/` in a fresh browser context (cold cache) and records, from the start
// of navigation: first contentful paint (the header, drawn by the wasm app: index.html
// itself shows nothing) and the moment the ticket list (or its empty state) is in the DOM.
import { chromium } from "../e2e/node_modules/@playwright/test/index.mjs";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const [url, dist, runsArg] = process.argv.slice(2);
const runs = Number(runsArg ?? 20);

const pkg = join(dist, "pkg");
const wasm = readdirSync(pkg).find((name) => name.endsWith("_bg.wasm"));
const glue = readdirSync(pkg).find((name) => name.endsWith(".js"));
const gzipped = (path) => gzipSync(readFileSync(path), { level: 9 }).length;
const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
console.log(`| client wasm | ${kb(statSync(join(pkg, wasm)).size)} raw | ${kb(gzipped(join(pkg, wasm)))} gzip |`);
console.log(`| JS glue | ${kb(statSync(join(pkg, glue)).size)} raw | ${kb(gzipped(join(pkg, glue)))} gzip |`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fcp = [];
const listed = [];
for (let i = 0; i < runs; i += 1) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.querySelector("table.list, .empty")) {
        window.__listedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(url);
  await page.waitForFunction(() => window.__listedAt !== undefined);
  const entry = await page.evaluate(() =>
    performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
  if (entry !== null) fcp.push(entry);
  listed.push(await page.evaluate(() => window.__listedAt));
  await context.close();
}
await browser.close();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const ms = (x) => `${x.toFixed(0)} ms`;
console.log(`| first contentful paint (${fcp.length} cold loads) | p50 ${ms(median(fcp))} | p90 ${ms(p90(fcp))} |`);
console.log(`| ticket list rendered (${listed.length} cold loads) | p50 ${ms(median(listed))} | p90 ${ms(p90(listed))} |`);
