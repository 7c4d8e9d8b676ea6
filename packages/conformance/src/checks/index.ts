import type { Check } from '../check.ts';
import { badInputChecks } from './bad-input.ts';
import { ceremonyChecks } from './ceremony.ts';
import { discoveryChecks } from './discovery.ts';
import { eventsChecks } from './events.ts';
import { refreshChecks } from './refresh.ts';
import { registrationChecks } from './registration.ts';
import { revocationChecks } from './revocation.ts';
import { securityChecks } from './security.ts';
import { tokenChecks } from './token.ts';

/** Every check, in the order they run: the ones later groups build on come first. */
export const catalogue: readonly Check[] = [
  ...discoveryChecks,
  ...registrationChecks,
  ...tokenChecks,
  ...revocationChecks,
  ...refreshChecks,
  ...ceremonyChecks,
  ...eventsChecks,
  ...badInputChecks,
  ...securityChecks,
];
