/**
 * AUTHMD_SMTP_URL and AUTHMD_MAIL_FROM (issue 14): `npm start` sends its sign-in and claim codes
 * through a real SMTP server instead of keeping them in the development mailbox. No message here ever
 * repeats the URL: it may hold a password.
 */

/** How the demo sends mail when AUTHMD_SMTP_URL is set. */
export interface DemoSmtp {
  /** nodemailer's SMTP transport options (`createService`'s `mail.smtp`). Holds the password: never log it. */
  transport: SmtpTransportOptions;
  /** The From header: AUTHMD_MAIL_FROM, or the default (see `defaultMailFrom`). */
  from: string;
  /** The server for a banner or a log: scheme, user, host and port, the password as `****`. */
  location: string;
}

export interface SmtpTransportOptions {
  host: string;
  port: number;
  /** smtps://: TLS from the first byte. smtp://: STARTTLS when the server offers it (required, see `requireTLS`). */
  secure: boolean;
  /** Set for smtp:// with credentials to a host other than this machine: no password goes out in plain text. */
  requireTLS?: true;
  auth?: { user: string; pass: string };
  connectionTimeout: number;
  greetingTimeout: number;
  socketTimeout: number;
  dnsTimeout: number;
}

/** The display name the demo's mail goes out under, unless AUTHMD_MAIL_FROM names another. */
export const MAIL_FROM_NAME = 'authmd demo notes';
/** The address when neither AUTHMD_MAIL_FROM nor an email-shaped SMTP user name gives one. */
export const FALLBACK_MAIL_FROM_ADDRESS = 'no-reply@localhost';
export const DEFAULT_SMTP_PORT = 587;
export const DEFAULT_SMTPS_PORT = 465;
/**
 * nodemailer waits 2 minutes for a connection and 10 for an idle socket by default, and the agent's
 * request waits with it: a server that is down or unreachable answers within about 10 s instead.
 */
export const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000, dnsTimeout: 10_000 } as const;

const SMTP_EXAMPLE = 'Example: AUTHMD_SMTP_URL=smtp://user:password@smtp.example.com:587 npm start';
const FROM_EXAMPLE = "Example: AUTHMD_MAIL_FROM='Notes <no-reply@notes.example>' npm start";
const LOOPBACK_HOSTS = new Set(['localhost', '::1']);
const ADDRESS = /^[^\s@<>"(),;:]+@[^\s@<>"(),;:]+$/;

export type MailSettingsOutcome = { ok: true; smtp?: DemoSmtp } | { ok: false; message: string };

/**
 * AUTHMD_SMTP_URL: `smtp://[user:password@]host[:port]` (port 587, STARTTLS when offered, required
 * before a password goes to another machine) or `smtps://…` (port 465, TLS from the start); the user
 * name and password percent-decoded. No path, query or fragment. AUTHMD_MAIL_FROM: `address` or
 * `Name <address>`; default `authmd demo notes <user>` when the SMTP user name is an email address,
 * else `authmd demo notes <no-reply@localhost>`. Unset AUTHMD_SMTP_URL: `smtp` is undefined and mail
 * stays in the development mailbox (AUTHMD_MAIL_FROM is then checked, and unused).
 */
export function readMailSettings(env: NodeJS.ProcessEnv): MailSettingsOutcome {
  const rawFrom = env.AUTHMD_MAIL_FROM?.trim() || undefined;
  if (rawFrom !== undefined && !isMailFrom(rawFrom)) {
    return { ok: false, message: `AUTHMD_MAIL_FROM must be an email address, or a name and an address in <> (got ${JSON.stringify(rawFrom)}). ${FROM_EXAMPLE}` };
  }
  const raw = env.AUTHMD_SMTP_URL?.trim() || undefined;
  if (raw === undefined) return { ok: true };
  const parsed = parseSmtpUrl(raw);
  if ('problem' in parsed) return { ok: false, message: `AUTHMD_SMTP_URL ${parsed.problem}. ${SMTP_EXAMPLE}` };
  const { transport, location } = parsed;
  return { ok: true, smtp: { transport, location, from: rawFrom ?? defaultMailFrom(transport.auth?.user) } };
}

/** `authmd demo notes <user>` when the SMTP user name is an address (most relays send only as it), else `…<no-reply@localhost>`. */
export function defaultMailFrom(user: string | undefined): string {
  return `${MAIL_FROM_NAME} <${user !== undefined && ADDRESS.test(user) ? user : FALLBACK_MAIL_FROM_ADDRESS}>`;
}

/** `createService`'s `mail` option for these settings. */
export function smtpMailOption(smtp: DemoSmtp): { smtp: Record<string, unknown>; from: string } {
  return { smtp: { ...smtp.transport }, from: smtp.from };
}

function isMailFrom(value: string): boolean {
  if (/[\r\n]/.test(value)) return false;
  const named = /^(.*?)\s*<([^<>]*)>$/.exec(value);
  if (named) return !/[<>]/.test(named[1]!) && ADDRESS.test(named[2]!);
  return ADDRESS.test(value);
}

/** The transport options and the masked location, or what is wrong, in words that never repeat the URL. */
function parseSmtpUrl(raw: string): { transport: SmtpTransportOptions; location: string } | { problem: string } {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1]?.toLowerCase();
  if (scheme !== 'smtp' && scheme !== 'smtps') {
    return { problem: 'must start with smtp:// (STARTTLS when the server offers it) or smtps:// (TLS from the start)' };
  }
  const noHost = { problem: `names no host: write ${scheme}://host[:port]` };
  if (!raw.slice(scheme.length + 1).startsWith('//')) return noHost;
  if (!URL.canParse(raw)) {
    const { host, port } = hostAndPort(raw.slice(scheme.length + 3));
    if (!host) return noHost;
    if (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65_535)) return { problem: portProblem(scheme) };
    return { problem: 'is not a URL: check the host and the port, and percent-encode / ? # in the user name or password (%2F %3F %23)' };
  }
  const url = new URL(raw);
  if (!url.hostname) return noHost;
  if (url.pathname && url.pathname !== '/') return { problem: 'has a path: an SMTP URL ends after the host and port (percent-encode / in a password as %2F)' };
  if (url.search || raw.includes('?')) return { problem: 'has a query (?…), which the demo does not read: an SMTP URL ends after the host and port (percent-encode ? in a password as %3F)' };
  if (url.hash || raw.includes('#')) return { problem: 'has a fragment (#…): an SMTP URL ends after the host and port (percent-encode # in a password as %23)' };
  const secure = scheme === 'smtps';
  const port = url.port === '' ? (secure ? DEFAULT_SMTPS_PORT : DEFAULT_SMTP_PORT) : Number(url.port);
  if (!(port >= 1 && port <= 65_535)) return { problem: portProblem(scheme) };
  if (!secure && port === DEFAULT_SMTPS_PORT) return { problem: 'names port 465, which speaks TLS from the start: use smtps:// for it (smtp:// is for 587 or 25, with STARTTLS)' };
  if (secure && (port === DEFAULT_SMTP_PORT || port === 25)) return { problem: `names port ${port}, which starts in plain text and upgrades with STARTTLS: use smtp:// for it (smtps:// is for 465)` };

  let user: string;
  let pass: string;
  try {
    user = decodeURIComponent(url.username);
    pass = decodeURIComponent(url.password);
  } catch {
    return { problem: 'has a malformed percent-escape in the user name or password (% must be followed by two hex digits; write % itself as %25)' };
  }
  if (user && !pass) return { problem: 'has a user name but no password: smtp://user:password@host' };
  if (pass && !user) return { problem: 'has a password but no user name: smtp://user:password@host' };

  // `[::1]` in a URL is `::1` to a socket.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const auth = user ? { user, pass } : undefined;
  const toThisMachine = LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127\.\d+\.\d+\.\d+$/.test(host);
  const transport: SmtpTransportOptions = {
    host,
    port,
    secure,
    // Credentials in plain text to another machine: not even when STARTTLS is stripped on the way.
    ...(!secure && auth && !toThisMachine ? { requireTLS: true as const } : {}),
    ...(auth ? { auth } : {}),
    ...SMTP_TIMEOUTS,
  };
  const location = `${scheme}://${url.username ? `${url.username}${url.password ? ':****' : ''}@` : ''}${url.hostname}:${port}`;
  return { transport, location };
}

function portProblem(scheme: string): string {
  return `has a port outside 1 to 65535: give one in that range or leave it out (${scheme === 'smtps' ? `${DEFAULT_SMTPS_PORT} for smtps://` : `${DEFAULT_SMTP_PORT} for smtp://`})`;
}

/** The host and the port (when it is digits) the authority (after `//`) names, read loosely for a URL that does not parse. */
function hostAndPort(rest: string): { host: string; port?: string } {
  const authority = rest.split(/[/?#]/, 1)[0]!;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  const port = /:(\d+)$/.exec(hostPort)?.[1];
  return { host: port === undefined ? hostPort : hostPort.slice(0, -port.length - 1), ...(port === undefined ? {} : { port }) };
}
