/**
 * The edgedoc app: one document per URL, edited together with everyone who has the link.
 */
import { IndexeddbPersistence } from "y-indexeddb";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { accessFromLocation } from "./access";
import { createEditor, isLanguage, type Language } from "./editor";
import { awarenessUser, loadIdentity, saveIdentity } from "./identity";
import { downloadText, showInfo } from "./info";
import { documentFromLocation } from "./route";
import { SaveTracker } from "./saved";
import { renderPresence, renderStatus, type ConnectionState } from "./view";

const element = <T extends HTMLElement = HTMLElement>(testId: string) => document.querySelector<T>(`[data-testid="${testId}"]`)!;

function start(): void {
  const name = documentFromLocation(window.location, window.history);
  if (name === null) {
    element("editor").textContent = "That is not a document link. Start a new document from the edgedoc link above.";
    return;
  }
  document.title = `${name} · edgedoc`;
  element("doc-name").textContent = name;

  const access = accessFromLocation(location);
  const doc = new Y.Doc();
  // Edits are kept in this browser too, so they survive a reload while offline.
  new IndexeddbPersistence(`edgedoc:${name}`, doc);
  // Browsers cannot set headers on a WebSocket, so the token travels as ?token=.
  const provider = new WebsocketProvider(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, name, doc, {
    params: access.token ? { token: access.token } : {},
  });
  const { awareness } = provider;

  const identity = loadIdentity(localStorage);
  awareness.setLocalStateField("user", awarenessUser(identity));
  const nameInput = element<HTMLInputElement>("my-name");
  const colorInput = element<HTMLInputElement>("my-color");
  nameInput.value = identity.name;
  colorInput.value = identity.color;
  const updateIdentity = () => {
    const next = { name: nameInput.value.trim() || identity.name, color: colorInput.value };
    saveIdentity(localStorage, next);
    awareness.setLocalStateField("user", awarenessUser(next));
  };
  nameInput.addEventListener("change", updateIdentity);
  colorInput.addEventListener("input", updateIdentity);

  // The language is part of the document, so everyone sees the same highlighting.
  const settings = doc.getMap<string>("settings");
  // By tag name: the page has one <select>, and workers-types' global Element (HTMLRewriter)
  // clashes with HTMLSelectElement in a generic lookup under our single tsconfig.
  const languageSelect = document.querySelector("select")!;
  const currentLanguage = (): Language => {
    const stored = settings.get("language");
    return isLanguage(stored) ? stored : "markdown";
  };
  const readOnly = access.mode === "read";
  const editor = createEditor(element("editor"), doc.getText("codemirror"), awareness, currentLanguage(), readOnly);
  languageSelect.value = currentLanguage();
  languageSelect.disabled = readOnly;
  languageSelect.addEventListener("change", () => settings.set("language", languageSelect.value));
  settings.observe(() => {
    languageSelect.value = currentLanguage();
    editor.setLanguage(currentLanguage());
  });

  const state: ConnectionState = {
    online: navigator.onLine,
    status: "connecting",
    synced: false,
    unconfirmed: false,
    readOnly,
    stoppedReason: access.expiresAt !== null && access.expiresAt <= Date.now() ? "this link has expired" : null,
  };
  if (state.stoppedReason) provider.disconnect();
  // The server closes with 4400-4499 when reconnecting cannot help (expired link, document
  // too large); the provider then stops and tells us why.
  provider.on("closed", ({ reason }) => {
    state.stoppedReason = reason || "the server ended the session";
    showStatus();
  });
  const showStatus = () => renderStatus(element("status"), state);
  provider.on("status", ({ status }) => {
    state.status = status;
    showStatus();
  });
  provider.on("sync", (synced: boolean) => {
    state.synced = synced;
    showStatus();
  });
  new SaveTracker(provider, (unconfirmed) => {
    state.unconfirmed = unconfirmed;
    showStatus();
  });
  // Going offline closes the socket at once instead of waiting for it to time out; coming back reconnects.
  window.addEventListener("offline", () => {
    state.online = false;
    provider.disconnect();
    showStatus();
  });
  window.addEventListener("online", () => {
    state.online = true;
    provider.connect();
    showStatus();
  });
  showStatus();

  const showPresence = () => renderPresence(element("presence"), awareness.getStates(), doc.clientID);
  awareness.on("change", showPresence);
  showPresence();

  const infoPanel = element("info-panel");
  infoPanel.parentElement!.addEventListener("toggle", () => {
    if ((infoPanel.parentElement as HTMLDetailsElement).open) void showInfo(infoPanel, name, access.token, state.unconfirmed);
  });
  element<HTMLButtonElement>("download").addEventListener("click", () => void downloadText(name, access.token, currentLanguage()));

  element<HTMLButtonElement>("copy-link").addEventListener("click", async (event) => {
    const button = event.currentTarget as HTMLButtonElement;
    await navigator.clipboard.writeText(location.href).then(
      () => (button.textContent = "Link copied"),
      () => window.prompt("Copy this link", location.href),
    );
    setTimeout(() => (button.textContent = "Copy link"), 2_000);
  });
}

start();
