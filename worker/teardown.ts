/**
 * Telling a socket's ordinary end from a fault. workerd reports a peer that vanished (a closed
 * tab, a dropped network, a laptop lid) through `webSocketError` with errors such as "Network
 * connection lost" or "WebSocket peer disconnected", often flagged `retryable`; those are how
 * sockets end every day, not failures worth an alert. Pure, so it is tested without workerd.
 */

const TEARDOWN_MESSAGE = /network connection lost|websocket peer disconnected|connection reset/i;

/** Whether `error`, reported for a socket that ended, is ordinary teardown rather than a fault. */
export function isBenignTeardownError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { retryable, message } = error as { retryable?: unknown; message?: unknown };
  return retryable === true || (typeof message === "string" && TEARDOWN_MESSAGE.test(message));
}
