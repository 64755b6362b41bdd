/**
 * The History panel: the document's versions, newest first, a read-only preview of one with its
 * differences against the current text, Restore, and Save version. The server takes versions
 * by itself (when the last editor leaves, and every few minutes of editing) and when someone
 * names one; a restore is an ordinary edit on the server, so the editor receives it live like
 * anyone's and the panel only has to step back to the list.
 *
 * A version's name, authors and text are remote input: they reach the page as text, never as
 * HTML. This module loads when someone first opens the panel, and @codemirror/merge, which draws
 * the differences, when they first preview a version: opening a document pays for neither.
 */
import { defaultHighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { EditorState, type ChangeSpec, type Extension } from "@codemirror/state";
import { EditorView, lineNumbers } from "@codemirror/view";
import type * as Y from "yjs";
import type { VersionInfo, VersionReason } from "../worker/documents";
import { MAX_VERSION_NAME_CHARS } from "../worker/limits";
import type { LinkAccess } from "./access";
import { LANGUAGES, type Language } from "./editor";
import { apiUrl } from "./info";
import { relativeTime } from "./time";

export interface HistoryOptions {
  name: string;
  access: LinkAccess;
  /** The live shared text, which previews are compared with. */
  text: Y.Text;
  language: () => Language;
  /** Whether this browser has edits the server has not confirmed yet (client/saved.ts). */
  unconfirmed: () => boolean;
}

/** How long Save version waits for this browser's edits to reach the server, so the version holds them. */
const SAVE_WAIT_MS = 5_000;

const REASON_LABELS: Record<VersionReason, { label: string; title: string }> = {
  named: { label: "Named version", title: "Saved by name" },
  "session-end": { label: "Autosave", title: "Taken when the last editor left" },
  interval: { label: "Autosave", title: "Taken while editing went on" },
  "before-restore": { label: "Before restore", title: "The text just before a restore replaced it" },
};

/** What the list shows for a version: its name, or what kind of automatic version it is. */
export function versionLabel(version: VersionInfo): string {
  return version.name ?? REASON_LABELS[version.reason].label;
}

/** The server's list, keeping only entries shaped as expected: anything else is dropped, not drawn. */
export function parseVersions(json: unknown): VersionInfo[] | null {
  return Array.isArray(json) ? json.filter(isVersionInfo) : null;
}

function isVersionInfo(value: unknown): value is VersionInfo {
  const version = value as Partial<VersionInfo> | null;
  return (
    typeof version === "object" &&
    version !== null &&
    Number.isSafeInteger(version.id) &&
    typeof version.createdAt === "string" &&
    !Number.isNaN(Date.parse(version.createdAt)) &&
    (version.name === null || typeof version.name === "string") &&
    typeof version.reason === "string" &&
    Object.hasOwn(REASON_LABELS, version.reason) &&
    Array.isArray(version.authors) &&
    version.authors.every((author) => typeof author === "string")
  );
}

/**
 * CodeMirror changes for a Y.Text delta: retains and deletes walk the old text, inserts do not,
 * and CodeMirror reads every position of one transaction against the old text too.
 */
function changesFromDelta(delta: readonly { insert?: unknown; retain?: number; delete?: number }[]): ChangeSpec[] {
  const changes: ChangeSpec[] = [];
  let position = 0;
  for (const op of delta) {
    if (op.retain !== undefined) position += op.retain;
    else if (op.delete !== undefined) {
      changes.push({ from: position, to: position + op.delete });
      position += op.delete;
    } else if (typeof op.insert === "string") changes.push({ from: position, insert: op.insert });
  }
  return changes;
}

type Failure = { failed: string };

/**
 * A sentence for a failed call, from its status (null: no answer at all) and the server's
 * `detail`, which says best why a version was refused (the history is full, 507; the document
 * was never written, 404; a restore would make it too large, 413).
 */
function failureReason(status: number | null, detail: string | null): string {
  switch (status) {
    case null:
      return "the server cannot be reached; check your connection and try again";
    case 401:
      return "this link has expired or is not valid";
    case 403:
      return "this link does not allow it";
    case 429:
      return "too many requests; wait a few seconds and try again";
    case 404:
      return detail ?? "that version no longer exists";
    default:
      return detail ?? `the server answered ${status}`;
  }
}

/** A fetch that never throws: the response if it is OK, else why not, as a sentence beginning with `action`. */
async function call(url: string, init: RequestInit, action: string): Promise<Response | Failure> {
  const response = await fetch(url, init).catch(() => null);
  if (response?.ok) return response;
  let detail: string | null = null;
  if (response) {
    // The server's errors are JSON `{ error, detail }` (docs/api.md); the detail is shown as text.
    const body = (await response.json().catch(() => null)) as { detail?: unknown } | null;
    if (typeof body?.detail === "string" && body.detail.length > 0) detail = body.detail.slice(0, 200);
  }
  return { failed: `${action}: ${failureReason(response?.status ?? null, detail)}.` };
}

const failed = (answer: Response | Failure): answer is Failure => "failed" in answer;

/** Resolves true once `unconfirmed()` is false, or false after `timeoutMs`. */
async function settled(unconfirmed: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (unconfirmed()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

export interface HistoryPanel {
  /** Opens the panel on a fresh list, or closes it. */
  toggle(): void;
}

/** The panel in index.html, for the header's History button (client/main.ts). */
export function createHistory(options: HistoryOptions): HistoryPanel {
  const { name, access, text } = options;
  const panel = document.querySelector<HTMLElement>('[data-testid="history-panel"]')!;
  const part = <T extends HTMLElement = HTMLElement>(testId: string) => document.querySelector<T>(`[data-testid="${testId}"]`)!;
  const openButton = part<HTMLButtonElement>("history");
  const title = part("history-title");
  const message = part("history-message");
  const list = part("versions");
  const diff = part("version-diff");
  const saveButton = part<HTMLButtonElement>("save-version");
  const restoreButton = part<HTMLButtonElement>("restore");
  const saveForm = part<HTMLFormElement>("save-version-form");
  const nameInput = part<HTMLInputElement>("version-name");
  const readOnly = access.mode === "read";
  // The server refuses these to a read-only link anyway; the panel does not offer them.
  saveButton.hidden = readOnly;
  restoreButton.hidden = readOnly;
  nameInput.maxLength = MAX_VERSION_NAME_CHARS;

  const url = (suffix: string) => apiUrl(name, `/versions${suffix}`, access.token);
  const say = (sentence: string) => (message.textContent = sentence);

  /** The version being previewed, and how to stop its live preview. */
  let previewed: VersionInfo | null = null;
  let closePreview = () => {};
  /** Bumped by every navigation, so an answer that arrives after the person moved on is dropped. */
  let generation = 0;

  async function refresh(): Promise<void> {
    const asked = generation;
    list.setAttribute("aria-busy", "true");
    const answer = await call(url(""), {}, "The history could not be loaded");
    const versions = failed(answer) ? null : parseVersions(await answer.json().catch(() => null));
    list.removeAttribute("aria-busy");
    if (asked !== generation) return;
    if (failed(answer)) say(answer.failed);
    else if (versions === null) say("The history could not be loaded: the server's answer was not understood.");
    else renderList(versions);
  }

  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  /** "5 minutes ago" goes stale while the panel stays open: renewed every half minute, in place (focus stays put). */
  let clock: ReturnType<typeof setInterval> | undefined;
  const renewTimes = () => {
    const now = Date.now();
    for (const time of list.querySelectorAll("time")) time.textContent = relativeTime(Date.parse(time.dateTime), now, format);
  };

  function renderList(versions: VersionInfo[]): void {
    const now = Date.now();
    list.replaceChildren(
      ...versions.map((version) => {
        const item = document.createElement("li");
        item.dataset.testid = "version";
        item.dataset.reason = version.reason;
        const button = document.createElement("button");
        button.type = "button";
        button.title = version.name === null ? REASON_LABELS[version.reason].title : `Named version: ${version.name}`;
        const label = Object.assign(document.createElement("span"), { className: "version-label", textContent: versionLabel(version) });
        const time = Object.assign(document.createElement("time"), {
          dateTime: version.createdAt,
          title: new Date(version.createdAt).toLocaleString(),
          textContent: relativeTime(Date.parse(version.createdAt), now, format),
        });
        button.append(label, time);
        if (version.authors.length > 0) {
          button.append(Object.assign(document.createElement("span"), { className: "version-authors", textContent: `by ${version.authors.join(", ")}` }));
        }
        button.addEventListener("click", () => void preview(version));
        item.append(button);
        return item;
      }),
    );
    if (versions.length === 0) {
      const empty = Object.assign(document.createElement("li"), {
        className: "versions-empty",
        textContent: "No versions yet. One is taken when everyone has left, every few minutes while you edit, and when you save one.",
      });
      list.append(empty);
    }
  }

  function showList(): void {
    generation += 1;
    closePreview();
    previewed = null;
    panel.dataset.view = "list";
    title.textContent = "History";
    title.removeAttribute("title");
  }

  async function preview(version: VersionInfo): Promise<void> {
    showList();
    const asked = generation;
    previewed = version;
    panel.dataset.view = "preview";
    title.textContent = versionLabel(version);
    title.title = new Date(version.createdAt).toLocaleString();
    restoreButton.disabled = false;
    say("Loading…");
    const [answer, merge, language] = await Promise.all([
      call(url(`/${version.id}/text`), {}, "This version could not be loaded"),
      import("@codemirror/merge").catch(() => null),
      LANGUAGES[options.language()]().catch((): Extension => []),
    ]);
    const versionText = failed(answer) ? answer : await answer.text().catch(() => null);
    if (asked !== generation) return;
    if (versionText === null) return void say("This version could not be loaded: the connection dropped. Try again.");
    if (typeof versionText !== "string") return void say(versionText.failed);
    if (merge === null) return void say("The preview could not be shown: its code did not load. Check your connection and try again.");

    // The current text, following every edit while the preview is open: the differences drawn
    // are always what a restore would change now.
    const view = new EditorView({
      parent: diff,
      state: EditorState.create({
        doc: text.toString(),
        extensions: [
          lineNumbers(),
          EditorView.lineWrapping,
          EditorState.readOnly.of(true),
          EditorView.editable.of(false),
          language,
          syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
          merge.unifiedMergeView({ original: versionText, mergeControls: false, collapseUnchanged: { margin: 3, minSize: 6 } }),
        ],
      }),
    });
    const follow = (event: Y.YTextEvent) => view.dispatch({ changes: changesFromDelta(event.delta) });
    text.observe(follow);
    closePreview = () => {
      text.unobserve(follow);
      view.destroy();
      closePreview = () => {};
    };
    say(merge.getChunks(view.state)?.chunks.length === 0 ? "Same as the current text." : "");
  }

  async function restore(): Promise<void> {
    const version = previewed;
    if (version === null) return;
    restoreButton.disabled = true;
    say("Restoring…");
    const answer = await call(url(`/${version.id}/restore`), { method: "POST" }, "Not restored");
    restoreButton.disabled = false;
    if (previewed !== version) return;
    if (failed(answer)) return void say(answer.failed);
    const { changed } = ((await answer.json().catch(() => null)) ?? {}) as { changed?: unknown };
    showList();
    // The server applied the restore as an edit; the editor receives it like anyone's.
    say(changed === false ? "The text already matched that version." : `Restored “${versionLabel(version)}”. The text before it is kept as “Before restore”.`);
    await refresh();
  }

  async function saveVersion(): Promise<void> {
    const versionName = nameInput.value.trim();
    if (versionName.length === 0) return void say("Give the version a name.");
    const confirm = part<HTMLButtonElement>("save-version-confirm");
    confirm.disabled = true;
    try {
      // A version holds what the server has: edits still on their way would be missing from it.
      say("Saving…");
      if (!(await settled(options.unconfirmed, SAVE_WAIT_MS))) {
        return void say("Not saved: your latest edits have not reached the server yet. Try again once they are saved.");
      }
      const answer = await call(
        url(""),
        { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: versionName }) },
        "Not saved",
      );
      if (failed(answer)) return void say(answer.failed);
      saveForm.hidden = true;
      nameInput.value = "";
      say(`Saved “${versionName}”.`);
      if (previewed === null) await refresh();
    } finally {
      confirm.disabled = false;
    }
  }

  function open(): void {
    panel.hidden = false;
    openButton.setAttribute("aria-expanded", "true");
    clearInterval(clock);
    clock = setInterval(renewTimes, 30_000);
    say("");
    showList();
    void refresh();
  }

  function close(): void {
    showList();
    clearInterval(clock);
    panel.hidden = true;
    openButton.setAttribute("aria-expanded", "false");
    openButton.focus();
  }

  part("history-close").addEventListener("click", close);
  part("history-back").addEventListener("click", () => {
    say("");
    showList();
    void refresh();
  });
  restoreButton.addEventListener("click", () => void restore());
  saveButton.addEventListener("click", () => {
    saveForm.hidden = !saveForm.hidden;
    if (!saveForm.hidden) nameInput.focus();
  });
  part("save-version-cancel").addEventListener("click", () => {
    saveForm.hidden = true;
    nameInput.value = "";
  });
  saveForm.addEventListener("submit", (event) => {
    event.preventDefault(); // no navigation: the form only gives Enter-to-save
    void saveVersion();
  });
  // Escape steps back: out of the name field, out of the preview, then out of the panel.
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (saveForm.contains(event.target as Node)) part("save-version-cancel").click();
    else if (previewed !== null) part("history-back").click();
    else close();
  });
  return { toggle: () => (panel.hidden ? open() : close()) };
}
