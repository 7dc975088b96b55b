/**
 * /slack/events reads a body only as far as it may be Slack's (issue 10, item 9). Slack's slash
 * commands and interactions are a few KiB (our largest message makes a click of ~14 KB), so a
 * body over 64 KiB is refused with 413, and one without a signature that could be valid with
 * 401, before it is read whole: the client sees the answer, and the connection closed, while it
 * has sent only the start of its megabyte. Against the real service, over a raw socket, so
 * what is asserted is what a client sees on the wire.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { postToSlackEndpoint, slackSignature, slashCommandBody } from '../helpers/slack-sign.js';
import { type SlackStack, startSlackStack } from '../helpers/slack-stack.js';
import { SIGNING_SECRET } from '../helpers/slack-user.js';

const MiB = 1024 * 1024;
const LIMIT = 64 * 1024;
/** How long a client waits for an answer before it says none came (a bound, not a measure). */
const ANSWER_WAIT_MS = 10_000;

interface Seen {
  /** HTTP status of the answer; 0 when none came. */
  status: number;
  /** Body bytes the client had written when the answer arrived (or when it gave up). */
  sentWhenAnswered: number;
  /** The server closed the connection after answering (so it takes in none of the rest). */
  closed: boolean;
}

/**
 * POST /slack/events over a raw socket: the head, then `first` bytes of body in 4 KiB pieces
 * (each written once the previous one is flushed), then a wait for the answer. After it, the
 * client tries to send the rest of `total` and watches the connection.
 */
function upload(
  port: number,
  opts: { signed: boolean; chunked: boolean; total: number; first: number },
): Promise<Seen> {
  const timestamp = Math.floor(Date.now() / 1000);
  const head = [
    'POST /slack/events HTTP/1.1',
    `host: 127.0.0.1:${port}`,
    'content-type: application/x-www-form-urlencoded',
    ...(opts.signed
      ? // well-formed and fresh, so only the body can say it is wrong
        [
          `x-slack-request-timestamp: ${timestamp}`,
          `x-slack-signature: ${slackSignature('not-the-secret', timestamp, 'x')}`,
        ]
      : []),
    opts.chunked ? 'transfer-encoding: chunked' : `content-length: ${opts.total}`,
    '',
    '',
  ].join('\r\n');
  const piece = (n: number) => {
    const data = Buffer.alloc(n, 'a');
    return opts.chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data;
  };
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    let connected = false;
    let received = '';
    let sent = 0;
    let status = 0;
    let sentWhenAnswered = -1;
    let closed = false;
    const answered = new Promise<void>((ok) => {
      socket.on('data', (d: Buffer) => {
        received += d.toString('latin1');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(received);
        if (m && sentWhenAnswered < 0) {
          status = Number(m[1]);
          sentWhenAnswered = sent;
          ok();
        }
      });
    });
    const ended = new Promise<void>((ok) => socket.on('close', () => ok()));
    socket.on('error', () => undefined);
    const write = (b: Buffer) =>
      new Promise<boolean>((ok) => {
        if (socket.destroyed || socket.writableEnded) return ok(false);
        socket.write(b, (err) => ok(!err));
      });
    const deadline = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms).unref());
    socket.once('connect', async () => {
      connected = true;
      try {
        await write(Buffer.from(head));
        while (sent < opts.first && sentWhenAnswered < 0) {
          const n = Math.min(4096, opts.first - sent);
          if (!(await write(piece(n)))) break;
          sent += n;
        }
        await Promise.race([answered, deadline(ANSWER_WAIT_MS)]);
        if (sentWhenAnswered < 0) sentWhenAnswered = sent;
        // the rest of the megabyte: a server that reads no more closes on it
        let writing = true;
        while (writing && sent < opts.total) {
          const n = Math.min(64 * 1024, opts.total - sent);
          writing = await write(piece(n));
          if (writing) sent += n;
        }
        if (writing && opts.chunked) await write(Buffer.from('0\r\n\r\n'));
        await Promise.race([ended.then(() => (closed = true)), deadline(ANSWER_WAIT_MS)]);
        socket.destroy();
        resolve({ status, sentWhenAnswered, closed });
      } catch (err) {
        socket.destroy();
        reject(err);
      }
    });
    socket.once('error', (err) => {
      if (!connected) reject(err); // later ones (a reset while writing the rest) are what is looked for
    });
  });
}

describe('Slack body limits', () => {
  let s: SlackStack;
  before(async () => {
    s = await startSlackStack({ hosts: 1 });
  });
  after(async () => {
    await s?.stack.stop();
    await s?.fake.stop();
  });

  it('refuses a declared 1 MiB body with 413 before a byte of it is sent', async () => {
    for (const signed of [true, false]) {
      const seen = await upload(s.port, { signed, chunked: false, total: MiB, first: 0 });
      assert.equal(
        seen.status,
        413,
        `signed-looking: ${signed}: answered ${seen.status || 'nothing'} with no body sent`,
      );
      assert.equal(seen.sentWhenAnswered, 0);
      assert.ok(seen.closed, 'the server closes the connection instead of reading the megabyte');
    }
  });

  it('refuses a signed-looking chunked body with 413 once it passes 64 KiB, reading no further', async () => {
    const seen = await upload(s.port, { signed: true, chunked: true, total: MiB, first: LIMIT + 1 });
    assert.equal(seen.status, 413, `answered ${seen.status || 'nothing'} after ${seen.sentWhenAnswered} bytes`);
    assert.ok(seen.sentWhenAnswered <= LIMIT + 1, `answered after ${seen.sentWhenAnswered} of ${MiB} bytes`);
    assert.ok(seen.closed, 'the server closes the connection');
  });

  it('refuses an unsigned body over 1 KiB with 401 without reading it', async () => {
    const declared = await upload(s.port, { signed: false, chunked: false, total: 32 * 1024, first: 0 });
    assert.equal(declared.status, 401, `declared 32 KiB: answered ${declared.status || 'nothing'}`);
    assert.ok(declared.closed, 'closed');
    const chunked = await upload(s.port, { signed: false, chunked: true, total: MiB, first: 1024 + 1 });
    assert.equal(chunked.status, 401, `chunked: answered ${chunked.status || 'nothing'}`);
    assert.ok(chunked.sentWhenAnswered <= 1025, `answered after ${chunked.sentWhenAnswered} bytes`);
    assert.ok(chunked.closed, 'closed');
  });

  it('still reads what Slack sends: a signed command near the limit, and an unsigned ssl_check', async () => {
    const body = slashCommandBody({
      command: '/ocp-agent',
      text: `list ${'x'.repeat(60 * 1024)}`,
      user_id: 'U0ALICE',
      channel_id: 'C0OPS',
      trigger_id: 'big.1',
      response_url: s.fake.responseUrl(),
    });
    assert.ok(body.length > 60 * 1024 && body.length <= LIMIT, `body of ${body.length} bytes`);
    const big = await postToSlackEndpoint(s.eventsUrl, SIGNING_SECRET, body);
    assert.equal(big.status, 200, 'read and answered: `list` takes no more words');
    assert.match(big.text, /takes no more words/);
    const forged = await postToSlackEndpoint(s.eventsUrl, 'not-the-secret', body);
    assert.equal(forged.status, 401, 'a wrong signature on a body within the limit: Bolt’s 401');
    const ssl = await fetch(s.eventsUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'ssl_check=1&token=fake-verification-token',
    });
    assert.equal(ssl.status, 200, 'Slack’s ssl_check, as Bolt answers it');
  });
});
