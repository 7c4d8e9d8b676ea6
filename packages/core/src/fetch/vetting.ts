import { promises as dns, type LookupAddress } from 'node:dns';
import type { EventEmitter } from 'node:events';
import type { LookupFunction } from 'node:net';
import { SafeFetchError } from './fetch-error.ts';
import { isLoopback, isSpecialUse } from './special-use.ts';

/**
 * Which addresses a request may reach: public ones; public ones and loopback (https while the
 * operator allows loopback for development); or loopback only (plain http, development only).
 */
export type AddressPolicy = 'public' | 'public-or-loopback' | 'loopback-only';

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

/** Why `address` may not be reached under `policy`, or undefined when it may. */
export function refusal(address: string | undefined, policy: AddressPolicy, host = address): SafeFetchError | undefined {
  if (address === undefined) return new SafeFetchError('blocked_address', 'the connection has no remote address to check');
  if (policy === 'loopback-only') {
    return isLoopback(address) ? undefined : new SafeFetchError('insecure_url', `plain http is only allowed to loopback, and ${host} is ${address}`);
  }
  if (!isSpecialUse(address, { allowLoopback: policy === 'public-or-loopback' })) return undefined;
  return new SafeFetchError('blocked_address', `${host} is ${address}, a special-use address`);
}

/**
 * A `lookup` for http(s).request that resolves the name once and refuses it unless every answer is
 * allowed (an attacker who controls one record of several must not get a connection). Node then
 * connects to exactly the answers vetted here, while Host and SNI keep the name.
 */
export function vettedLookup(policy: AddressPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    const vet = async (): Promise<LookupAddress[]> => {
      const answers = await resolve(hostname);
      for (const answer of answers) {
        const refused = refusal(answer.address, policy, hostname);
        if (refused) throw refused;
      }
      const wanted = answers.filter((answer) => !options.family || answer.family === options.family);
      if (wanted.length === 0) throw new SafeFetchError('network', `${hostname} did not resolve`);
      return wanted;
    };
    vet().then(
      (answers) => (options.all ? callback(null, answers) : callback(null, answers[0]!.address, answers[0]!.family)),
      (error: unknown) => callback(error instanceof SafeFetchError ? error : networkError(hostname, error), ''),
    );
  };
}

type ConnectingSocket = EventEmitter & { remoteAddress?: string | undefined; connecting?: boolean; destroy(error?: Error): unknown };

/**
 * Checks the address a socket actually reached, once connected and before any request byte leaves
 * (the listener is prepended, so it runs before the queued writes): defence in depth behind the
 * lookup, which a rebinding resolver or a missed code path could get round.
 */
export function guardSocket(socket: ConnectingSocket, policy: AddressPolicy): void {
  const check = () => {
    const refused = refusal(socket.remoteAddress, policy);
    if (refused) socket.destroy(refused);
  };
  if (socket.connecting === false) check();
  else socket.prependOnceListener('connect', check);
}

export function networkError(host: string, error: unknown): SafeFetchError {
  const code = (error as { code?: unknown })?.code;
  const detail = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
  return new SafeFetchError('network', `${host}: ${detail}`);
}
