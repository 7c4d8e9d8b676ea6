import { randomBytes } from 'node:crypto';
import { CheckFailed, Skipped } from './check.ts';
import { discover, type Discovered } from './discovery.ts';
import type { Http } from './http.ts';
import type { HumanDriver } from './human/driver.ts';
import type { TestProvider } from './provider/test-provider.ts';

export interface ContextOptions {
  /** The service's base URL, as the operator gave it. */
  base: string;
  /** A URL of the protected API (answers 401 without a token). Default: the metadata's `resource`. */
  api?: string;
  http: Http;
  human: HumanDriver;
  /** The built-in test provider, when it runs. */
  provider?: TestProvider;
  /** Progress for the operator (what the suite is waiting for). */
  note?: (text: string) => void;
}

/**
 * What every check gets: the service's address, plain HTTP, the discovered metadata, the human and
 * the test provider, and a memo for artefacts that several checks share (a claimed registration…).
 */
export class CheckContext {
  readonly base: string;
  readonly http: Http;
  readonly human: HumanDriver;
  readonly provider: TestProvider | undefined;
  readonly note: (text: string) => void;
  /** One per run, so that a second run against the same service meets no leftovers. */
  readonly runId = randomBytes(4).toString('hex');
  private readonly memo = new Map<string, Promise<unknown>>();
  private readonly apiOption: string | undefined;

  constructor(options: ContextOptions) {
    this.base = options.base.endsWith('/') ? options.base.slice(0, -1) : options.base;
    this.http = options.http;
    this.human = options.human;
    this.provider = options.provider;
    this.note = options.note ?? (() => undefined);
    this.apiOption = options.api;
  }

  /** Discovery as its own checks see it: a failure fails the check. */
  discover(): Promise<Discovered> {
    return this.once('discovery', () => discover(this.http, this.base));
  }

  /** Discovery as every other check needs it: when it failed, the check is skipped and says why. */
  async service(): Promise<Discovered> {
    try {
      return await this.discover();
    } catch (error) {
      throw new Skipped(`needs discovery, which failed: ${(error as Error).message}`);
    }
  }

  /**
   * The protected API URL the suite calls with tokens: `--api`, else the metadata's `resource` once it
   * answers 401 without a token. A resource that does not (a public page, a prefix with nothing at it)
   * would make every check that calls the API fail for the wrong reason: they are skipped, naming the flag.
   */
  async api(): Promise<string> {
    if (this.apiOption !== undefined) return this.apiOption;
    return this.once('api', async () => {
      const { resource } = await this.service();
      const answer = await this.http.get(resource);
      if (answer.status !== 401) {
        const type = answer.headers.get('content-type');
        throw new Skipped(
          `needs the protected API: the metadata's resource ${resource} answers ${answer.status}${type ? ` (${type})` : ''} without a token, not 401. ` +
            'Pass --api <URL of an endpoint of the protected API that answers 401 without a token>',
        );
      }
      return resource;
    });
  }

  /**
   * The email the suite registers and signs in with. One address per run (and `label` for a second
   * person), so a human driver signs in once per person and sign-in rate limits are not hit.
   */
  email(label = 'agent'): string {
    return `conformance-${label}-${this.runId}@example.com`;
  }

  /** A value computed once per run and shared by the checks that ask for it (a failure is shared too). */
  once<T>(key: string, make: () => Promise<T>): Promise<T> {
    let value = this.memo.get(key) as Promise<T> | undefined;
    if (!value) {
      value = make();
      this.memo.set(key, value);
    }
    return value;
  }

  /** A fresh value every time (a unique `jti`, a unique name). */
  unique(prefix: string): string {
    return `${prefix}-${this.runId}-${randomBytes(6).toString('hex')}`;
  }
}

/** The failure of a prerequisite, as a skip of the check that needed it. */
export async function prerequisite<T>(what: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (error) {
    if (error instanceof Skipped) throw error;
    throw new Skipped(`needs ${what}, which failed: ${error instanceof CheckFailed ? error.message : String(error)}`);
  }
}
