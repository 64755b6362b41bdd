/**
 * client/view.ts's status line in Node (no Chromium): what a person reads for each state the
 * app can be in.
 */
import { describe, expect, it } from "vitest";
import { describeConnection, type ConnectionState } from "../../client/view";

const saved: ConnectionState = { online: true, status: "connected", synced: true, unconfirmed: false, readOnly: false, stoppedReason: null, transport: "websocket" };

describe("describeConnection", () => {
  it.each<[string, Partial<ConnectionState>, { kind: string; text: string }]>([
    ["synced, all confirmed", {}, { kind: "saved", text: "Connected · all changes saved" }],
    ["synced, edits unconfirmed", { unconfirmed: true }, { kind: "saving", text: "Connected · saving…" }],
    ["a read-only link", { readOnly: true }, { kind: "read-only", text: "Connected · read-only" }],
    ["offline with edits", { online: false, unconfirmed: true }, { kind: "offline", text: "Offline · edits kept in this browser · unsaved changes" }],
    ["reconnecting", { status: "disconnected" }, { kind: "reconnecting", text: "Reconnecting…" }],
    ["connecting, not yet synced", { status: "connecting", synced: false }, { kind: "connecting", text: "Connecting…" }],
    ["stopped by the server", { status: "disconnected", stoppedReason: "token expired", unconfirmed: true }, { kind: "stopped", text: "Disconnected: token expired · unsaved changes" }],
  ])("%s", (_name, change, expected) => {
    expect(describeConnection({ ...saved, ...change })).toEqual(expected);
  });

  it("never says saved while the server has not confirmed every edit", () => {
    for (const status of ["connected", "connecting", "disconnected"] as const) {
      for (const online of [true, false]) {
        const { text } = describeConnection({ ...saved, status, online, unconfirmed: true });
        expect(text).not.toMatch(/all changes saved/);
      }
    }
  });
});
