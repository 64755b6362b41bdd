import { defineConfig } from "vite";

// The browser app: built into static files that the Worker serves ([assets] in wrangler.toml).
export default defineConfig({
  root: "client",
  build: {
    outDir: "../dist/client",
    emptyOutDir: true,
    // CodeMirror with three languages and Yjs make one ~720 kB (240 kB gzipped) bundle; that is expected.
    chunkSizeWarningLimit: 1024,
  },
});
