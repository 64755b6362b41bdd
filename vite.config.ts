import { defineConfig } from "vite";

// The browser app: built into static files that the Worker serves ([assets] in wrangler.toml).
export default defineConfig({
  root: "client",
  // Copied as is into outDir: client/public/_headers gives the assets their response headers (CSP).
  publicDir: "public",
  build: {
    outDir: "../dist/client",
    emptyOutDir: true,
    // CodeMirror and Yjs make one ~520 kB (170 kB gzipped) entry; that is expected.
    chunkSizeWarningLimit: 1024,
    rolldownOptions: {
      output: {
        chunkFileNames: ({ moduleIds }) => `assets/${packageChunkName(moduleIds) ?? "[name]"}-[hash].js`,
      },
    },
  },
});

/**
 * The chunks loaded on demand (languages in client/editor.ts, the diff view in
 * client/history.ts) would be named "dist", after their packages' dist/index.js. Name each
 * after the CodeMirror package that imports the others in it, whose module comes last.
 */
function packageChunkName(moduleIds: string[]): string | undefined {
  return moduleIds
    .map((id) => id.match(/@codemirror\/(lang-\w+|merge)\//)?.[1])
    .filter((name) => name !== undefined)
    .at(-1);
}
