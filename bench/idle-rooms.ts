/**
 * The idle scenario's rooms (bench/idle.ts): who is in each and which server hosts it. Five
 * people a room, as issue 31 states its targets; the app's own client in Chromium, stock
 * y-websocket providers in Node.
 */
import type { DevServer } from "../test/node/wrangler.ts";
import { IDLE_ROOM_PREFIX } from "./idle-events.ts";

export interface IdleRoom {
  name: string;
  server: "edgedoc" | "y-partyserver hibernating" | "y-partyserver standard";
  /** Pages of the app in Chromium, each its own browser context (its own person). */
  appClients: number;
  stockClients: number;
  /** A stock provider that joins once the others typed, and stays for the window. */
  lateStockClient: boolean;
  /** The serverUrl a stock provider is given (the document is its room name). */
  serverUrl: (server: DevServer) => string;
}

const PEOPLE = 5;
const edgedoc = (server: DevServer) => server.wsUrl;
/** partyserver routes by the binding's name, kebab-cased (bench/wrangler.toml). */
const party = (binding: string) => (server: DevServer) => `${server.wsUrl.replace(/\/ws$/, "")}/parties/${binding}`;

export const IDLE_ROOMS: readonly IdleRoom[] = [
  { name: "edgedoc, app clients", server: "edgedoc", appClients: PEOPLE, stockClients: 0, lateStockClient: false, serverUrl: edgedoc },
  { name: "edgedoc, stock providers", server: "edgedoc", appClients: 0, stockClients: PEOPLE, lateStockClient: false, serverUrl: edgedoc },
  { name: "edgedoc, app clients + a stock provider joining", server: "edgedoc", appClients: PEOPLE, stockClients: 0, lateStockClient: true, serverUrl: edgedoc },
  { name: "y-partyserver hibernating, stock providers", server: "y-partyserver hibernating", appClients: 0, stockClients: PEOPLE, lateStockClient: false, serverUrl: party("peer") },
  { name: "y-partyserver standard, stock providers", server: "y-partyserver standard", appClients: 0, stockClients: PEOPLE, lateStockClient: false, serverUrl: party("peer-standard") },
];

/** A fresh document for `room`, named so that its object logs what reaches it (bench/idle-events.ts). */
export function idleDocumentName(room: IdleRoom): string {
  const slug = room.name.replace(/\W+/g, "-").replace(/-+$/, "");
  return `${IDLE_ROOM_PREFIX}${slug}-${Math.random().toString(36).slice(2, 8)}`;
}
