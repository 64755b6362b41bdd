import { defineConfig } from "vite";
import { VitePWA } from "vite-plugin-pwa";

// The browser app: built into static files that the Worker serves ([assets] in wrangler.toml).
export default defineConfig({
  root: "client",
  // Copied as is into outDir: client/public/_headers gives the assets their response headers (CSP).
  publicDir: "public",
  build: {
    outDir: "../dist/client",
    emptyOutDir: true,
    // The document view's CodeMirror (~310 kB) and Yjs with the providers (~210 kB) are large; that is expected.
    chunkSizeWarningLimit: 1024,
    rolldownOptions: {
      output: {
        chunkFileNames: ({ moduleIds }) => `assets/${packageChunkName(moduleIds) ?? "[name]"}-[hash].js`,
      },
    },
  },
  plugins: [
    // A service worker (Workbox, generated at build time into sw.js; client/app.ts registers it)
    // that keeps the whole app, so that it loads with no network: a document this browser has
    // in IndexedDB then opens and takes edits, which y-websocket sends once the network is back.
    VitePWA({
      injectRegister: false,
      manifest: false,
      workbox: {
        // The app shell: index.html, the entry, the home and document views' chunks, every
        // language's and the History panel's chunks, and the stylesheet. Not _headers.
        globPatterns: ["**/*.{html,js,css}"],
        // A navigation to a page of the app (`/`, `/new`, `/d/<name>`, each with or without a
        // query such as ?token=) gets the kept index.html. Nothing else is handled: /api/*,
        // /ws/*, /sync/* and /healthz always go to the network and are never kept.
        navigateFallback: "index.html",
        navigateFallbackAllowlist: [/^\/(\?|$)/, /^\/new(\?|$)/, /^\/d\/[^/?]+\/?(\?|$)/],
        // A new build's service worker takes over at once (tabs keep the code they run; it
        // serves their next load), and the previous build's files are deleted.
        skipWaiting: true,
        clientsClaim: true,
        cleanupOutdatedCaches: true,
      },
    }),
  ],
});

/**
 * Chunks made of packages would be named "dist", after their packages' dist/index.js. Name
 * those loaded on demand (languages in client/editor.ts, the diff view in client/history.ts)
 * after the CodeMirror package that imports the others in it, whose module comes last, and
 * the one CodeMirror core that the document view shares with them "codemirror".
 */
function packageChunkName(moduleIds: string[]): string | undefined {
  const onDemand = moduleIds
    .map((id) => id.match(/@codemirror\/(lang-\w+|merge)\//)?.[1])
    .filter((name) => name !== undefined)
    .at(-1);
  return onDemand ?? (moduleIds.some((id) => id.includes("/@codemirror/view/")) ? "codemirror" : undefined);
}
