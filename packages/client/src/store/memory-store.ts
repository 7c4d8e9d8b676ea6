/**
 * A credential store that lives and dies with the process: for tests, and for agents that must not
 * touch the disk. Records are copied in and out, so callers never hold a reference to stored state.
 */
import type { CredentialStore, IssuerRecord } from './contract.ts';
import { requireIssuer, sanitizeRecord, toRecordMap } from './record.ts';

export class MemoryCredentialStore implements CredentialStore {
  readonly #records = new Map<string, IssuerRecord>();

  /** Optionally seeded with records (validated and copied). */
  constructor(initial?: Record<string, IssuerRecord>) {
    for (const [issuer, record] of Object.entries(initial ?? {})) {
      this.#records.set(requireIssuer(issuer), sanitizeRecord(record, `records[${JSON.stringify(issuer)}]`));
    }
  }

  async get(issuer: string): Promise<IssuerRecord | undefined> {
    const record = this.#records.get(requireIssuer(issuer));
    return record === undefined ? undefined : sanitizeRecord(record);
  }

  async list(): Promise<Record<string, IssuerRecord>> {
    return toRecordMap(this.#records);
  }

  async update(
    issuer: string,
    change: (current: IssuerRecord | undefined) => IssuerRecord | undefined,
  ): Promise<IssuerRecord | undefined> {
    requireIssuer(issuer);
    // `change` is synchronous and this body has no await before the write, so it is exclusive.
    const current = this.#records.get(issuer);
    const next = change(current === undefined ? undefined : sanitizeRecord(current));
    if (next === undefined) {
      this.#records.delete(issuer);
      return undefined;
    }
    const stored = sanitizeRecord(next, 'the record returned by change');
    this.#records.set(issuer, stored);
    return sanitizeRecord(stored);
  }
}
