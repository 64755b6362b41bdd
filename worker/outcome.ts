/**
 * How the room answers its RPC callers: a value, or a refusal as the outcome it is
 * (`Outcome`, worker/documents.ts), never an HTTP status: worker/api.ts maps outcomes to those.
 */
import type { Outcome } from "./documents";
import { ProtocolError } from "./protocol";

/** Runs `operation`, returning a refusal it throws ({@link ProtocolError}) as an outcome; anything else is rethrown. */
export function outcomeOf<T>(operation: () => T): Outcome<T> {
  try {
    return { ok: true, value: operation() };
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return { ok: false, closeCode: error.closeCode, reason: error.message };
  }
}

/** An operation's outcome whose value is itself an outcome, as one. */
export function flatten<T>(outcome: Outcome<Outcome<T>>): Outcome<T> {
  return outcome.ok ? outcome.value : outcome;
}

export function noSuchVersion(id: number): Outcome<never> {
  return { ok: false, refused: "no-such-version", reason: `no version ${id}` };
}
