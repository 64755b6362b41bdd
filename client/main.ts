/**
 * The document view (`/d/<name>`, and `/new`): one document per URL, edited together with
 * everyone who has the link. client/app.ts loads it for every path but the home page.
 */
import { IndexeddbPersistence } from "y-indexeddb";
import { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";
import { cleanTitle, DEFAULT_TITLE, documentTitle, MAX_TITLE_CHARS, SETTINGS_MAP, TITLE_KEY } from "../worker/title";
import { accessFromLocation, describeLink, type LinkAccess } from "./access";
import { createEditor, isLanguage, type Language } from "./editor";
import { EdgedocProvider } from "./fallback";
import { awarenessUser, loadIdentity, saveIdentity, watchIdentity, type Identity } from "./identity";
import type { HistoryOptions, HistoryPanel } from "./history";
import { downloadText, showInfo } from "./info";
import { cleanName, isHexColor, MAX_NAME_LENGTH, sanitizeRemoteStates, SHARED_TEXT_NAME } from "./presence";
import { documentFromLocation } from "./route";
import { SaveTracker } from "./saved";
import { keepTokenFresh } from "./token-session";
import { recordVisit } from "./visit";
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
  // Our own Awareness, guarded before the provider, the editor or the presence list listens
  // to it: each of them then only ever sees checked remote states (client/presence.ts).
  const awareness = new Awareness(doc);
  sanitizeRemoteStates(awareness);
  // Edits are kept in this browser too, so they survive a reload while offline.
  new IndexeddbPersistence(`edgedoc:${name}`, doc);
  // On the home page's list of this browser's documents, with its title and unconfirmed edits.
  const noteUnconfirmed = recordVisit(localStorage, name, access.token, doc);
  // Browsers cannot set headers on a WebSocket, so the token travels as ?token=. WebSockets
  // first; where the network blocks them, the same frames over HTTP (client/fallback.ts).
  const provider = new EdgedocProvider(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, name, doc, {
    params: access.token ? { token: access.token } : {},
    awareness,
  });

  wireIdentity(provider);
  wireTitle(doc, access.mode === "read");
  wireAccess(access);
  const language = wireEditorAndLanguage(provider, access.mode === "read");
  const state = wireStatus(provider, access, noteUnconfirmed);
  const showPresence = () => renderPresence(element("presence"), awareness.getStates(), doc.clientID);
  awareness.on("change", showPresence);
  showPresence();
  wireHeaderButtons(name, access, state, language);
  wireHistoryButton({ name, access, text: doc.getText(SHARED_TEXT_NAME), language, unconfirmed: () => state.unconfirmed });
}

/** Your name and colour: editable, remembered in this browser and the same in all its tabs, shown to the others. */
function wireIdentity({ awareness }: EdgedocProvider): void {
  const nameInput = element<HTMLInputElement>("my-name");
  const colorInput = element<HTMLInputElement>("my-color");
  nameInput.maxLength = MAX_NAME_LENGTH;
  let identity = loadIdentity(localStorage);
  const show = (next: Identity) => {
    identity = next;
    nameInput.value = next.name;
    colorInput.value = next.color;
    awareness.setLocalStateField("user", awarenessUser(next));
  };
  const updateIdentity = () => {
    const next = {
      id: identity.id,
      name: cleanName(nameInput.value) || identity.name,
      color: isHexColor(colorInput.value) ? colorInput.value : identity.color,
    };
    saveIdentity(localStorage, next);
    show(next);
  };
  show(identity);
  nameInput.addEventListener("change", updateIdentity);
  colorInput.addEventListener("input", updateIdentity);
  watchIdentity(window, localStorage, show);
}

/** The editor, and the language picker; returns a reader of the current language. */
function wireEditorAndLanguage({ doc, awareness }: EdgedocProvider, readOnly: boolean): () => Language {
  // The language is part of the document, so everyone sees the same highlighting.
  const settings = doc.getMap<string>("settings");
  const currentLanguage = (): Language => {
    const stored = settings.get("language");
    return isLanguage(stored) ? stored : "markdown";
  };
  const editor = createEditor(element("editor"), doc.getText(SHARED_TEXT_NAME), awareness, currentLanguage(), readOnly);
  const languageSelect = element<HTMLSelectElement>("language");
  languageSelect.value = currentLanguage();
  languageSelect.disabled = readOnly;
  languageSelect.addEventListener("change", () => settings.set("language", languageSelect.value));
  settings.observe(() => {
    languageSelect.value = currentLanguage();
    editor.setLanguage(currentLanguage());
  });
  return currentLanguage;
}

/** Connection, save and access state, kept current in the header; `onUnconfirmed` hears the save state change. */
function wireStatus(provider: EdgedocProvider, access: LinkAccess, onUnconfirmed: (unconfirmed: boolean) => void): ConnectionState {
  const state: ConnectionState = {
    online: navigator.onLine,
    status: "connecting",
    synced: false,
    unconfirmed: false,
    readOnly: access.mode === "read",
    stoppedReason: access.expiresAt !== null && access.expiresAt <= Date.now() ? "this link has expired" : null,
    transport: provider.transport,
  };
  const showStatus = () => renderStatus(element("status"), state);
  if (state.stoppedReason) provider.disconnect();
  // A share link's token cannot be renewed: the helper gets the same one back, and once the room
  // ends the session for its expiry (or refuses a reconnect with it) it stops and says so here.
  if (access.token !== null) {
    const token = access.token;
    keepTokenFresh(provider, {
      getToken: async () => token,
      onExpired: () => {
        state.stoppedReason = "this link has expired";
        showStatus();
      },
    });
  }
  // The server closes with 4400-4499 when reconnecting cannot help (document deleted or too
  // large; an expired link is the helper's above); the provider then stops and tells us why.
  provider.on("closed", ({ reason }) => {
    state.stoppedReason = reason || "the server ended the session";
    showStatus();
  });
  provider.onTransport((transport) => {
    state.transport = transport;
    showStatus();
  });
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
    onUnconfirmed(unconfirmed);
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
    if (!state.stoppedReason) provider.connect();
    showStatus();
  });
  showStatus();
  return state;
}

/** Download and the Info panel. */
function wireHeaderButtons(name: string, access: LinkAccess, state: ConnectionState, language: () => Language): void {
  const infoPanel = element("info-panel");
  const details = infoPanel.parentElement as HTMLDetailsElement;
  details.addEventListener("toggle", () => {
    if (details.open) void showInfo(infoPanel, name, access.token, state.unconfirmed);
  });
  element<HTMLButtonElement>("download").addEventListener("click", () => void downloadText(name, access.token, language()));
}

/**
 * The document's title: edited in the header, shown in the browser tab, live for everyone
 * (worker/title.ts). Whatever a client stored there is remote input: it is cleaned and
 * bounded before it is shown, and only ever set as text.
 */
function wireTitle(doc: Y.Doc, readOnly: boolean): void {
  const input = element<HTMLInputElement>("doc-title");
  const settings = doc.getMap(SETTINGS_MAP);
  input.placeholder = DEFAULT_TITLE;
  input.maxLength = MAX_TITLE_CHARS;
  input.readOnly = readOnly;
  /** The title the field showed last, to tell whether someone has typed in it since. */
  let shown = "";
  const show = (force = false) => {
    const title = documentTitle(doc);
    document.title = `${title} · edgedoc`;
    input.title = title;
    // Someone typing a new title keeps what they typed until they commit it (theirs wins) or press Escape.
    if (!force && document.activeElement === input && input.value !== shown) return;
    shown = cleanTitle(settings.get(TITLE_KEY));
    input.value = shown;
  };
  const commit = () => {
    if (readOnly) return;
    const next = cleanTitle(input.value);
    if (next !== cleanTitle(settings.get(TITLE_KEY))) {
      // No title is no entry: the document is "Untitled" again, for every app.
      if (next) settings.set(TITLE_KEY, next);
      else settings.delete(TITLE_KEY);
    }
    show(true);
  };
  input.addEventListener("change", commit);
  input.addEventListener("blur", () => show());
  input.addEventListener("keydown", (event) => {
    if (event.isComposing) return;
    if (event.key === "Enter") {
      commit();
      input.blur();
    } else if (event.key === "Escape") {
      // Back to the title as it is now (someone may have renamed it meanwhile), so blurring commits nothing.
      show(true);
      input.blur();
    }
  });
  settings.observe((event) => {
    if (event.keysChanged.has(TITLE_KEY)) show();
  });
  show(true);
}

/**
 * What the link this page was opened with grants, and until when: the access badge in the
 * header, and Copy link saying what it copies (the page's link, token included).
 */
function wireAccess(access: LinkAccess): void {
  const badge = element("access");
  const button = element<HTMLButtonElement>("copy-link");
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  /** What the button says for a moment after copying, or null. */
  let copied: string | null = null;
  const render = () => {
    const link = describeLink(access, Date.now(), format);
    badge.hidden = link.grant === null;
    badge.dataset.mode = access.mode;
    badge.toggleAttribute("data-expired", link.expiry === "expired");
    badge.title = link.exactExpiry === null ? (link.grant ?? "") : `${link.grant}, ${link.expiry === "expired" ? "expired" : "expires"} ${link.exactExpiry}`;
    if (link.grant === null) {
      badge.replaceChildren();
    } else if (link.expiry === null || access.expiresAt === null) {
      badge.replaceChildren(link.grant);
    } else {
      const time = document.createElement("time");
      time.dateTime = new Date(access.expiresAt).toISOString();
      time.textContent = link.expiry;
      badge.replaceChildren(`${link.grant} · `, time);
    }
    button.textContent = copied ?? link.copyLabel;
    button.title = link.copyTitle;
    return link;
  };
  // "expires in 5 minutes" goes stale: renewed every half minute until the link has expired.
  if (access.expiresAt !== null) {
    const clock = setInterval(() => {
      if (render().expiry === "expired") clearInterval(clock);
    }, 30_000);
  }
  button.addEventListener("click", async () => {
    const link = render();
    await navigator.clipboard.writeText(location.href).then(
      () => {
        copied = link.copied;
        render();
      },
      () => window.prompt(link.copyTitle, location.href),
    );
    setTimeout(() => {
      copied = null;
      render();
    }, 2_000);
  });
  render();
}

/** The History button. The panel's code loads on first use (client/history.ts): most visits never open it. */
function wireHistoryButton(options: HistoryOptions): void {
  const button = element<HTMLButtonElement>("history");
  let panel: Promise<HistoryPanel> | null = null;
  button.addEventListener("click", () => {
    panel ??= import("./history").then(({ createHistory }) => createHistory(options));
    panel.then(
      (history) => history.toggle(),
      (error) => {
        // Offline with the chunk not cached, or replaced by a newer deploy: say so, try again on the next click.
        console.warn("edgedoc: the history panel did not load", error);
        panel = null;
        button.textContent = "History unavailable";
        setTimeout(() => (button.textContent = "History"), 2_000);
      },
    );
  });
}

start();
