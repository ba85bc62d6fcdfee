// Watches a Redis pub/sub channel from the test itself, so a test can observe an event
// (e.g. `expiration:complete`) instead of inferring it from a page that another path
// (orders' overdue backstop) could also have produced.
import { connect } from "node:net";
import { expect } from "@playwright/test";

/** Subscribes to `channel` on the Redis at 127.0.0.1:`port`; resolves once subscribed. */
export async function watchChannel(port, channel) {
  const socket = connect(port, "127.0.0.1");
  let received = "";
  socket.on("data", (chunk) => (received += chunk.toString("utf8")));
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write(`SUBSCRIBE ${channel}\r\n`);
  // Redis confirms with a `subscribe` push before any message.
  await expect.poll(() => received.includes("subscribe"), { timeout: 5_000 }).toBe(true);
  return {
    /** Whether a message containing `needle` has arrived. */
    seen: (needle) => received.split("\r\n").some((line) => line.startsWith("{") && line.includes(needle)),
    close: () => socket.destroy(),
  };
}
