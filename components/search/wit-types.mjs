// Generates TypeScript declarations from WIT: `node wit-types.mjs WIT_PATH WORLD OUT_DIR`
// (build.sh runs it for the component's world and for wit/events.wit's event records).
// The same as `jco guest-types`, except that jco 1.35.0's
// CLI leaves its type generator without a WASI preopen (it fails with "failed to read path
// for WIT … os error 44"), so the preopen is set here first, on the copy of preview2-shim
// that jco-transpile loads.
import { createRequire } from "node:module";
import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const transpile = join(here, "node_modules/@bytecodealliance/jco-transpile");
const require = createRequire(join(transpile, "package.json"));
const shim = require.resolve("@bytecodealliance/preview2-shim/filesystem");
const { _addPreopen } = await import(pathToFileURL(shim).href);
_addPreopen("/", "/");
const { generateGuestTypes } = await import(pathToFileURL(join(transpile, "dist/index.js")).href);

const [witPath, world, outDir] = process.argv.slice(2);
const out = resolve(outDir);
// The real path: WASI path resolution does not follow a symlinked `target/`.
const files = await generateGuestTypes(realpathSync(witPath), {
  worldName: world,
  outDir: out + "/",
});
for (const [path, text] of Object.entries(files)) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
