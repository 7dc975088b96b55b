// Test helper: a TCP proxy in front of a real nats-server that can lose the
// answer to a request while the request itself goes through — what a network
// cut right after a write looks like to a client: the server applied the write,
// the client never heard so, and its call times out.
//
// It reads the NATS protocol just enough: a client's PUB/HPUB on a subject
// that matches arms a drop of the server's MSG/HMSG to that publish's reply
// inbox. Everything else passes byte for byte.
import { createServer, type Server, Socket } from 'node:net';

export interface ReplyDropper {
  /** nats://127.0.0.1:<port> of the proxy. */
  url: string;
  /** Lose the answers to the next `count` publishes whose subject matches. */
  dropRepliesTo(subject: RegExp, count?: number): void;
  /** Answers lost so far, by the subject of the publish they answered. */
  dropped: string[];
  stop(): Promise<void>;
}

/** Splits a byte stream into protocol frames: a control line, plus its payload when the line announces one. */
class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  constructor(private readonly payloadSize: (line: string) => number) {}

  /** Complete frames in `chunk` (with what came before); the rest waits for more. */
  push(chunk: Buffer): Array<{ line: string; frame: Buffer }> {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Array<{ line: string; frame: Buffer }> = [];
    for (;;) {
      const eol = this.buffer.indexOf('\r\n');
      if (eol < 0) break;
      const line = this.buffer.subarray(0, eol).toString('latin1');
      const size = this.payloadSize(line);
      const end = eol + 2 + (size > 0 ? size + 2 : 0);
      if (this.buffer.length < end) break;
      frames.push({ line, frame: this.buffer.subarray(0, end) });
      this.buffer = this.buffer.subarray(end);
    }
    return frames;
  }
}

/** The payload size a line announces: the last number of PUB/HPUB/MSG/HMSG (headers included). */
function announced(line: string): number {
  const verb = line.slice(0, line.indexOf(' ')).toUpperCase();
  if (!['PUB', 'HPUB', 'MSG', 'HMSG'].includes(verb)) return 0;
  return Number(line.trim().split(/\s+/).at(-1));
}

export async function startReplyDropper(natsUrl: string): Promise<ReplyDropper> {
  const target = new URL(natsUrl.split(',')[0] as string);
  const rules: Array<{ subject: RegExp; left: number }> = [];
  /** Reply inboxes whose answer is to be lost → the subject that was published. */
  const doomed = new Map<string, string>();
  const dropped: string[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    upstream.connect(Number(target.port), target.hostname);
    const fromClient = new FrameReader(announced);
    const fromServer = new FrameReader(announced);
    client.on('data', (chunk: Buffer) => {
      for (const { line, frame } of fromClient.push(chunk)) {
        // PUB <subject> [reply] <size> / HPUB <subject> [reply] <header size> <total size>
        const parts = line.trim().split(/\s+/);
        const [verb, subject, reply] = parts;
        const v = verb?.toUpperCase();
        const hasReply = (v === 'PUB' && parts.length === 4) || (v === 'HPUB' && parts.length === 5);
        if (hasReply && subject && reply) {
          const rule = rules.find((r) => r.left > 0 && r.subject.test(subject));
          if (rule) {
            rule.left -= 1;
            doomed.set(reply, subject);
          }
        }
        upstream.write(frame);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      for (const { line, frame } of fromServer.push(chunk)) {
        const [verb, subject] = line.split(/\s+/);
        const v = verb?.toUpperCase();
        if ((v === 'MSG' || v === 'HMSG') && subject && doomed.has(subject)) {
          dropped.push(doomed.get(subject) as string);
          doomed.delete(subject);
          continue;
        }
        client.write(frame);
      }
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `nats://127.0.0.1:${port}`,
    dropRepliesTo(subject, count = 1) {
      rules.push({ subject, left: count });
    },
    dropped,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
