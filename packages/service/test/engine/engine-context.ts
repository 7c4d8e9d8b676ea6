import { silentLogger } from '@authmd/core';
import { safeFetch } from '@authmd/core/fetch';
import { Keyring } from '@authmd/core/keys';
import { createMemoryStore } from '@authmd/core/store';
import { storeAuditSink } from '../../src/audit.ts';
import { resolveConfig } from '../../src/config.ts';
import { AccessTokens } from '../../src/engine/access-tokens.ts';
import type { EngineContext } from '../../src/engine/context.ts';
import { VerifiedAssertions } from '../../src/engine/verified-assertions.ts';
import { DevOutbox } from '../../src/mail/outbox.ts';
import { noMetrics } from '../../src/metrics.ts';
import { serviceTables } from '../../src/schema.ts';
import { cryptoRandom } from '../../src/secrets.ts';
import { TrustList } from '../../src/trust/trust-list.ts';
import { testClock, type TestClock } from '../support/harness.ts';

/** A real engine context on the memory store with a clock the test moves: engine tests without HTTP. */
export async function engineContext(): Promise<EngineContext & { clock: TestClock }> {
  const clock = testClock();
  const store = createMemoryStore();
  const config = resolveConfig({ issuer: 'https://service.example', scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] } });
  await store.migrate(serviceTables);
  const keys = await Keyring.open({
    store,
    algorithm: config.signing.algorithm,
    clock,
    logger: silentLogger,
    publishAfterRetirementMs: config.lifetimes.assertionMs,
    rotateAfterMs: config.signing.rotateAfterMs,
  });
  return {
    config,
    store,
    keys,
    clock,
    random: cryptoRandom,
    logger: silentLogger,
    audit: storeAuditSink({ random: cryptoRandom, logger: silentLogger, retentionMs: config.auditRetentionMs }),
    tokens: new AccessTokens(store, cryptoRandom, clock, config.tokenCacheMs),
    verifiedAssertions: new VerifiedAssertions(clock),
    secret: new Uint8Array(32).fill(7),
    mailer: new DevOutbox(clock),
    signIn: {},
    trust: new TrustList(config.trust.issuers, { fetcher: safeFetch, clock, allowLoopback: false, logger: silentLogger }),
    metrics: noMetrics,
  };
}
