/**
 * The app's entry. It loads only the code of the page this URL shows: the home page (`/`,
 * client/home.ts) is a few kilobytes and must not wait for the editor, Yjs and the providers
 * that the document view (client/main.ts) brings. It also registers the service worker that
 * lets the app load with no network (vite.config.ts).
 */
import { isHomePath } from "./route";

const page = isHomePath(location.pathname) ? import("./home").then(({ showHome }) => showHome()) : import("./main");
page.catch((error: unknown) => {
  // Offline before the service worker had the app, or a chunk replaced by a newer deploy.
  console.error("edgedoc: the page's code did not load", error);
  document.body.textContent = "edgedoc could not load. Check your connection and reload the page.";
});
registerServiceWorker();

/**
 * Registers the service worker, in production builds only (`vite build` writes sw.js; Vite's
 * dev server has none). After the page has loaded, so that the service worker's download of the
 * whole app does not compete with what this page needs first.
 */
function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !("serviceWorker" in navigator)) return;
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch((error: unknown) => console.warn("edgedoc: the app will not load offline", error));
  });
}
