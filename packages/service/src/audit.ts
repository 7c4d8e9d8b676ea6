import type { Logger } from '@authmd/core';
import type { JsonValue, StoreOps } from '@authmd/core/store';
import { auditEvents } from './schema.ts';
import { timeOrderedValue, type RandomSource } from './secrets.ts';

export type AuditEventType =
  | 'registration.created'
  | 'registration.revoked'
  | 'registration.revived'
  | 'registration.expired'
  | 'assertion.revoked'
  | 'assertion.refreshed'
  | 'claim.requested'
  | 'code.revealed'
  | 'claim.confirmed'
  | 'claim.denied'
  | 'token.issued'
  | 'token.revoked'
  | 'api_key.upgraded'
  /** What an operator did through the admin API or console, besides revoking one registration. */
  | 'admin.action';

export interface AuditEvent {
  type: AuditEventType;
  at: number;
  registrationId?: string;
  data?: Record<string, JsonValue>;
}

/**
 * Receives one event per state change. `record` runs inside the transaction that makes the change
 * (`tx`), so a sink that writes to the store records the event exactly when the change lands.
 */
export interface AuditSink {
  record(event: AuditEvent, tx: StoreOps): Promise<void>;
}

/** The default sink: the event goes into the store's audit table and into the structured log. */
export function storeAuditSink(options: { random: RandomSource; logger: Logger; retentionMs: number }): AuditSink {
  return {
    async record(event, tx) {
      await tx.append(auditEvents, {
        id: timeOrderedValue(options.random, 'evt_', event.at),
        type: event.type,
        at: event.at,
        registration_id: event.registrationId ?? null,
        data: event.data ?? null,
        expires_at: event.at + options.retentionMs,
      });
      options.logger.info('audit', { event: event.type, registration_id: event.registrationId, ...event.data });
    },
  };
}
