/**
 * A page on another origin, for browser tests of what such pages may do with the API: a
 * loopback HTTP server of its own (another port is another origin).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface PageServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  close: () => Promise<void>;
}

/** A server answering every path with an empty page, on a free loopback port: an origin of its own. */
export async function startPageServer(): Promise<PageServer> {
  const server = createServer((_, response) => {
    response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end("<!doctype html><title>elsewhere</title>");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
