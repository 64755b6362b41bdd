import { defineConfig } from "vite";

// The browser app: built into static files that the Worker serves ([assets] in wrangler.toml).
export default defineConfig({
  root: "client",
  // Copied as is into outDir: client/public/_headers gives the assets their response headers (CSP).
  publicDir: "public",
  build: {
    outDir: "../dist/client",
    emptyOutDir: true,
    // CodeMirror with three languages and Yjs make one ~720 kB (240 kB gzipped) bundle; that is expected.
    chunkSizeWarningLimit: 1024,
  },
});
