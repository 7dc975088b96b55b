/**
 * The server side of a WebSocket (RFC 6455), just what a test stand-in for
 * Slack's Socket Mode needs: the opening handshake on a node:http `upgrade`,
 * text messages both ways (a fragmented one is put together), ping answered by
 * pong, and the closing handshake either way. No extensions (permessage-deflate
 * is not offered back, so the client sends plain frames), no subprotocols.
 *
 * Written here because no WebSocket server is among the project's packages:
 * @slack/socket-mode's client is undici's, and Node 20 has no server.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
/** Largest message taken from a client (bytes); Slack's acks are a few KiB. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

export interface WebSocketConnection {
  /** Send a text message (ignored once closing). */
  send(text: string): void;
  /** Start the closing handshake: a close frame, then the TCP end when the client answers. */
  close(code?: number, reason?: string): void;
  /** Cut the TCP connection without a close frame, as a crashed peer or a dropped link would. */
  drop(): void;
  /** Called with each complete text message. */
  onMessage(listener: (text: string) => void): void;
  /** Called once when the TCP connection is gone, whoever ended it. */
  onClose(listener: (info: { code?: number; clean: boolean }) => void): void;
  readonly closed: boolean;
}

/** Refuse an HTTP upgrade with `status` and end the connection. */
export function refuseUpgrade(socket: Duplex, status: 400 | 401 | 404, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Complete the opening handshake of `req` (an `upgrade` event's arguments) and
 * return the connection; undefined (and the request refused) when it is no
 * WebSocket handshake.
 */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer): WebSocketConnection | undefined {
  const key = req.headers['sec-websocket-key'];
  if (
    req.method !== 'GET' ||
    (req.headers.upgrade ?? '').toLowerCase() !== 'websocket' ||
    typeof key !== 'string' ||
    req.headers['sec-websocket-version'] !== '13'
  ) {
    refuseUpgrade(socket, 400, 'Bad Request');
    return undefined;
  }
  const accept = createHash('sha1').update(`${key}${HANDSHAKE_GUID}`).digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );

  const messageListeners: Array<(text: string) => void> = [];
  const closeListeners: Array<(info: { code?: number; clean: boolean }) => void> = [];
  let buffered: Buffer = Buffer.from(head);
  let fragments: Buffer[] = [];
  let sentClose = false;
  let closeCode: number | undefined;
  let receivedClose = false;
  let closed = false;

  const writeFrame = (opcode: number, payload: Buffer) => {
    if (closed) return;
    const len = payload.length;
    const header =
      len < 126
        ? Buffer.from([0x80 | opcode, len])
        : len < 65_536
          ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff])
          : Buffer.concat([Buffer.from([0x80 | opcode, 127]), bigEndian64(len)]);
    socket.write(Buffer.concat([header, payload]));
  };

  const sendClose = (code: number, reason = '') => {
    if (sentClose) return;
    sentClose = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    writeFrame(OP.close, payload);
  };

  const onFrame = (opcode: number, fin: boolean, payload: Buffer) => {
    switch (opcode) {
      case OP.ping:
        writeFrame(OP.pong, payload);
        return;
      case OP.pong:
        return;
      case OP.close:
        receivedClose = true;
        closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
        sendClose(closeCode ?? 1000);
        socket.end(); // the server ends the TCP connection once both close frames are out (RFC 6455 §7.1.1)
        return;
      case OP.text:
      case OP.binary:
      case OP.continuation: {
        fragments.push(payload);
        if (!fin) return;
        const message = Buffer.concat(fragments);
        fragments = [];
        for (const l of messageListeners) l(message.toString('utf8'));
        return;
      }
      default:
        sendClose(1002, 'unknown opcode');
    }
  };

  /** Take every complete frame off the front of the buffer. */
  const parse = () => {
    for (;;) {
      if (buffered.length < 2) return;
      const b0 = buffered[0]!;
      const b1 = buffered[1]!;
      const masked = (b1 & 0x80) !== 0;
      let len = b1 & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (buffered.length < 4) return;
        len = buffered.readUInt16BE(2);
        offset = 4;
      } else if (len === 127) {
        if (buffered.length < 10) return;
        len = Number(buffered.readBigUInt64BE(2));
        offset = 10;
      }
      if (len > MAX_MESSAGE_BYTES) {
        sendClose(1009, 'message too big');
        socket.destroy();
        return;
      }
      const maskLen = masked ? 4 : 0;
      if (buffered.length < offset + maskLen + len) return;
      const mask = buffered.subarray(offset, offset + maskLen);
      const payload = Buffer.from(buffered.subarray(offset + maskLen, offset + maskLen + len));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
      buffered = buffered.subarray(offset + maskLen + len);
      onFrame(b0 & 0x0f, (b0 & 0x80) !== 0, payload);
    }
  };

  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    parse();
  });
  socket.on('error', () => undefined); // a reset by the client ends as a close below
  socket.on('close', () => {
    closed = true;
    const info = { ...(closeCode === undefined ? {} : { code: closeCode }), clean: sentClose && receivedClose };
    for (const l of closeListeners) l(info);
  });
  if (buffered.length > 0) queueMicrotask(parse);

  return {
    send(text) {
      if (!sentClose) writeFrame(OP.text, Buffer.from(text, 'utf8'));
    },
    close(code = 1000, reason = '') {
      sendClose(code, reason);
    },
    drop() {
      socket.destroy();
    },
    onMessage(listener) {
      messageListeners.push(listener);
    },
    onClose(listener) {
      closeListeners.push(listener);
    },
    get closed() {
      return closed;
    },
  };
}

function bigEndian64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
