/**
 * `npm run simulate`: the deterministic simulation of the room core (sim/, docs in sim/main.ts).
 *
 * The worker's modules import without extensions (bundler resolution), which Node cannot load
 * directly, so this bundles sim/main.ts with esbuild (the version wrangler and vite use) into
 * node_modules/.cache/edgedoc-sim/sim.mjs, every run (about a tenth of a second), and runs it.
 * The bundle is also what the worker threads load.
 */
import { build } from "esbuild";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outfile = `${root}node_modules/.cache/edgedoc-sim/sim.mjs`;

await build({
  entryPoints: [`${root}sim/main.ts`],
  outfile,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: "inline",
  logLevel: "warning",
  // For any CommonJS dependency that calls require() inside the ESM bundle.
  banner: { js: 'import { createRequire as __simCreateRequire } from "node:module"; const require = __simCreateRequire(import.meta.url);' },
});

const { main } = (await import(pathToFileURL(outfile).href)) as { main: (argv: string[]) => Promise<number> };
process.exitCode = await main(process.argv.slice(2));
