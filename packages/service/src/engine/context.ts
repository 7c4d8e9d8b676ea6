import type { Logger } from '@authmd/core';
import type { Keyring } from '@authmd/core/keys';
import type { Store } from '@authmd/core/store';
import type { AuditSink } from '../audit.ts';
import type { ServiceConfig, SignInOptions } from '../config.ts';
import type { Mailer } from '../mail/mailer.ts';
import type { ServiceMetrics } from '../metrics.ts';
import type { RandomSource } from '../secrets.ts';
import type { TrustList } from '../trust/trust-list.ts';
import type { AccessTokens } from './access-tokens.ts';
import type { VerifiedAssertions } from './verified-assertions.ts';

/** What every engine operation may use. The engine knows nothing of HTTP. */
export interface EngineContext {
  config: ServiceConfig;
  store: Store;
  keys: Keyring;
  clock: () => number;
  random: RandomSource;
  audit: AuditSink;
  logger: Logger;
  tokens: AccessTokens;
  /** Our identity assertions whose signature this process made or checked (verified once, not per exchange). */
  verifiedAssertions: VerifiedAssertions;
  /** The service-wide HMAC key for one-time codes and CSRF tokens (shared by replicas through the store). */
  secret: Uint8Array;
  mailer: Mailer;
  signIn: SignInOptions;
  /** Trusted agent providers and their keys. */
  trust: TrustList;
  /** Prometheus collectors when the `metrics` option is on; `noMetrics` otherwise. */
  metrics: ServiceMetrics;
}
