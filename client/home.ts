/**
 * The home page (`/`): the documents this browser has opened, newest first (client/recent.ts),
 * each with its title, when it was last opened here and when it was last edited, and the New
 * document button. Plain DOM and no editor code, so it shows at once.
 *
 * Titles come from documents anyone with a link can edit: they go into the page as text only.
 */
import type { DocumentInfo } from "../worker/documents";
import { readClaims } from "./access";
import { forgetRecent, isRecentKey, listRecent, type RecentDocument } from "./recent";
import { documentPath } from "./route";
import { relativeTime } from "./time";

/** The filter box shows once the list is longer than this. */
export const FILTER_AFTER = 8;
/**
 * Most documents asked for their last edit in one page view: each question wakes the
 * document's room, and the API's rate limit (wrangler.toml) is shared with the open editors.
 */
export const MAX_EDIT_LOOKUPS = 20;
/** A last-edit question unanswered by then is dropped; the entry keeps what this browser knows. */
const LOOKUP_TIMEOUT_MS = 10_000;

const byTestId = <T extends HTMLElement>(root: ParentNode, testId: string) => root.querySelector<T>(`[data-testid="${testId}"]`)!;

/** Replaces the page with the home page (the `#home` template of index.html). */
export function showHome(): void {
  const template = document.querySelector<HTMLTemplateElement>("template#home")!;
  document.body.replaceChildren(template.content.cloneNode(true));
  const filter = byTestId<HTMLInputElement>(document, "recent-filter");
  const list = byTestId<HTMLOListElement>(document, "recent-list");
  const message = byTestId<HTMLParagraphElement>(document, "recent-message");
  const lastEdits = new LastEdits();

  const render = () => {
    const entries = listRecent(localStorage);
    filter.hidden = entries.length <= FILTER_AFTER;
    const query = filter.hidden ? "" : filter.value.trim().toLowerCase();
    const shown = entries.filter((entry) => entry.title.toLowerCase().includes(query) || entry.name.toLowerCase().includes(query));
    const now = Date.now();
    const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    list.replaceChildren(...shown.map((entry) => renderEntry(entry, now, format)));
    message.textContent =
      entries.length === 0
        ? "No documents yet. The documents you open in this browser are listed here."
        : shown.length === 0
          ? `No document title contains “${filter.value.trim()}”.`
          : "";
    lastEdits.watch(list, shown);
  };

  filter.addEventListener("input", render);
  list.addEventListener("click", (event) => {
    const remove = (event.target as Element).closest<HTMLButtonElement>('[data-testid="remove-recent"]');
    if (!remove) return;
    forgetRecent(localStorage, remove.closest<HTMLElement>('[data-testid="recent"]')!.dataset.name!);
    render();
  });
  // Another tab opened, renamed or removed a document; or this page came back from the
  // back-forward cache with the list as it was; or the network is back for the last edits.
  window.addEventListener("storage", (event) => isRecentKey(event.key) && render());
  window.addEventListener("pageshow", (event) => event.persisted && render());
  window.addEventListener("online", render);
  render();
}

function renderEntry(entry: RecentDocument, now: number, format: Intl.RelativeTimeFormat): HTMLLIElement {
  const item = element("li", "recent");
  item.dataset.testid = "recent";
  item.dataset.name = entry.name;
  const link = element("a", "recent-open");
  link.href = documentPath(entry.name, entry.token);
  const title = element("span", "recent-title", entry.title);
  title.dataset.testid = "recent-title";
  title.title = entry.title;
  const details = element("span", "recent-details");
  details.append(element("span", "recent-name", entry.name), " · opened ", timeElement(entry.openedAt, now, format));
  const edited = element("span", "recent-edited");
  edited.dataset.testid = "recent-edited";
  details.append(edited);
  link.append(title, details);
  for (const note of notes(entry, now)) {
    const badge = element("span", "recent-note", note.text);
    badge.dataset.testid = "recent-note";
    badge.title = note.title;
    link.append(badge);
  }

  const remove = element("button", "recent-remove", "Remove");
  remove.type = "button";
  remove.dataset.testid = "remove-recent";
  remove.title = "Remove from this list. The document itself is kept: its link still opens it.";
  remove.setAttribute("aria-label", `Remove “${entry.title}” from this list`);
  item.append(link, remove);
  return item;
}

/** What to say beside an entry: edits not confirmed, and what its link grants when that is less than usual. */
function notes(entry: RecentDocument, now: number): { text: string; title: string }[] {
  const notes = [];
  if (entry.unconfirmed) {
    notes.push({ text: "Unsaved edits", title: "Edits made in this browser were not yet confirmed by the server. Open it online to send them." });
  }
  const claims = entry.token === null ? null : readClaims(entry.token);
  if (typeof claims?.exp === "number" && claims.exp * 1000 <= now) {
    notes.push({ text: "Link expired", title: "The link this browser kept for it has expired: ask for a new one." });
  } else if (claims?.mode === "read") {
    notes.push({ text: "Read-only", title: "Opened with a read-only link." });
  }
  return notes;
}

/**
 * When each listed document was last edited, from the API (`GET /api/docs/:name`, with the
 * entry's token). Asked for only once an entry is on screen, and for {@link MAX_EDIT_LOOKUPS}
 * entries at most; offline, refused or failed, an entry shows what this browser knows.
 */
class LastEdits {
  /** Per name: ms since the epoch, null when it was never edited, undefined while asked. */
  private readonly known = new Map<string, number | null | undefined>();
  private observer: IntersectionObserver | null = null;

  /** Shows what is known for the entries in `list`, and asks for those that come into view. */
  watch(list: HTMLOListElement, entries: RecentDocument[]): void {
    this.observer?.disconnect();
    const byName = new Map(entries.map((entry) => [entry.name, entry]));
    this.observer = new IntersectionObserver((seen) => {
      for (const { target, isIntersecting } of seen) {
        const entry = byName.get((target as HTMLElement).dataset.name!);
        if (!isIntersecting || !entry || this.known.has(entry.name) || this.known.size >= MAX_EDIT_LOOKUPS || !navigator.onLine) continue;
        this.observer?.unobserve(target);
        void this.ask(entry).then(() => this.show(list));
      }
    });
    for (const item of list.querySelectorAll<HTMLElement>('[data-testid="recent"]')) {
      if (!this.known.has(item.dataset.name!)) this.observer.observe(item);
    }
    this.show(list);
  }

  private async ask({ name, token }: RecentDocument): Promise<void> {
    this.known.set(name, undefined);
    try {
      const response = await fetch(`/api/docs/${encodeURIComponent(name)}`, {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
      });
      if (!response.ok) return;
      const { lastUpdateAt } = (await response.json()) as Partial<DocumentInfo>;
      const at = typeof lastUpdateAt === "string" ? Date.parse(lastUpdateAt) : NaN;
      this.known.set(name, Number.isNaN(at) ? null : at);
    } catch {
      // Offline, or the server is unreachable: the entry shows what this browser knows.
    }
  }

  private show(list: HTMLOListElement): void {
    const now = Date.now();
    const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
    for (const item of list.querySelectorAll<HTMLElement>('[data-testid="recent"]')) {
      const at = this.known.get(item.dataset.name!);
      const edited = byTestId(item, "recent-edited");
      if (at === undefined) edited.replaceChildren();
      else if (at === null) edited.replaceChildren(" · no edits yet");
      else edited.replaceChildren(" · edited ", timeElement(at, now, format));
    }
  }
}

function timeElement(at: number, now: number, format: Intl.RelativeTimeFormat): HTMLTimeElement {
  const time = element("time", "", relativeTime(at, now, format));
  time.dateTime = new Date(at).toISOString();
  time.title = new Date(at).toLocaleString();
  return time;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const created = document.createElement(tag);
  if (className) created.className = className;
  if (text !== undefined) created.textContent = text;
  return created;
}
