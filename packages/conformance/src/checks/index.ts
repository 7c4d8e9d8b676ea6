import { groups, type Check } from '../check.ts';
import { badInputChecks } from './bad-input.ts';
import { ceremonyChecks } from './ceremony.ts';
import { discoveryChecks } from './discovery.ts';
import { eventsChecks } from './events.ts';
import { refreshChecks } from './refresh.ts';
import { registrationChecks } from './registration.ts';
import { revocationChecks } from './revocation.ts';
import { securityChecks } from './security.ts';
import { tokenChecks } from './token.ts';
import { v01Checks } from './v01.ts';

const checks: readonly Check[] = [
  ...discoveryChecks,
  ...registrationChecks,
  ...tokenChecks,
  ...revocationChecks,
  ...refreshChecks,
  ...ceremonyChecks,
  ...eventsChecks,
  ...badInputChecks,
  ...securityChecks,
  ...v01Checks,
];

/**
 * Every check, in the order they run: the ones later groups build on come first, group by group (the
 * v0.1 checks run with their groups: `registration.v01-*` after the other registration checks…).
 */
export const catalogue: readonly Check[] = groups.flatMap((group) => checks.filter((check) => check.group === group));
