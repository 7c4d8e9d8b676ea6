import { PROVIDER_EXAMPLE_EMAIL } from './agent-verified-walkthrough.ts';
import { mailboxUrl, READ_BACK_BUTTON, TYPE_IN_BUTTON } from './claim-walkthrough.ts';
import { documentLinks, firstCurl, walkthrough } from './walkthrough.ts';

/** What `npm start` prints once the demo is listening. */
export function renderBanner(options: {
  name: string;
  url: string;
  dbPath: string;
  /** Which database, and where (a PostgreSQL URL already without its password); default SQLite at `dbPath`. */
  database?: { kind: 'sqlite' | 'memory' | 'postgres'; location: string };
  /** The Redis holding rate-limit counters and invalidation (a URL already without its password), when there is one. */
  redis?: { location: string };
  /** The address this process listens on, when the public URL names another (a replica behind a load balancer). */
  listening?: string;
  providerUrl?: string;
  keyEncryption?: { source: 'environment' | 'file'; path?: string; generated: boolean };
  /** AUTHMD_SMTP_URL: the SMTP server (its URL with the password masked) and the From; default the dev mailbox. */
  mail?: { location: string; from: string };
}): string {
  const { name, url, dbPath, providerUrl, keyEncryption, listening } = options;
  const database = options.database ?? { kind: 'sqlite', location: dbPath };
  const width = 16;
  const row = (label: string, value: string) => `  ${label.padEnd(width)}${value}`;
  const indent = (text: string, spaces: string) => text.split('\n').join(`\n${spaces}`);
  const lines = [
    '',
    `${name} is running.`,
    '',
    row('Home page', `${url}/`),
    ...documentLinks(url).map((link) => row(link.label === 'auth.md' ? 'auth.md' : shortLabel(link.label), link.url)),
    options.mail
      ? row('Mail', `${options.mail.location}   (sign-in and claim codes are emailed through this server, from ${options.mail.from})`)
      : listening && listening !== url
      ? row('Dev mailbox', `${mailboxUrl(listening)}   (this replica's: the sign-in codes it sends land here; no mail is sent)`)
      : row('Dev mailbox', `${mailboxUrl(url)}   (sign-in codes land here; no mail is sent)`),
    row(DATABASE_LABEL[database.kind], database.kind === 'postgres' ? `${database.location}   (shared by every replica on it)` : database.location),
    ...(options.redis ? [row('Redis', `${options.redis.location}   (rate-limit counters and cache invalidation, shared by every replica on it)`)] : []),
    ...(listening && listening !== url ? [row('Listening on', `${listening}   (this replica; ${url} is the issuer every replica names)`)] : []),
    row('Health', `${listening ?? url}/healthz   ${listening ?? url}/readyz   (liveness; readiness: the database answers)`),
    ...(keyEncryption ? [row('Key encryption', keyEncryptionNote(keyEncryption))] : []),
    ...(providerUrl ? [row('Agent provider', `${providerUrl}/   (a demo identity provider this service trusts: sign in, grant, revoke)`)] : []),
    '',
    'Try it (no token yet, so: 401 and a WWW-Authenticate challenge):',
    `  ${firstCurl(url)}`,
    '',
    'Walk the agent path (bash, curl and node):',
    ...walkthrough(url).flatMap((step, i) => [`  ${i + 1}. ${step.title}`, `     ${indent(step.command, '     ')}`, `     → ${step.expect}`]),
    '',
    'Then claim it as a human for notes.write: the agent registers with your email and gets a link;',
    `you sign in there with the code from ${options.mail ? 'the email' : 'the dev mailbox'}, type the code the agent shows and press`,
    `"${TYPE_IN_BUTTON}" (or press "${READ_BACK_BUTTON}" and read that code to the agent).`,
    'The home page has every command.',
    ...(providerUrl
      ? [
          '',
          'Or let a provider vouch for the user (Agent Verified, no human step): at the agent provider,',
          `sign in as ${PROVIDER_EXAMPLE_EMAIL} and allow agents at this service; an agent then registers with`,
          'an ID-JAG from the provider and gets notes.write at once. Revoke there and the tokens stop',
          'working within seconds. The home page has the curl commands for all of it.',
        ]
      : []),
    'Ctrl+C stops the server.',
    '',
  ];
  return lines.join('\n');
}

const DATABASE_LABEL = { sqlite: 'SQLite', memory: 'Memory', postgres: 'PostgreSQL' } as const;

/** Where the key that encrypts the stored signing keys is (issue 10). */
function keyEncryptionNote(keyEncryption: { source: 'environment' | 'file'; path?: string; generated: boolean }): string {
  if (keyEncryption.source === 'environment') return 'AUTHMD_KEY_ENCRYPTION_KEY   (from the environment: it encrypts the stored signing keys)';
  const what = keyEncryption.generated ? 'generated now, as AUTHMD_KEY_ENCRYPTION_KEY is not set' : 'reused; AUTHMD_KEY_ENCRYPTION_KEY is not set';
  return `${keyEncryption.path}   (${what}: it encrypts the stored signing keys; without it they cannot be read)`;
}

function shortLabel(label: string): string {
  if (label.startsWith('Protected resource')) return 'Resource meta';
  if (label.startsWith('Authorization server')) return 'AS metadata';
  return label;
}
