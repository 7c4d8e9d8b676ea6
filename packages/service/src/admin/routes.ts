import type { EngineContext } from '../engine/context.ts';
import type { Endpoint } from '../http/env.ts';
import * as api from './api.ts';
import * as pages from './console/pages.ts';
import { consolePaths } from './console/views.ts';

/** The admin API's and the console's routes, under `<issuer path><admin.path>`; none when admin is off. */
export function adminRoutes(ctx: EngineContext): [string, Partial<Record<string, Endpoint>>][] {
  const admin = ctx.config.admin;
  if (!admin) return [];
  const at = (path: string) => ctx.config.issuerPath + admin.path + path;
  const paths = api.adminApiPaths;
  return [
    [at(paths.registrations), { GET: api.listRegistrations }],
    [at(paths.registration), { GET: api.getRegistration }],
    [at(paths.revoke), { POST: api.postRevoke }],
    [at(paths.revocations), { POST: api.postRevocations }],
    [at(paths.providers), { GET: api.getProviders }],
    [at(paths.signingKeys), { GET: api.getSigningKeys }],
    [at(paths.rotateSigningKey), { POST: api.postRotateSigningKey }],
    [at(paths.rateLimits), { GET: api.getRateLimits }],
    [at(paths.clearRateLimits), { POST: api.postClearRateLimits }],
    [at(consolePaths.registrations), { GET: pages.registrationsPage }],
    [at(consolePaths.registration), { GET: pages.registrationPage }],
    [at(consolePaths.revoke), { POST: pages.revokeAction }],
    [at(consolePaths.bulkRevoke), { GET: pages.bulkRevokePage, POST: pages.bulkRevokeAction }],
    [at(consolePaths.providers), { GET: pages.providersPage }],
    [at(consolePaths.keys), { GET: pages.keysPage }],
    [at(consolePaths.rotateKey), { POST: pages.rotateKeyAction }],
    [at(consolePaths.rateLimits), { GET: pages.rateLimitsPage }],
    [at(consolePaths.clearRateLimits), { POST: pages.clearRateLimitsAction }],
  ];
}
