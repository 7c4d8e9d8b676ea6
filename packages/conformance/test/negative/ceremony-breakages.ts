import { grantTypes } from '@authmd/protocol';
import { bodyOf, pathOf, type Breakage, type ProxiedResponse } from '../fixtures/broken-service.ts';

/** Breakages shared by the ceremony and refresh negative tests. */

function subOf(jwt: string): string | undefined {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')).sub;
  } catch {
    return undefined;
  }
}

function assertionIn(response: ProxiedResponse): string | undefined {
  try {
    const body = JSON.parse(response.body.toString('utf8'));
    const assertion = body?.identity?.assertion ?? body?.identity_assertion;
    return typeof assertion === 'string' ? assertion : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A token endpoint without assertion generations (protocol-reference §8 item 16): every assertion of a
 * registration is as good as its newest one. The proxy remembers the newest assertion the service
 * handed out per registration (`sub`) and exchanges that one whenever an older one is presented.
 */
export function newestAssertionOfItsRegistration(): Breakage {
  const newest = new Map<string, string>();
  return {
    request(request) {
      const form = bodyOf(request);
      if (request.method !== 'POST' || pathOf(request) !== '/oauth2/token' || form.grant_type !== grantTypes.jwtBearer) return request;
      const current = newest.get(subOf(String(form.assertion)) ?? '');
      if (!current) return request;
      return { ...request, body: Buffer.from(new URLSearchParams({ ...form, assertion: current }).toString()) };
    },
    response(request, response) {
      const assertion = response.status === 200 && pathOf(request).startsWith('/agent/identity') ? assertionIn(response) : undefined;
      const sub = assertion && subOf(assertion);
      if (assertion && sub) newest.set(sub, assertion);
      return response;
    },
  };
}
