import type { AdvertisedDialects, Dialect } from '@authmd/protocol';

export type { Dialect };

/**
 * The newest dialect a service advertises. `current` and `v0.7` share the identity endpoint (and
 * this client speaks both at once there, as it always has); v0.1 is used only when that endpoint is
 * not offered.
 */
export function chooseDialect(advertised: AdvertisedDialects, identityEndpoint: boolean): Dialect {
  if (identityEndpoint) return advertised.v07 && !advertised.current ? 'v0.7' : 'current';
  return 'v0.1';
}
