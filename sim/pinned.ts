/**
 * Schedules that once failed, replayed on every run (after the random ones) so that a fixed
 * bug stays fixed. Pin one when its defect is fixed: either a saved, shrunk schedule from
 * sim/failures/ (`file`, the better regression test: it does not depend on how the explorer
 * generates schedules) or a seed and schedule number from a failure report (and `steps` if the
 * run used a non-default --steps), each with one line saying what it caught.
 *
 * sim/failures/ holds the shrunk replays of the defects found so far; `npm run simulate --
 * --known` replays them all and says which still fail.
 */
export type PinnedSchedule =
  | { file: string; note: string }
  | { seed: number; schedule: number; steps?: number; note: string };

export const PINNED: readonly PinnedSchedule[] = [
  { file: "2306641257-1271-liveness.json", note: "an echo after a wake claimed another client's ID (never-written document)" },
  { file: "3116050816-1453-liveness.json", note: "an echo after a wake claimed another client's ID (never-written document)" },
  { file: "3116050816-684-liveness.json", note: "an echo after a wake held an owner's ID, and the owner's own state was refused" },
  { file: "3116050816-719-liveness.json", note: "a socket restored after a wake had its claim count reset, so its echo claimed" },
  { file: "3116050816-835-liveness.json", note: "claims made before the first write were never saved; after a wake an echo claimed" },
  { file: "3162504673-8142-alarm-progress.json", note: "failed webhook events were tidied a millisecond after the alarm set for them: hot alarm" },
  { file: "3162504673-8298-alarm-after-throw.json", note: "a fault in deleteAll after deleteAlarm left what was due without an alarm" },
  { file: "3255196998-559-liveness.json", note: "an echo after a wake claimed another client's ID (never-written document)" },
  { file: "3255196998-686-webhooks.json", note: "a killed alarm run after an outbound request was not fired again (simulation model)" },
  { file: "555-1347-alarm-after-throw.json", note: "an HTTP write that threw under a fault skipped moving the alarm for what it held" },
  { file: "555-1372-convergence.json", note: "an HTTP write relayed before its failed write left a reader with an edit nobody stored" },
  { file: "555-1911-liveness.json", note: "orphaned edits from a DELETE kept a client's own saved edits unconfirmed" },
  { file: "555-482-liveness.json", note: "own edits made on top of orphans can never be stored (a known limit, exempt)" },
  { file: "accepted-bookkeeping-throws.json", note: "a storage fault in history/webhook bookkeeping after an integrated edit escaped and left the alarm unset" },
  { file: "claims-lost-presence-lockout.json", note: "after a wake on a never-written document an echo claimed a departed client's ID and locked its owner out" },
  { file: "close-burst-fault-duplicate-ids.json", note: "a fault closing a webhook burst left it collecting; the next burst sent one event under two ids" },
  { file: "close-burst-fault-hot-alarm.json", note: "a fault closing a webhook burst left a due row nobody closed: the alarm fired back to back" },
  { file: "closed-fault-skips-rearm.json", note: "a storage fault in closed() skipped moving the alarm" },
  { file: "delete-after-expiry-drops-webhooks.json", note: "a DELETE after expiry dropped carried-over webhook events silently" },
  { file: "delete-bookkeeping-fault-partial-event.json", note: "an event's rows for several endpoints were not one transaction" },
  { file: "delete-half-done-bricks-room.json", note: "a fault reopening storage after DELETE left handles to deleted tables" },
  { file: "destroy-leaves-stale-deadline.json", note: "DELETE kept a socket deadline for sockets it closed" },
  { file: "failed-due-question-delays-alarm.json", note: "a duty whose due-time question threw pushed the alarm later on every event" },
  { file: "failed-first-write-leaves-last-update.json", note: "a failed first write left the document reported as existing" },
  { file: "http-end-inside-delete.json", note: "HTTP sessions' ends reported inside DELETE's deleteAll used the deleted tables" },
  { file: "last-socket-rejected-no-rearm.json", note: "the room closing the last socket itself did not schedule the session's end" },
  { file: "orphan-pending-never-confirmed.json", note: "a client holding edits whose base a DELETE removed was never confirmed for its own" },
  { file: "relay-skips-sender.json", note: "an update that let others' waiting updates integrate was not relayed to its sender" },
  { file: "wake-does-not-rearm.json", note: "a wake did not re-arm the alarm for what was due" },
  { file: "20261206-1227-liveness.json", note: "a removal spoofed under a high clock left an owner's lower clocks refused for good (now sent that removal back)" },
  { file: "3786060189-15614-api-stored.json", note: "DELETE closing one socket wrote what was held, and a failed write closed another 1011 before its 4410" },
  { file: "3786060189-21350-no-throw.json", note: "an empty version text bound as NULL (an empty array without backing store)" },
  { file: "3786060189-49530-confirmed-stored.json", note: "a failed write discarded another tab's shared edit; its author was confirmed by the next echo" },
  { file: "3786060189-81008-convergence.json", note: "a sync answer encoded before a failed write carried what the write discarded" },
  { file: "763444014-512-confirmed-stored.json", note: "a failed write's lost authors were read with encodeStateVectorFromUpdate, which skips clients not starting at clock 0: another tab's later edits were confirmed" },
  { file: "2878581601-69841-api-stored.json", note: "a restore sent only the undo's new clocks: a version item the document had lost (held, then killed) stayed missing" },
  { file: "2878581601-35671-convergence.json", note: "a reader was relayed an edit before it was stored; the write was lost and a reader cannot send it back" },
  { file: "delete-kill-loses-carried-webhooks.json", note: "a DELETE killed after deleteAll (which commits at once) lost the webhook events it carried over; now one transaction" },
  { file: "20261206-2276-webhooks.json", note: "harness: an event ran beside a fetch after the waiting handler had reached its kill, in a dead process, and committed" },
  { file: "20261208-11961-liveness.json", note: "an expiry dropped the presence claims from storage but not from memory; after a wake another owner's echo claimed the ID and its owner was never confirmed" },
  { file: "2878581601-37587-confirmed-stored.json", note: "a joiner's sync step 1 encoded before a failed write asked for less than the room had lost" },
  { file: "quiet-stamp-creeps-on-wake.json", note: "each wake's estimated activity stamp (activeAt + 10 s) was saved back as the socket's activity, so a vanished quiet socket was probed ~135 s late while a stock client woke the room every 15 s" },
  { file: "quiet-vanished-late.json", note: "the same creeping stamp, found by quiet-vanished" },
  { file: "quiet-refused-state-never-reannounced.json", note: "a quiet client's state refused while its old socket held its ID was never sent again once that socket went (the removal's clock was below the client's, and quiet clients do not renew): invisible and never confirmed" },
  { file: "quiet-reannounce-unconfirmed.json", note: "a quiet client answered its old socket's removal, and y-protocols' answer to the room's renewal request (reported as `removed`) made no save barrier: its edit stayed unconfirmed" },
  { file: "removal-answer-barrier-spoofed.json", note: "a save barrier made from y-protocols' answer to our removal (the next clock, while nobody held our ID) let a spoofed state under that clock confirm an edit: barriers stay our own changes, and an unmatched echo asks again" },
  { file: "connect-fault-leaves-alarm.json", note: "a storage fault while greeting a joiner left the alarm where it was, though someone was now here (versions by interval due long ago)" },
  { file: "stale-echo-takes-returning-id.json", note: "a stock reader's echo of a renewed state arrived after the state's removal, under the removal's clock, and took the ID as a return: the quiet owner, back on a new socket, was shown its own state from another socket and took it for its save confirmation" },
  { file: "20261211-2931-webhooks.json", note: "harness: an idle step gave each of its turns a fresh alarm budget, so webhook fetches fed DELETEs and writes beside them without bound (1,106 DELETEs, 890 queued events); the webhook check then stopped after 1,000 alarm waits, an hour in, and called it 72 h" },
  { file: "quiet-left-socket-deadline-wakes.json", note: "a stock socket that left kept its silence deadline as the room's, and the alarm woke an idle room of quiet clients for nothing" },
];
