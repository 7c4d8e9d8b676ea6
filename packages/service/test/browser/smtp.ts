import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * A real SMTP receiver for the browser tests: the service under test sends its sign-in codes through
 * nodemailer to this server on 127.0.0.1, and a test reads them back with `waitForCode`. A tiny MIME
 * reader (RFC 2047 encoded words, quoted-printable and base64 bodies, multipart) decodes what nodemailer
 * wrote, so a service name with non-ASCII characters (an encoded subject) still yields the code.
 */

export interface ReceivedMessage {
  /** Envelope recipients, lowercased. */
  to: string[];
  from: string;
  /** The message as received (bytes as latin1, so nothing is lost). */
  raw: string;
  subject: string;
  /** The decoded text/plain part(s) (or the whole body when there is no MIME structure). */
  text: string;
  /** The decoded text/html part(s), if any. */
  html: string;
  /** Set once a `waitFor…` call has handed this message out. */
  consumed: boolean;
  /** The user name the client authenticated as (AUTH), if it did. */
  authenticatedAs?: string;
}

export interface SmtpReceiver {
  host: string;
  port: number;
  messages: ReceivedMessage[];
  /** The next not-yet-consumed message to `to` (case-insensitive), waiting at most `timeoutMs`. */
  waitForMessage(to: string, timeoutMs?: number): Promise<ReceivedMessage>;
  /** The six-digit code of the next message to `to`: from the subject, or else from the body. */
  waitForCode(to: string, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export interface SmtpReceiverOptions {
  /** Require AUTH (PLAIN or LOGIN, over plain text: the receiver offers no STARTTLS) with exactly these credentials. */
  auth?: { user: string; pass: string };
  /** Listen on this port of 127.0.0.1 (default: a free one). */
  port?: number;
}

export async function startSmtpReceiver(options: SmtpReceiverOptions = {}): Promise<SmtpReceiver> {
  const messages: ReceivedMessage[] = [];
  const arrived = new EventEmitter();
  const required = options.auth;
  const server = new SMTPServer({
    authOptional: !required,
    authMethods: ['PLAIN', 'LOGIN'],
    onAuth(auth, _session, callback) {
      if (required && auth.username === required.user && auth.password === required.pass) return callback(null, { user: auth.username });
      if (!required) return callback(null, { user: auth.username });
      callback(new Error('Invalid username or password'));
    },
    disabledCommands: ['STARTTLS'],
    secure: false,
    logger: false,
    // No DNS: the test machine may have no resolver, and a reverse lookup of 127.0.0.1 only costs time.
    disableReverseLookup: true,
    closeTimeout: 1_000,
    size: 1024 * 1024,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) => callback(error));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('latin1');
        const parsed = parseMessage(raw);
        const mailFrom = session.envelope.mailFrom;
        messages.push({
          to: session.envelope.rcptTo.map((recipient) => recipient.address.toLowerCase()),
          from: mailFrom ? mailFrom.address : '',
          raw,
          ...parsed,
          consumed: false,
          ...(typeof session.user === 'string' ? { authenticatedAs: session.user } : {}),
        });
        arrived.emit('message');
        callback(null);
      });
    },
  });
  server.on('error', () => {
    // A client that drops its connection is not the test's business; waitForCode times out if mail never comes.
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;

  const take = (to: string): ReceivedMessage | undefined => {
    const message = messages.find((candidate) => !candidate.consumed && candidate.to.includes(to.toLowerCase()));
    if (message) message.consumed = true;
    return message;
  };

  const waitForMessage = (to: string, timeoutMs = 10_000): Promise<ReceivedMessage> =>
    new Promise((resolve, reject) => {
      const now = take(to);
      if (now) return resolve(now);
      const onMessage = () => {
        const message = take(to);
        if (!message) return;
        clearTimeout(timer);
        arrived.off('message', onMessage);
        resolve(message);
      };
      const timer = setTimeout(() => {
        arrived.off('message', onMessage);
        const seen = messages.map((m) => `${m.to.join(',')}: ${m.subject}`).join('; ') || 'none';
        reject(new Error(`no mail to ${to} within ${timeoutMs} ms (received: ${seen})`));
      }, timeoutMs);
      arrived.on('message', onMessage);
    });

  return {
    host: '127.0.0.1',
    port,
    messages,
    waitForMessage,
    async waitForCode(to, timeoutMs) {
      const message = await waitForMessage(to, timeoutMs);
      const code = codeIn(message.subject) ?? codeIn(message.text) ?? codeIn(message.html.replace(/<[^>]*>/g, ' '));
      if (!code) throw new Error(`no six-digit code in the mail to ${to}: subject ${JSON.stringify(message.subject)}`);
      return code;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The last stand-alone six-digit number in the text (the code ends the subject; the body says "is 123456."). */
function codeIn(text: string): string | undefined {
  const all = [...text.matchAll(/(?<!\d)(\d{6})(?!\d)/g)];
  return all.at(-1)?.[1];
}

// ——— a minimal MIME reader: enough for what nodemailer sends ———

interface Parsed {
  subject: string;
  text: string;
  html: string;
}

export function parseMessage(raw: string): Parsed {
  const { headers, body } = splitHeaders(raw);
  const leaves = collectLeaves(headers, body);
  return {
    subject: decodeEncodedWords(headers.get('subject') ?? ''),
    text: leaves.filter((leaf) => leaf.type === 'text/plain').map((leaf) => leaf.content).join('\n'),
    html: leaves.filter((leaf) => leaf.type === 'text/html').map((leaf) => leaf.content).join('\n'),
  };
}

function splitHeaders(raw: string): { headers: Map<string, string>; body: string } {
  const normalized = raw.replace(/\r?\n/g, '\r\n');
  const end = normalized.indexOf('\r\n\r\n');
  const head = end === -1 ? normalized : normalized.slice(0, end);
  const body = end === -1 ? '' : normalized.slice(end + 4);
  const headers = new Map<string, string>();
  // Unfold (RFC 5322 §2.2.3), then one header per line; the first occurrence wins.
  for (const line of head.replace(/\r\n(?=[ \t])/g, '').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** `type/subtype; a=b; c="d"` → the lowercased type and its parameters. */
function parseContentType(value: string | undefined): { type: string; params: Map<string, string> } {
  const [type = 'text/plain', ...rest] = (value ?? 'text/plain').split(';');
  const params = new Map<string, string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return { type: type.trim().toLowerCase() || 'text/plain', params };
}

function collectLeaves(headers: Map<string, string>, body: string, depth = 0): { type: string; content: string }[] {
  const { type, params } = parseContentType(headers.get('content-type'));
  const boundary = params.get('boundary');
  if (type.startsWith('multipart/') && boundary && depth < 5) {
    const delimiter = `--${boundary}`;
    const sections = body.split(new RegExp(`(?:^|\\r\\n)${escapeRegExp(delimiter)}(?:--)?[ \\t]*(?=\\r\\n|$)`));
    // sections[0] is the preamble; the one after the closing delimiter is the epilogue.
    return sections.slice(1).flatMap((section) => {
      if (!section.trim()) return [];
      const part = splitHeaders(section.replace(/^\r\n/, ''));
      return collectLeaves(part.headers, part.body, depth + 1);
    });
  }
  const bytes = decodeTransfer(body, headers.get('content-transfer-encoding'));
  return [{ type, content: decodeCharset(bytes, params.get('charset')) }];
}

function decodeTransfer(body: string, encoding: string | undefined): Buffer {
  switch ((encoding ?? '7bit').trim().toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    case 'quoted-printable':
      return quotedPrintable(body);
    default:
      return Buffer.from(body, 'latin1');
  }
}

/**
 * RFC 2045 §6.7: soft line breaks (`=` at a line's end, maybe padded after it) vanish, `=XX` is a
 * byte. A space before the `=` is text: encoders break lines after a space (`you =`), so it stays.
 */
function quotedPrintable(text: string): Buffer {
  const unwrapped = text.replace(/=[ \t]*\r\n/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < unwrapped.length; i++) {
    const hex = unwrapped.slice(i + 1, i + 3);
    if (unwrapped[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(unwrapped.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words in a header (`=?UTF-8?Q?…?=`, `=?utf-8?B?…?=`); unencoded text passes through. */
export function decodeEncodedWords(value: string): string {
  // Whitespace between two adjacent encoded words is not part of the text (RFC 2047 §6.2).
  const joined = value.replace(/(\?=)[ \t\r\n]+(?==\?)/g, '$1');
  const decoded = joined.replace(/=\?([^?*]+)(?:\*[^?]*)?\?([BbQq])\?([^?]*)\?=/g, (_all, charset: string, encoding: string, text: string) => {
    const bytes =
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64')
        : quotedPrintable(text.replace(/_/g, ' '));
    return decodeCharset(bytes, charset);
  });
  // Header bytes outside encoded words were kept as latin1; a raw UTF-8 subject (SMTPUTF8) is decoded as such.
  return /[\x80-\xff]/.test(decoded) && !/=\?/.test(value) ? decodeCharset(Buffer.from(decoded, 'latin1'), 'utf-8') : decoded;
}

function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  try {
    return new TextDecoder((charset ?? 'utf-8').trim().toLowerCase()).decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
