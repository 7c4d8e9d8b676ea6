import { describe, expect, it } from 'vitest';
import { afterTest } from '../../../test-support/after-test.ts';
import { malformedPath } from '../src/index.ts';
import { startProvider } from './support.ts';

/** toNodeListener over real HTTP on 127.0.0.1: what it refuses before any handler sees the request. */

describe('toNodeListener', () => {
  it('answers a path with a malformed percent-encoding with 400 invalid_request JSON before the handler', async () => {
    const running = await startProvider();
    afterTest(() => running.close());
    const base = running.server.url;
    for (const path of ['/.well-known/jwks.json%zz', '/%', '/agent-auth.json/%C3%28', '/%E0%A4%A?x=1', '/.well-known/oauth-authorization-server/%g0']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status, path).toBe(400);
      expect(response.headers.get('content-type'), path).toBe('application/json');
      expect(await response.json(), path).toEqual({
        error: 'invalid_request',
        error_description: 'The request path has a malformed percent-encoding.',
        message: 'The request path has a malformed percent-encoding.',
      });
    }
    // Well-formed escapes reach the handler, and the query is the handler's business.
    expect((await fetch(`${base}/.well-known/jwks%2Ejson`)).status).toBe(404);
    expect((await fetch(`${base}/agent-auth.json?q=%zz`)).status).toBe(200);
    expect((await fetch(`${base}/agent-auth.json`)).status).toBe(200);
  });

  it('malformedPath: a % without two hex digits, or escaped bytes that are not UTF-8; the query aside', () => {
    for (const bad of ['/%', '/%z', '/%zz', '/a%2', '/%C3%28', '/%FF', '/%E0%A4%A']) expect(malformedPath(bad), bad).toBe(true);
    for (const good of ['/', '/grants/grant_1', '/%20', '/caf%C3%A9', '/%2F%2e', '/a?b=%zz', '/a?%']) expect(malformedPath(good), good).toBe(false);
  });
});
