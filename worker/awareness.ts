/**
 * Presence: who is in the room, keyed by awareness client ID, and which socket controls each ID.
 *
 * Pure logic with no runtime imports; the room saves each socket's share into that socket's
 * attachment ({@link PresenceRegistry.heldBy}) and restores it on wake, so presence survives
 * hibernation. Rules:
 * - y-protocols' clock rule: a state is accepted only with a newer clock; a removal (null
 *   state) with the same or a newer clock.
 * - Ownership: a socket controls the client IDs it introduced. Entries for an ID that another
 *   socket controls are dropped. Stock providers re-broadcast every state they receive, so such
 *   entries are normal traffic, not an attack, and the socket is not closed for them.
 * - Closing a socket removes exactly its IDs.
 * - Refused entries leave no trace: an entry dropped by any rule is neither relayed nor
 *   recorded, so no clock the room keeps (held states, removal tombstones) moves for it.
 * - Returns are seen: a client that comes back at the clock its removal was announced with (a
 *   stock provider re-sends its state unchanged when it reconnects), or below it (a removal
 *   spoofed under a high clock), would be ignored by every peer that saw the removal, since
 *   y-protocols takes a state only with a newer clock. The sender is sent that removal back ({@link PresenceUpdate.renew}); y-protocols never lets a
 *   remote removal drop its local state and answers it with the state under the next clock,
 *   which every peer takes.
 * - Claims: with tokens, a client ID belongs to the owner (token subject) whose socket first
 *   set a state for it, and only that owner may bring it back after its socket closed. The
 *   room keeps claims through hibernation (attachments) and eviction (storage, via `onClaims`).
 *   An owner keeps at most {@link MAX_CLAIMS_PER_OWNER}: past that its own oldest claim is
 *   forgotten, never another owner's. The room keeps at most {@link MAX_PRESENCE_CLAIMS}: past
 *   that the oldest claim of the owner holding the most is forgotten, so owners with few claims
 *   (people) keep theirs however many others arrive. A socket claims at most
 *   {@link MAX_CLAIMS_PER_SOCKET} (IDs past that are shown but not claimed).
 * - Cost: entries are taken one at a time and checked against the socket's byte budget before
 *   their JSON is decoded, and entries that would be dropped are never decoded, so a frame of
 *   millions of entries costs time linear in its size and memory bounded by the budget.
 */
import {
  AWARENESS_TIMEOUT_MS,
  CloseCode,
  ProtocolError,
  decodeAwarenessState,
  type AwarenessEntry,
  type WireAwarenessEntry,
} from "./protocol";
import {
  MAX_CLAIMS_PER_OWNER,
  MAX_CLAIMS_PER_SOCKET,
  MAX_PRESENCE_BYTES_PER_SOCKET,
  MAX_PRESENCE_CLAIMS,
  MAX_PRESENCE_TOMBSTONES,
  PRESENCE_ENTRY_OVERHEAD_BYTES,
  QUIET_RENEWAL_INTERVAL_MS,
} from "./limits";

/** One client's latest awareness state as the room holds it. */
export interface PresenceRecord {
  clock: number;
  /** JSON text exactly as the client sent it. */
  state: string;
  /** When the room last accepted a state for this client (ms since epoch). */
  lastSeen: number;
  /**
   * A quiet client's: when the room first held a state of it (kept through its changes).
   * Renewing sockets are shown its states under their clock raised by one for every
   * `QUIET_RENEWAL_INTERVAL_MS` since ({@link shownClock}): a renewal at least that long after
   * the last is always under a newer clock, and nothing needs saving at each renewal.
   */
  shownSince?: number;
}

/** The presence one socket controls, keyed by client ID; kept in the socket's attachment. */
export type SocketPresence = Record<number, PresenceRecord>;

/**
 * What an awareness update changed: the entries to relay to everyone, and the removals to send
 * back to the sender alone so that its provider re-announces those clients under newer clocks.
 */
export interface PresenceUpdate<Socket = unknown> {
  /** What changed, under the clocks the sender sent: as quiet clients are shown it (the sender's echo is its save confirmation). */
  changes: AwarenessEntry[];
  /** The same changes as renewing sockets are shown them (renewed states under their raised clocks); `changes` itself when none is raised. */
  shown: AwarenessEntry[];
  renew: AwarenessEntry[];
  /**
   * Other sockets holding IDs a quiet client just sent (its own, since quiet clients send no
   * echoes): the client came back on a new connection while the room still holds its old one,
   * which may be gone without a close. Empty for renewing senders, whose echoes name others' IDs.
   */
  heldElsewhere: Socket[];
}

/**
 * A change to the kept claims, in order: a client ID with its new owner, or with `null` where
 * the claim was forgotten (the room deletes it from storage).
 */
export type ClaimChange = [clientId: number, owner: string | null];

/** What a sweep found: removals to announce, and the sockets that lost clients. */
export interface SweepResult<Socket> {
  removed: AwarenessEntry[];
  changedSockets: Socket[];
}

export class PresenceRegistry<Socket> {
  private readonly owners = new Map<number, Socket>();
  private readonly bySocket = new Map<Socket, Map<number, PresenceRecord>>();
  /**
   * Clocks of removed clients. A state older than its removal is a stale echo from another
   * client and must not bring the client back. The same clock is allowed: a provider that
   * reconnects re-sends its state unchanged.
   */
  private readonly removedClocks = new Map<number, number>();
  /** Which owner (token subject) claimed each client ID, oldest claim first. */
  private readonly claims = new Map<number, string>();
  /** Each owner's claimed client IDs, oldest first; see {@link MAX_CLAIMS_PER_OWNER}. */
  private readonly claimsByOwner = new Map<string, Set<number>>();
  /** How many client IDs each socket has claimed; see {@link MAX_CLAIMS_PER_SOCKET}. */
  private readonly claimsBySocket = new Map<Socket, number>();
  /** Sockets of quiet clients (docs/protocol.md, "Quiet clients"): their presence is kept while they are open, never swept. */
  private readonly quiet = new Set<Socket>();

  /**
   * @param onClaims called with the claims an update made and forgot (once per update, and
   * after a restore that forgot some), so the room can keep the same in storage.
   */
  constructor(private readonly onClaims: (changes: ClaimChange[]) => void = () => {}) {}

  /** Keeps `socket`'s presence while it is open: a quiet client does not renew it (docs/protocol.md). */
  keepWhileOpen(socket: Socket): void {
    this.quiet.add(socket);
  }

  /** Restores a socket's presence from its attachment after the room woke. */
  restore(socket: Socket, held: SocketPresence, owner?: string, quiet = false): void {
    if (quiet) this.keepWhileOpen(socket);
    const records = new Map<number, PresenceRecord>();
    const changes: ClaimChange[] = [];
    for (const [id, record] of Object.entries(held)) {
      records.set(Number(id), record);
      this.owners.set(Number(id), socket);
      // Already claimed by this owner: kept where it is, so a wake does not reorder claims.
      if (owner !== undefined && this.claims.get(Number(id)) !== owner) this.remember(Number(id), owner, changes);
    }
    this.bySocket.set(socket, records);
    // What it held counts against what it may claim, as before the wake (an echo must not claim).
    if (owner !== undefined) this.claimsBySocket.set(socket, records.size);
    this.report(changes);
  }

  /**
   * Restores claims the room kept in storage, oldest first. Storage holds what memory held, so
   * normally nothing is forgotten; rows kept under older rules (no cap per owner) are trimmed
   * to the current ones, and the trim reported.
   */
  restoreClaims(claims: Iterable<[clientId: number, owner: string]>): void {
    const changes: ClaimChange[] = [];
    for (const [clientId, owner] of claims) this.remember(clientId, owner, changes);
    this.report(changes.filter(([, owner]) => owner === null));
  }

  /**
   * Forgets every claim, as the room's storage just did (DELETE, expiry: nobody is connected
   * then). Kept in memory, a claim the storage no longer holds would never be written again
   * (its owner re-sending its state changes nothing), and after the next wake another owner's
   * echo could take the ID and lock its owner's own states out.
   */
  forgetClaims(): void {
    this.claims.clear();
    this.claimsByOwner.clear();
    this.claimsBySocket.clear();
  }

  /**
   * Applies an awareness update sent by `socket`: returns the entries that changed presence, to
   * be relayed, and the removals to send back to `socket` (see {@link PresenceUpdate}). Throws {@link ProtocolError} (and changes nothing) when the
   * socket's states would exceed {@link MAX_PRESENCE_BYTES_PER_SOCKET}, or when an entry (or
   * the rest of the update) does not decode.
   */
  apply(socket: Socket, entries: Iterable<WireAwarenessEntry>, now: number, owner?: string): PresenceUpdate<Socket> {
    const held = new Map(this.bySocket.get(socket));
    let heldBytes = presenceBytes(held);
    // Keyed by client ID: an update naming one client many times changes it once.
    const changes = new Map<number, AwarenessEntry>();
    // IDs sent under a clock older than their removal, by that removal's clock (see below).
    const behindRemoval = new Map<number, number>();
    // Renewed IDs that changed, by how much their clock is raised for everyone but the sender.
    const raisedBy = new Map<number, number>();
    const heldElsewhere = new Set<Socket>();
    for (const entry of entries) {
      const holder = this.owners.get(entry.clientId);
      if (holder !== undefined && holder !== socket) {
        if (this.quiet.has(socket)) heldElsewhere.add(holder);
        continue;
      }
      const claimedBy = this.claims.get(entry.clientId);
      if (owner !== undefined && claimedBy !== undefined && claimedBy !== owner) continue;
      const current = held.get(entry.clientId);
      const floor = current?.clock ?? (this.removedClocks.get(entry.clientId) ?? 0) - 1;
      // A removal may repeat the current clock; a state must be newer. Either way, nothing
      // older than the floor is decoded.
      if (entry.clock < floor || (entry.clock === floor && current === undefined)) {
        // Behind a removal the room announced (a spoofed one under a high clock, say): its
        // owner would never be shown again below that clock. Sent that removal back, a stock
        // provider whose own ID it is answers with its state under the next clock; anyone
        // else just drops a state it held for a departed client.
        const removedAt = this.removedClocks.get(entry.clientId);
        if (current === undefined && removedAt !== undefined && entry.clock < removedAt) behindRemoval.set(entry.clientId, removedAt);
        continue;
      }
      // Back at its removal's clock from a socket that already holds an ID of its own: not a
      // provider reconnecting (it sends its own state first, on a fresh socket) but a peer's
      // echo of the state the removal ended, which arrived after it. Taken, it would hold the ID
      // against its owner's return, and show the owner its own state from another socket (a
      // quiet client, which never renews, would take it for the echo confirming its edits).
      if (current === undefined && entry.clock === this.removedClocks.get(entry.clientId) && held.size > 0) continue;
      const afterBytes = heldBytes - (current ? recordBytes(current.state) : 0) + entry.state.length + PRESENCE_ENTRY_OVERHEAD_BYTES;
      if (afterBytes > MAX_PRESENCE_BYTES_PER_SOCKET) {
        throw new ProtocolError(
          CloseCode.messageTooBig,
          `awareness state too large: over ${MAX_PRESENCE_BYTES_PER_SOCKET} bytes per connection`,
        );
      }
      const state = decodeAwarenessState(entry.state);
      if (state === null) {
        if (current === undefined) continue;
        held.delete(entry.clientId);
        heldBytes -= recordBytes(current.state);
      } else {
        if (entry.clock === floor) continue;
        const shownSince = this.quiet.has(socket) ? { shownSince: current?.shownSince ?? now } : {};
        held.set(entry.clientId, { clock: entry.clock, state, lastSeen: now, ...shownSince });
        heldBytes = afterBytes;
      }
      changes.set(entry.clientId, { clientId: entry.clientId, clock: entry.clock, state });
      const raised = current === undefined ? 0 : shownClock(current, now) - current.clock;
      if (raised > 0) raisedBy.set(entry.clientId, raised);
    }
    const claimChanges: ClaimChange[] = [];
    const renew: AwarenessEntry[] = [];
    const claimsBefore = this.claimsBySocket.get(socket) ?? 0;
    let claimed = 0;
    for (const { clientId, clock, state } of changes.values()) {
      if (state === null) {
        // Peers were shown the raised clock: a removal below it would be lost on them.
        this.forget(clientId, clock + (raisedBy.get(clientId) ?? 0));
        continue;
      }
      // Back at the clock its removal went out with: peers that saw the removal ignore this state.
      if (!this.owners.has(clientId) && this.removedClocks.get(clientId) === clock) renew.push({ clientId, clock, state: null });
      this.owners.set(clientId, socket);
      if (owner !== undefined && !this.claims.has(clientId) && claimsBefore + claimed < MAX_CLAIMS_PER_SOCKET && !this.holdsClaimOf(held, owner, clientId)) {
        claimed++;
        this.remember(clientId, owner, claimChanges);
      }
    }
    for (const [clientId, clock] of behindRemoval) if (!changes.has(clientId)) renew.push({ clientId, clock, state: null });
    if (claimed > 0) this.claimsBySocket.set(socket, claimsBefore + claimed);
    this.report(claimChanges);
    this.bySocket.set(socket, held);
    const changed = [...changes.values()];
    const shown = raisedBy.size === 0 ? changed : changed.map((entry) => ({ ...entry, clock: entry.clock + (raisedBy.get(entry.clientId) ?? 0) }));
    return { changes: changed, shown, renew, heldElsewhere: [...heldElsewhere] };
  }

  /**
   * Whether a socket holding `held` already holds an ID other than `clientId` claimed by its
   * owner (one it brought back, claimed before): its claim is used, whether it made it now or
   * its owner did before.
   */
  private holdsClaimOf(held: Map<number, PresenceRecord>, owner: string, clientId: number): boolean {
    for (const id of held.keys()) if (id !== clientId && this.claims.get(id) === owner) return true;
    return false;
  }

  /**
   * Removes everything `socket` controls; returns the removals to announce, as quiet clients
   * and as renewing sockets are shown them (see {@link PresenceUpdate}).
   */
  removeSocket(socket: Socket, now: number): { removed: AwarenessEntry[]; shown: AwarenessEntry[] } {
    const held = this.bySocket.get(socket);
    this.bySocket.delete(socket);
    this.claimsBySocket.delete(socket);
    this.quiet.delete(socket);
    if (held === undefined) return { removed: [], shown: [] };
    const removed: AwarenessEntry[] = [];
    const shown: AwarenessEntry[] = [];
    for (const [clientId, record] of held) {
      // Remembered under the highest clock anyone was shown: a stale echo of it must not bring the client back.
      this.forget(clientId, shownClock(record, now));
      removed.push({ clientId, clock: record.clock, state: null });
      shown.push({ clientId, clock: shownClock(record, now), state: null });
    }
    return { removed, shown: shown.some((entry, i) => entry.clock !== removed[i]!.clock) ? shown : removed };
  }

  /**
   * Every quiet client's state as renewing sockets are shown it now: their renewal, since
   * y-protocols drops a remote state not renewed (under a newer clock) for 30 s, and a quiet
   * client does not renew its own. Sent to a socket at least `QUIET_RENEWAL_INTERVAL_MS` after
   * the last, each is under a newer clock ({@link shownClock}).
   */
  quietStatesShown(now: number): AwarenessEntry[] {
    const states: AwarenessEntry[] = [];
    for (const socket of this.quiet) states.push(...entriesOf(this.bySocket.get(socket) ?? new Map(), (record) => shownClock(record, now)));
    return states;
  }

  /** Whether any quiet client has a state to renew for renewing sockets. */
  anyQuietPresence(): boolean {
    for (const socket of this.quiet) if ((this.bySocket.get(socket)?.size ?? 0) > 0) return true;
    return false;
  }

  /** Removes clients not renewed within {@link AWARENESS_TIMEOUT_MS}; quiet clients' are kept while their socket is open. */
  sweep(now: number): SweepResult<Socket> {
    const result: SweepResult<Socket> = { removed: [], changedSockets: [] };
    for (const [socket, held] of this.bySocket) {
      if (this.quiet.has(socket)) continue;
      const before = held.size;
      for (const [clientId, record] of held) {
        if (now - record.lastSeen < AWARENESS_TIMEOUT_MS) continue;
        held.delete(clientId);
        this.forget(clientId, record.clock);
        result.removed.push({ clientId, clock: record.clock, state: null });
      }
      if (held.size !== before) result.changedSockets.push(socket);
    }
    return result;
  }

  /**
   * Every current state as a socket that joins or asks (query-awareness) is shown it: a
   * renewing socket (`raised`) sees renewed states under their raised clocks, a quiet client
   * under the clocks their senders sent. Quiet clients never see a raised clock, so a quiet
   * client back on a new connection is never shown its own state above its own clock (which
   * y-protocols would take over its local state). `viewer`'s own states come under the clocks
   * it sent, or are left out (`withOwn` false: its save confirmation is withheld).
   */
  statesFor(now: number, viewer?: Socket, withOwn = true, raised = true): AwarenessEntry[] {
    const all: AwarenessEntry[] = [];
    for (const [socket, held] of this.bySocket) {
      if (socket !== viewer) all.push(...entriesOf(held, raised ? (record) => shownClock(record, now) : undefined));
      else if (withOwn) all.push(...entriesOf(held));
    }
    return all;
  }

  /** The states `socket` holds. */
  statesOf(socket: Socket): AwarenessEntry[] {
    return entriesOf(this.bySocket.get(socket) ?? new Map());
  }

  /** How many client IDs `socket` controls. */
  heldCount(socket: Socket): number {
    return this.bySocket.get(socket)?.size ?? 0;
  }

  /** What `socket` controls, in the shape saved to its attachment. */
  heldBy(socket: Socket): SocketPresence {
    return Object.fromEntries(this.bySocket.get(socket) ?? []);
  }

  /** When the next client would time out, or null when nobody renewing is present. */
  nextExpiry(): number | null {
    let oldest = Infinity;
    for (const [socket, held] of this.bySocket) {
      if (this.quiet.has(socket)) continue;
      for (const { lastSeen } of held.values()) oldest = Math.min(oldest, lastSeen);
    }
    return oldest === Infinity ? null : oldest + AWARENESS_TIMEOUT_MS;
  }

  /**
   * Claims `clientId` for `owner` as its newest claim, then forgets claims past the caps:
   * the owner's own oldest past {@link MAX_CLAIMS_PER_OWNER}, and past
   * {@link MAX_PRESENCE_CLAIMS} the oldest of whichever owner holds the most. Appends what
   * changed to `changes`.
   */
  private remember(clientId: number, owner: string, changes: ClaimChange[]): void {
    this.unclaim(clientId);
    this.claims.set(clientId, owner);
    const mine = this.claimsByOwner.get(owner) ?? new Set<number>();
    this.claimsByOwner.set(owner, mine);
    mine.add(clientId);
    changes.push([clientId, owner]);
    if (mine.size > MAX_CLAIMS_PER_OWNER) this.dropOldestOf(mine, changes);
    if (this.claims.size > MAX_PRESENCE_CLAIMS) this.dropOldestOf(this.largestClaimSet(), changes);
  }

  /** The claims of the owner holding the most (the first such owner in claim order). */
  private largestClaimSet(): Set<number> {
    let largest = new Set<number>();
    for (const ids of this.claimsByOwner.values()) if (ids.size > largest.size) largest = ids;
    return largest;
  }

  private dropOldestOf(ids: Set<number>, changes: ClaimChange[]): void {
    const oldest = ids.values().next().value as number;
    this.unclaim(oldest);
    changes.push([oldest, null]);
  }

  private unclaim(clientId: number): void {
    const owner = this.claims.get(clientId);
    if (owner === undefined) return;
    this.claims.delete(clientId);
    const ids = this.claimsByOwner.get(owner)!;
    ids.delete(clientId);
    if (ids.size === 0) this.claimsByOwner.delete(owner);
  }

  private report(changes: ClaimChange[]): void {
    if (changes.length > 0) this.onClaims(changes);
  }

  private forget(clientId: number, clock: number): void {
    this.owners.delete(clientId);
    this.removedClocks.delete(clientId);
    this.removedClocks.set(clientId, clock);
    if (this.removedClocks.size > MAX_PRESENCE_TOMBSTONES) {
      const oldest = this.removedClocks.keys().next().value as number;
      this.removedClocks.delete(oldest);
    }
  }
}

function entriesOf(held: Map<number, PresenceRecord>, clockOf = (record: PresenceRecord) => record.clock): AwarenessEntry[] {
  return [...held].map(([clientId, record]) => ({ clientId, clock: clockOf(record), state: record.state }));
}

/** The clock renewing sockets are shown a state under at `now`: its own, raised for a quiet client's ({@link PresenceRecord.shownSince}). */
function shownClock(record: PresenceRecord, now: number): number {
  if (record.shownSince === undefined) return record.clock;
  return record.clock + Math.max(0, Math.floor((now - record.shownSince) / QUIET_RENEWAL_INTERVAL_MS));
}

function presenceBytes(held: Map<number, PresenceRecord>): number {
  let bytes = 0;
  for (const { state } of held.values()) bytes += recordBytes(state);
  return bytes;
}

/** What a held state counts against the budget: its JSON's UTF-8 bytes plus the entry overhead. */
function recordBytes(state: string): number {
  return utf8Length(state) + PRESENCE_ENTRY_OVERHEAD_BYTES;
}

function utf8Length(text: string): number {
  return utf8.encode(text).length;
}

const utf8 = new TextEncoder();
