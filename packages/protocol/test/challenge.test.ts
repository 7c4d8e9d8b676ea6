import { describe, expect, it } from 'vitest';
import { bearerChallenge, parseChallenges } from '@authmd/protocol';

describe('WWW-Authenticate challenges', () => {
  it('reads the Bearer challenge among others, with quoted and token values', () => {
    expect(bearerChallenge('DPoP algs="ES256", Bearer realm="notes", resource_metadata="https://a.example/.well-known/oauth-protected-resource", error=invalid_token')).toEqual({
      realm: 'notes',
      resource_metadata: 'https://a.example/.well-known/oauth-protected-resource',
      error: 'invalid_token',
    });
    expect(bearerChallenge('bearer resource_metadata="https://a.example/x\\"y"')).toEqual({ resource_metadata: 'https://a.example/x"y' });
    expect(bearerChallenge('Basic realm="x"')).toBeUndefined();
    expect(bearerChallenge(null)).toBeUndefined();
  });

  it('keeps every challenge in order, with its scheme as written', () => {
    expect(parseChallenges('AgentAuth error="login_required", max_age="3600", Bearer error="invalid_token"')).toEqual([
      { scheme: 'AgentAuth', params: { error: 'login_required', max_age: '3600' } },
      { scheme: 'Bearer', params: { error: 'invalid_token' } },
    ]);
  });
});
