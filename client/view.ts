/**
 * Rendering of the header's live parts: connection status and who is here.
 */
import { peopleIn, type Person } from "./presence";

export interface ConnectionState {
  online: boolean;
  status: "connected" | "connecting" | "disconnected";
  synced: boolean;
  /** Local edits the server has not confirmed yet. */
  unconfirmed: boolean;
  /** The link only allows reading. */
  readOnly: boolean;
  /** Why the server ended the session for good (the provider stopped reconnecting), if it did. */
  stoppedReason: string | null;
  /** How the connection goes: WebSockets, or the HTTP fallback when they are blocked (client/fallback.ts). */
  transport: "websocket" | "http";
}

/** What the status adds on the fallback, and its tooltip. */
const FALLBACK_NOTE = " · over HTTP";
const FALLBACK_TITLE = "WebSockets are blocked on this network, so edits travel by ordinary HTTP requests: a little slower, just as safe.";

/** One word for the state (also a CSS class and what tests read), and a sentence for people. */
export function describeConnection(state: ConnectionState): { kind: string; text: string } {
  const pending = state.unconfirmed ? " · unsaved changes" : "";
  if (state.stoppedReason) return { kind: "stopped", text: `Disconnected: ${state.stoppedReason}${pending}` };
  if (state.readOnly && state.status === "connected" && state.synced) return { kind: "read-only", text: "Connected · read-only" };
  if (!state.online) return { kind: "offline", text: `Offline · edits kept in this browser${pending}` };
  if (state.status === "connected" && state.synced) {
    return state.unconfirmed ? { kind: "saving", text: "Connected · saving…" } : { kind: "saved", text: "Connected · all changes saved" };
  }
  if (state.status === "disconnected") return { kind: "reconnecting", text: `Reconnecting…${pending}` };
  return { kind: "connecting", text: `Connecting…${pending}` };
}

export function renderStatus(target: HTMLElement, state: ConnectionState): void {
  const { kind, text } = describeConnection(state);
  const onFallback = state.transport === "http" && kind !== "stopped";
  target.textContent = onFallback ? `${text}${FALLBACK_NOTE}` : text;
  target.title = onFallback ? FALLBACK_TITLE : "";
  target.dataset.state = kind;
  target.dataset.transport = state.transport;
}

/** A person's pill text: "Ada", "Ada (you)", "Ada · 3 tabs". */
export function personLabel({ name, self, tabs }: Person): string {
  return `${name}${self ? " (you)" : ""}${tabs > 1 ? ` · ${tabs} tabs` : ""}`;
}

/**
 * The "who is here" list: a pill per person (not per tab), in their colour. Names go in as
 * text, and the colour, a checked hex colour (client/presence.ts), as a CSS variable.
 */
export function renderPresence(list: HTMLElement, states: ReadonlyMap<number, unknown>, selfId: number): void {
  list.replaceChildren(
    ...peopleIn(states, selfId).map((person) => {
      const item = document.createElement("li");
      item.textContent = personLabel(person);
      item.title = item.textContent;
      item.style.setProperty("--person-color", person.color);
      return item;
    }),
  );
}
