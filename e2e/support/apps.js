// The two apps the browser tests run against, on free loopback ports.
import { createServer } from "node:net";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const E2E = dirname(dirname(fileURLToPath(import.meta.url)));

/** A port nothing listens on right now (the OS picks it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `process.env[name]`, set to a fresh free port the first time (in the runner). */
async function port(name) {
  process.env[name] ??= String(await freePort());
  return Number(process.env[name]);
}

/** Seconds an order holds its ticket in the `short` app. */
export const SHORT_LOCK_SECONDS = 8;

async function app(name, lockSeconds) {
  const upper = name.toUpperCase();
  // Only the first load of the config (in the runner, before any port was handed out)
  // starts the app afresh; later loads, in the runner or its workers, reuse the ports.
  const first = process.env[`E2E_${upper}_HTTP`] === undefined;
  const http = await port(`E2E_${upper}_HTTP`);
  const redis = await port(`E2E_${upper}_REDIS`);
  const stripe = await port(`E2E_${upper}_STRIPE`);
  const stateDir = join(E2E, ".state", name);
  // Every run starts from empty databases; compiled components (cache/, named by the
  // wasm's digest) are kept, so a run does not compile the Python and TypeScript
  // components again.
  mkdirSync(stateDir, { recursive: true });
  if (first) {
    for (const entry of readdirSync(stateDir)) {
      if (entry !== "cache") rmSync(join(stateDir, entry), { recursive: true, force: true });
    }
  }
  return {
    url: `http://127.0.0.1:${http}`,
    env: {
      TESSERA_LISTEN: `127.0.0.1:${http}`,
      TESSERA_STATE_DIR: stateDir,
      LOCALSTRIPE_PORT: String(stripe),
      // tessera starts a dev redis-server here (loopback, nothing answering yet).
      SPIN_VARIABLE_REDIS_ADDRESS: `redis://127.0.0.1:${redis}`,
      SPIN_VARIABLE_ORDER_LOCK_SECONDS: String(lockSeconds),
      // Cheap password hashing: the tests sign up many users.
      SPIN_VARIABLE_ARGON2_MEMORY_KIB: "1024",
      SPIN_VARIABLE_ARGON2_ITERATIONS: "1",
    },
  };
}

/** Both apps; the same ports in the runner and in every worker. */
export async function apps() {
  return { main: await app("main", 180), short: await app("short", SHORT_LOCK_SECONDS) };
}
