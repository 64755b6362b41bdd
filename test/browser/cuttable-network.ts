/**
 * A network path that can vanish: a TCP relay on 127.0.0.1 in front of the server, for a page
 * loaded through it. `cut()` is a cable pulled out (a laptop lid shut, a train in a tunnel):
 * from then on nothing passes either way, not even a close or a FIN, and the connections stay
 * open on both ends, so the server learns of it only by its own means. Connections made after
 * the cut are held the same way.
 */
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export interface CuttableNetwork {
  /** http://127.0.0.1:PORT, the server's origin as seen through the relay. */
  origin: string;
  cut: () => void;
  /** Ends every connection and stops listening (after the test). */
  close: () => Promise<void>;
}

/** A relay to `target` (an http://127.0.0.1:PORT origin). */
export async function startCuttableNetwork(target: string): Promise<CuttableNetwork> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let isCut = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    // A reset is a close like any other here (handled in `forward`), not a failure of the test.
    socket.on("error", () => socket.destroy());
  };
  /** Passes `from`'s bytes and its end to `to` while the cable is in; afterwards they are read and dropped. */
  const forward = (from: Socket, to: Socket) => {
    from.on("data", (chunk) => {
      if (!isCut) to.write(chunk);
    });
    // A FIN, or a reset (the socket then closes without one), ends the other side too.
    from.on("end", () => {
      if (!isCut) to.end();
    });
    from.on("close", () => {
      if (!isCut) to.end();
    });
  };
  const relay = createServer((client) => {
    track(client);
    if (isCut) return client.resume(); // held: read, never answered
    const upstream = connect(Number(port), hostname);
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    cut: () => {
      isCut = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => relay.close(resolve));
    },
  };
}
