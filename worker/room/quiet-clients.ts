/**
 * The room's side of quiet clients (docs/protocol.md, "Quiet clients"): whether they are still
 * there, and their presence renewed for the sockets that renew their own.
 *
 * Liveness. A quiet client
 * sends nothing while nothing changes, so its silence says nothing; instead it sends `ping`
 * after 30 s of sending nothing, which the runtime answers without waking the room, keeping the
 * time of its last answer (`getWebSocketAutoResponseTimestamp`, the host's `lastPingAt`).
 *
 * The room checks its quiet sockets when it wakes (constructed after hibernation or eviction,
 * whatever woke it), at the first event {@link QUIET_CHECK_IN_USE_MS} after the last check
 * while it is in use, and every {@link QUIET_CHECK_INTERVAL_MS} by alarm while quiet sockets are
 * open, never more often while they are idle. A socket with no sign of life (a frame, or a
 * ping answered) for {@link QUIET_PROBE_AFTER_MS} is sent a probe, which a live client answers
 * with `ping` at once; one still without a sign {@link QUIET_PROBE_GRACE_MS} after its probe is
 * closed with 4000, and its presence removed for everyone. The probe's time rides in the
 * socket's attachment, so a wake in between still judges it. A quiet client that comes back on
 * a new connection while the room still holds its old one (a network change drops a socket
 * without a close) has the old one probed at once (worker/room/frames.ts).
 */
import type { PresenceRegistry } from "../awareness";
import { QUIET_CHECK_INTERVAL_MS, QUIET_CHECK_IN_USE_MS, QUIET_PROBE_AFTER_MS, QUIET_PROBE_GRACE_MS, QUIET_RENEWAL_INTERVAL_MS } from "../limits";
import { CloseCode, encodeAwareness } from "../protocol";
import type { TokenBucket } from "../rate";
import type { RoomHost, RoomSocket } from "./ports";
import type { Sessions } from "./sessions";

export class QuietClients<Socket extends RoomSocket> {
  /** When quiet sockets were last checked; null until the first check (waking is one, and memory does not outlive a wake). */
  private checkedAt: number | null = null;

  get lastCheckAt(): number | null {
    return this.checkedAt;
  }

  /** `answers`: the room's answer budget, which renewals are charged to. */
  constructor(
    private readonly sessions: Sessions<Socket>,
    private readonly presence: PresenceRegistry<Socket>,
    private readonly answers: TokenBucket,
    private readonly host: Pick<RoomHost<Socket>, "lastPingAt" | "probe">,
  ) {}

  /**
   * A renewing socket's frame woke the room anyway (a stock provider renews its presence every
   * 15 s): it is sent quiet clients' states renewed, when its last renewal is
   * {@link QUIET_RENEWAL_INTERVAL_MS} old, so that it keeps seeing app users (a stock provider
   * drops a state not renewed for 30 s). One socket at a time, on its own frames: what a
   * renewal costs follows the sockets that ask for it, and no relay bound sheds anyone for it.
   * Charged to the room's answer budget like a joiner's greeting; without budget it waits for
   * the socket's next frame.
   */
  renewFor(socket: Socket, now: number): void {
    const session = this.sessions.get(socket);
    if (session === undefined || session.quiet || this.sessions.isClosing(socket)) return;
    if (now - session.quietRenewedAt < QUIET_RENEWAL_INTERVAL_MS || !this.presence.anyQuietPresence()) return;
    const frame = encodeAwareness(this.presence.quietStatesShown(now));
    if (!this.answers.take(frame.byteLength, now)) return;
    session.quietRenewedAt = now;
    this.sessions.send(socket, session, frame);
  }

  /** At an event of a room in use: checks if the last check is {@link QUIET_CHECK_IN_USE_MS} old. True when it checked (what is due may have moved). */
  checkInUse(now: number): boolean {
    if (this.checkedAt !== null && now - this.checkedAt < QUIET_CHECK_IN_USE_MS) return false;
    this.check(now);
    return true;
  }

  /** Judges every quiet socket that joined: probes the silent, closes those that did not answer a probe in time. */
  check(now: number): void {
    this.checkedAt = now;
    for (const socket of this.sessions.quietSockets(now)) {
      const session = this.sessions.of(socket, now);
      const lastSign = Math.max(session.frameSeenAt, this.host.lastPingAt(socket) ?? 0);
      if (session.probedAt !== undefined) {
        if (lastSign < session.probedAt) {
          if (now >= session.probedAt + QUIET_PROBE_GRACE_MS) {
            this.sessions.reject(socket, CloseCode.presenceTimeout, `presence timed out: no answer to a probe within ${QUIET_PROBE_GRACE_MS / 1000} s`, now);
          }
          continue;
        }
        this.sessions.noteProbe(socket, session, undefined);
      }
      if (now - lastSign >= QUIET_PROBE_AFTER_MS) this.probe(socket, now);
    }
  }

  /** Probes a quiet socket now, unless a probe is outstanding or it is not a quiet socket that joined; true when it did. */
  probe(socket: Socket, now: number): boolean {
    const session = this.sessions.get(socket);
    if (session === undefined || !session.quiet || !session.joined || session.probedAt !== undefined || this.sessions.isClosing(socket)) return false;
    this.host.probe(socket);
    this.sessions.noteProbe(socket, session, now);
    return true;
  }

  /** When a check is next due: a probe's deadline, else the periodic check; null without quiet sockets. */
  nextDue(now: number): number | null {
    let due: number | null = null;
    for (const socket of this.sessions.quietSockets(now)) {
      const probedAt = this.sessions.of(socket, now).probedAt;
      const socketDue = probedAt === undefined ? (this.checkedAt ?? now) + QUIET_CHECK_INTERVAL_MS : probedAt + QUIET_PROBE_GRACE_MS;
      due = due === null ? socketDue : Math.min(due, socketDue);
    }
    return due;
  }
}
