/**
 * Rendering of the header's live parts: connection status and who is here.
 */

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
}

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
  target.textContent = text;
  target.dataset.state = kind;
}

interface PresenceState {
  user?: { name?: unknown; color?: unknown };
}

export function renderPresence(list: HTMLElement, states: Map<number, PresenceState>, selfId: number): void {
  const people = [...states.entries()]
    .filter(([, state]) => typeof state.user?.name === "string")
    .sort(([a], [b]) => (a === selfId ? -1 : b === selfId ? 1 : a - b));
  list.replaceChildren(
    ...people.map(([clientId, state]) => {
      const item = document.createElement("li");
      const name = String(state.user!.name);
      const color = typeof state.user!.color === "string" ? state.user!.color : "#888";
      item.textContent = clientId === selfId ? `${name} (you)` : name;
      item.title = item.textContent;
      item.style.setProperty("--person-color", color);
      item.dataset.clientId = String(clientId);
      return item;
    }),
  );
}
