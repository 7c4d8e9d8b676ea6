import { readFile } from 'node:fs/promises';
import { bearerChallenge } from '@authmd/protocol';
import { AuthmdClientError } from '../../errors.ts';
import type { ClaimRequiredResult } from '../../types.ts';
import { UsageError, type ParsedArgs } from '../args.ts';
import { emailOption, jsonOption, noWaitOption, targetUrl, type Command } from '../command.ts';
import { ExitCode } from '../exit-codes.ts';
import { write, type Io } from '../io.ts';
import { claimJson } from '../render.ts';
import { emailFrom, Session } from '../session.ts';
import { waitForHuman } from '../wait-for-human.ts';

export const fetchCommand: Command = {
  name: 'fetch',
  summary: 'Call an API with the stored credentials (like curl), registering first when needed.',
  usage: `Usage: authmd fetch <url> [-X <method>] [-d <body>] [-H 'Name: value']... [-i] [--email <email>] [--no-wait] [--json]

Sends a request with the agent's credentials for the service behind <url> and prints the response body
on stdout. An unknown service is discovered from its 401 and registered with (anonymously, or by email
with --email). When a person must approve the agent, authmd shows the link as \`authmd login\` does,
waits, and then sends the request.

Options:
  -X, --request <method>   the HTTP method (default GET, or POST with -d)
  -d, --data <body>        the request body; @file reads a file, @- reads stdin. Without a
                           Content-Type header, a JSON body is sent as application/json, any other as text/plain
  -H, --header <header>    'Name: value'; repeatable
  -i, --include            print the status line and the response headers before the body
  --email <email>          the person's email (default: $AUTHMD_EMAIL)
  --no-wait                when a person must approve, print the hand-off and exit 2
  --json                   print {"status", "headers", "body"} as one JSON object
  -h, --help               this help

Exit codes: 0 a 2xx answer, 1 any other answer or error, 2 a person must act, 3 denied, 64 usage,
69 unreachable or 502/503/504, 130 Ctrl+C.`,
  options: [
    { name: 'request', short: 'X', value: true },
    { name: 'data', short: 'd', value: true },
    { name: 'header', short: 'H', value: true, repeat: true },
    { name: 'include', short: 'i' },
    emailOption,
    noWaitOption,
    jsonOption,
  ],

  async run(io, args) {
    const url = targetUrl(args, 'fetch');
    const email = emailFrom(args.values.get('email'), io.env);
    const wait = !args.switches.has('no-wait');
    const json = args.switches.has('json');
    const request = await requestFrom(args, io);
    const session = new Session(io, { email, waiting: wait, rerun: `authmd login ${new URL(url).origin}${email ? ` --email ${email}` : ''}` });

    const send = () => session.client.fetch(url, request.init);
    let response: Response;
    try {
      response = await send();
    } catch (error) {
      const claim = claimOf(error);
      if (!claim) throw error;
      if (!wait) {
        if (json) await write(io.stdout, `${JSON.stringify(claimJson(claim))}\n`);
        return ExitCode.needsHuman;
      }
      const ready = await waitForHuman(session, url, claim, { stdinBusy: request.stdinBusy });
      io.stderr.write(`Approved: ${ready.registration_type} registration, scopes ${ready.scope ?? '(none listed)'}.\n`);
      response = await send();
    }
    await printResponse(io, response, { json, include: args.switches.has('include') });
    if (response.ok) return ExitCode.ok;
    io.stderr.write(`authmd: ${request.init.method} ${url} answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}.${hint(response, url)}\n`);
    return [502, 503, 504].includes(response.status) ? ExitCode.unavailable : ExitCode.error;
  },
};

async function requestFrom(args: ParsedArgs, io: Io): Promise<{ init: RequestInit & { method: string }; stdinBusy: boolean }> {
  const headers = new Headers();
  for (const header of args.lists.get('header') ?? []) {
    const colon = header.indexOf(':');
    const name = colon > 0 ? header.slice(0, colon).trim() : '';
    if (!name) throw new UsageError(`-H "${header}" is not a header; write it as 'Name: value'.`, 'fetch');
    try {
      headers.append(name, header.slice(colon + 1).trim());
    } catch {
      throw new UsageError(`-H "${header}" is not a valid header.`, 'fetch');
    }
  }
  const data = args.values.get('data');
  const body = data === undefined ? undefined : await bodyFrom(data, io);
  if (body !== undefined && !headers.has('content-type')) headers.set('Content-Type', isJson(body) ? 'application/json' : 'text/plain;charset=utf-8');
  const method = (args.values.get('request') ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new UsageError(`-X ${method} is not an HTTP method.`, 'fetch');
  if (body !== undefined && (method === 'GET' || method === 'HEAD')) throw new UsageError(`A ${method} request cannot have a body (-d); use -X POST.`, 'fetch');
  return { init: { method, headers, ...(body === undefined ? {} : { body }) }, stdinBusy: data === '@-' };
}

async function bodyFrom(data: string, io: Io): Promise<string> {
  if (!data.startsWith('@')) return data;
  if (data === '@-') {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(data.slice(1), 'utf8');
  } catch (error) {
    throw new UsageError(`Cannot read ${data.slice(1)} for -d: ${(error as Error).message}`, 'fetch');
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function claimOf(error: unknown): ClaimRequiredResult | undefined {
  if (!(error instanceof AuthmdClientError) || error.code !== 'claim_required') return undefined;
  const body = error.details.body as ClaimRequiredResult | undefined;
  return body?.status === 'claim_required' ? body : undefined;
}

async function printResponse(io: Io, response: Response, flags: { json: boolean; include: boolean }): Promise<void> {
  const bytes = Buffer.from(await response.arrayBuffer());
  if (flags.json) {
    const text = bytes.toString('utf8');
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the text as it is
    }
    await write(io.stdout, `${JSON.stringify({ status: response.status, headers: Object.fromEntries(response.headers), body })}\n`);
    return;
  }
  if (flags.include) {
    const lines = [`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`];
    response.headers.forEach((value, name) => lines.push(`${name}: ${value}`));
    await write(io.stdout, `${lines.join('\r\n')}\r\n\r\n`);
  }
  await write(io.stdout, bytes);
  if (io.stdout.isTTY && bytes.length && bytes[bytes.length - 1] !== 0x0a) await write(io.stdout, '\n');
}

/** What to do about a refusal, when the answer says. */
function hint(response: Response, url: string): string {
  const challenge = bearerChallenge(response.headers.get('www-authenticate'));
  if (response.status === 403 && challenge?.error === 'insufficient_scope') {
    const needed = challenge.scope;
    return ` The agent's credentials lack the scope${needed ? ` (${needed})` : ''}: if the agent is not yet linked to a person, run \`authmd login ${new URL(url).origin} --email you@example.com\` to have them approve it.`;
  }
  return '';
}
