/**
 * The app's provider (client/fallback.ts, with client/http-socket.ts), loaded at run time.
 * Those modules are typed for browsers (`keepalive` in a RequestInit, the `pagehide` event, a
 * WebSocket constructor taking a URL), which tsconfig.worker.json (Workers types, no DOM) does
 * not compile, and a static import here would put them in that project's typecheck. At run
 * time workerd runs them as they are, so the fuzz imports them by a specifier tsc does not
 * follow, and types the little it uses.
 */
import type { WebsocketProvider } from "y-websocket";
import type * as Y from "yjs";

export interface AppProvider extends WebsocketProvider {
  /** The transport chooser: "http" once WebSockets failed, as they always do on the fuzz's network. */
  readonly chooser: { transport: "websocket" | "http" };
}

export type AppProviderClass = new (
  serverUrl: string,
  room: string,
  doc: Y.Doc,
  options: ConstructorParameters<typeof WebsocketProvider>[3],
) => AppProvider;

/** A variable, not a literal: tsc types `import()` of it as `any` and does not compile the module. */
const FALLBACK_MODULE = "../../../client/fallback";

export async function loadAppProvider(): Promise<AppProviderClass> {
  const fallback = (await import(/* @vite-ignore */ FALLBACK_MODULE)) as { EdgedocProvider: AppProviderClass };
  return fallback.EdgedocProvider;
}
