/**
 * The `readyState` numbers of the WebSocket API, on the class and its instances as `WebSocket`
 * has them: the y-websocket provider reads `ws.OPEN` from the socket it holds, so a socket
 * stand-in (client/http-socket.ts, client/quiet-socket.ts) extends this.
 */
export abstract class WebSocketLike {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
}
