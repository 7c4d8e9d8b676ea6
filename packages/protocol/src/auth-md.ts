import { errorSpec, wireCode, type ErrorCode } from './errors.ts';
import type { DiscoveryDescription } from './metadata.ts';
import { wellKnown, wellKnownUrl } from './paths.ts';
import { grantTypes } from './urns.ts';

/**
 * Renders the auth.md document an agent reads to learn how to register with this service. Everything
 * in it comes from the service's configuration, so it never describes a method that is switched off.
 */

export interface AuthMdDescription {
  serviceName: string;
  /** One or two sentences on what the service is, shown under the title. */
  summary?: string;
  discovery: DiscoveryDescription;
  preClaimScopes: readonly string[];
  postClaimScopes: readonly string[];
  lifetimes: {
    assertionSeconds: number;
    accessTokenSeconds: number;
    claimWindowSeconds: number;
    attemptSeconds?: number;
    refreshTokenSeconds?: number;
  };
  /** Display names of trusted ID-JAG providers. */
  trustedProviders?: readonly string[];
}

export const authMdSections = [
  'Discover',
  'Pick a method',
  'Register',
  'Claim ceremony',
  'Exchange the assertion',
  'Use the access_token',
  'Errors',
  'Revocation',
] as const;

export function renderAuthMd(d: AuthMdDescription): string {
  const sections = [
    `# auth.md: ${d.serviceName}`,
    [
      d.summary ?? '',
      `This document tells an AI agent how to get credentials for ${d.serviceName} on behalf of a user, without a browser form.`,
      `It follows the auth.md protocol; this service speaks the dialects ${list(d.discovery.dialects)}.`,
      'Every response of the endpoints below is JSON; every error carries `error`, `error_description` and `message`.',
    ]
      .filter(Boolean)
      .join(' '),
    discover(d),
    pickAMethod(d),
    register(d),
    claimCeremony(d),
    exchange(d),
    useTheAccessToken(d),
    errors(d),
    revocation(d),
    ...(d.discovery.dialects.includes('v0.1') ? [v01(d)] : []),
  ];
  return `${sections.join('\n\n')}\n`;
}

function discover(d: AuthMdDescription): string {
  const { issuer, endpoints, resources } = d.discovery;
  const resource = resources[0]?.resource ?? issuer;
  const rows: [string, string | undefined][] = [
    ['Register, refresh', endpoints.identity],
    ['Start a claim', endpoints.claim],
    ['Finish a claim (read-back)', endpoints.claim && `${endpoints.claim}/complete`],
    ['Token endpoint', endpoints.token],
    ['Revoke a token', endpoints.revocation],
    ['Provider security events', endpoints.events],
    ['Service signing keys', endpoints.jwks],
    ['v0.1: register, get a credential', endpoints.v01Register],
    ['v0.1: claim by email', endpoints.v01Claim],
    ['v0.1: finish a claim', endpoints.v01Claim && `${endpoints.v01Claim}/complete`],
    ['v0.1: provider logout tokens', endpoints.v01Revocation],
  ];
  return [
    '## Discover',
    'Call the API without a token. The answer is `401` with a challenge that points at the protected resource metadata:',
    fence('http', `WWW-Authenticate: Bearer resource_metadata="${wellKnownUrl(resource, wellKnown.protectedResource)}"`),
    `1. \`GET ${wellKnownUrl(resource, wellKnown.protectedResource)}\` (RFC 9728). Its \`resource\` must equal the resource you asked about; \`authorization_servers[0]\` is the issuer, \`${issuer}\`.`,
    `2. \`GET ${wellKnownUrl(issuer, wellKnown.authorizationServer)}\` (RFC 8414). Its \`issuer\` must equal \`${issuer}\`; the \`agent_auth\` member lists the endpoints and methods.`,
    '',
    '| purpose | endpoint |',
    '|---|---|',
    ...rows.filter(([, url]) => url).map(([purpose, url]) => `| ${purpose} | \`${url}\` |`),
  ].join('\n');
}

function pickAMethod(d: AuthMdDescription): string {
  const types = d.discovery.identityTypes;
  const methods: string[] = [];
  if (types.includes('identity_assertion')) {
    const providers = d.trustedProviders?.length ? ` Trusted providers: ${list(d.trustedProviders)}.` : '';
    methods.push(
      `- **identity_assertion**: your platform can mint an ID-JAG for the user with \`aud\` = \`${d.discovery.issuer}\`. Credentials come back at once.${providers}`,
    );
  }
  if (types.includes('service_auth')) {
    methods.push('- **service_auth**: you know the user\'s email. You get nothing until the user confirms on a page of this service (see Claim ceremony).');
  }
  if (types.includes('anonymous')) {
    methods.push(
      `- **anonymous**: you have nothing about the user. You get an identity at once with the pre-claim scopes (${list(d.preClaimScopes)}); a human can claim it later to unlock ${list(d.postClaimScopes)}.`,
    );
  }
  if (methods.length === 0) methods.push('- No registration method is switched on at the moment.');
  return ['## Pick a method', 'Use the lightest method you can, in this order:', ...methods].join('\n');
}

function register(d: AuthMdDescription): string {
  const { endpoints, identityTypes, dialects } = d.discovery;
  if (!endpoints.identity) return '## Register\nRegistration is not offered by this service.';
  const lines = ['## Register', `\`POST ${endpoints.identity}\` with \`Content-Type: application/json\`.`];
  if (identityTypes.includes('anonymous')) {
    lines.push(fence('bash', `curl -s -X POST ${endpoints.identity} -H 'Content-Type: application/json' -d '{"type":"anonymous"}'`));
    lines.push(
      'The answer carries `id`, `identity.assertion` (a signed JWT, the identity to exchange for access tokens), `identity.expires_at`, `scopes.pre_claim`, `scopes.post_claim`,',
      `and \`claim.token\` with \`claim.url\`. Keep the claim token in memory only: it is returned once and lets a human claim this registration within ${duration(d.lifetimes.claimWindowSeconds)}.`,
    );
  }
  if (identityTypes.includes('service_auth')) {
    lines.push(fence('json', '{"type":"service_auth","login_hint":"user@example.com"}'));
    lines.push('The answer carries `claim.token` and a ceremony in `claim.attempt`; there is no identity until the user confirms.');
  }
  if (identityTypes.includes('identity_assertion')) {
    lines.push(fence('json', '{"type":"identity_assertion","assertion_type":"urn:ietf:params:oauth:token-type:id-jag","assertion":"<ID-JAG>"}'));
    lines.push(
      'A known user gets `identity.assertion` at once. If the ID-JAG matches an existing account that has not linked your provider yet, the answer is `401 interaction_required` with a claim ceremony.',
    );
  }
  if (dialects.includes('v0.7')) {
    lines.push(
      'Agents written for AUTH.md v0.7 find the same values in the flat members `registration_id`, `identity_assertion`, `assertion_expires`, `pre_claim_scopes`, `post_claim_scopes`, `claim_token`, `claim_url` and `claim_token_expires`.',
    );
  }
  return lines.join('\n');
}

function claimCeremony(d: AuthMdDescription): string {
  const { endpoints, dialects } = d.discovery;
  if (!endpoints.claim) {
    return [
      '## Claim ceremony',
      'This service does not offer a claim ceremony yet: an anonymous registration keeps its pre-claim scopes until it expires.',
    ].join('\n');
  }
  const lines = [
    '## Claim ceremony',
    `A human takes ownership of a registration by signing in on this service and confirming a 6-digit code. Start (or restart) an attempt with \`POST ${endpoints.claim}\`:`,
    fence('json', '{"type":"service_auth","claim_token":"clm_…","login_hint":"user@example.com"}'),
    `Give the user \`attempt.verification_uri\`; it stays valid for ${duration(d.lifetimes.attemptSeconds ?? 600)}. A user can make at most 5 wrong code entries per attempt.`,
  ];
  if (dialects.includes('current')) {
    lines.push(
      `**Read-back**: the user presses Authorize on the page, which then shows a 6-digit code. Ask the user for it and send \`POST ${endpoints.claim}/complete\` with \`{"claim_token":"clm_…","user_code":"123456"}\`. \`claim_not_confirmed\` means the user has not pressed Authorize yet: wait and retry.`,
    );
  }
  if (dialects.includes('v0.7') && d.discovery.claimGrant) {
    lines.push(
      `**Type-in**: the answer also carries \`claim_attempt.user_code\` (or \`claim.user_code\`). Show it to the user, who types it on the page, and poll \`POST ${endpoints.token}\` with \`grant_type=${grantTypes.claim}&claim_token=clm_…\` every \`interval\` seconds. \`authorization_pending\`: keep polling; \`slow_down\`: add 5 seconds to the interval; \`expired_token\`: start a new attempt; \`access_denied\`: stop.`,
    );
  }
  lines.push('After the claim, earlier identity assertions stop working; use the one the claim returned.');
  return lines.join('\n');
}

function exchange(d: AuthMdDescription): string {
  const { endpoints, resources } = d.discovery;
  const resource = resources[0]?.resource;
  return [
    '## Exchange the assertion',
    `Trade the identity assertion for an access token (RFC 7523 jwt-bearer). The assertion stays valid for ${duration(d.lifetimes.assertionSeconds)} and can be exchanged again whenever you need a new access token.`,
    fence(
      'bash',
      `curl -s -X POST ${endpoints.token} -d grant_type=${grantTypes.jwtBearer} -d assertion=<identity.assertion>${resource ? ` -d resource=${resource}` : ''}`,
    ),
    `The answer is \`{"access_token":"at_…","token_type":"Bearer","expires_in":${d.lifetimes.accessTokenSeconds},"scope":"…"}\`. \`resource\` (RFC 8707) is optional; the token only works at the resource it names${resource ? ` (default \`${resource}\`)` : ''}.`,
    d.lifetimes.refreshTokenSeconds
      ? `When the assertion has expired, refresh it with \`POST ${endpoints.identity} {"type":"refresh","refresh_token":"art_…"}\`; every refresh token works once.`
      : 'When the assertion has expired, register again.',
  ].join('\n');
}

function useTheAccessToken(d: AuthMdDescription): string {
  return [
    '## Use the access_token',
    'Send it on every API call: `Authorization: Bearer <access_token>`.',
    `- Scopes before a claim: ${list(d.preClaimScopes)}. After a claim: ${list(d.postClaimScopes)}.`,
    '- `401` with `error="invalid_token"`: the token expired or was revoked. Exchange the assertion again once; if that fails, refresh or register again.',
    '- `403` with `error="insufficient_scope"`: the token lacks the scope named in `WWW-Authenticate`; claiming the registration unlocks the post-claim scopes.',
    '- `5xx`: retry the same request with exponential backoff. Any other `4xx`: do not repeat the request unchanged; act on `error`.',
  ].join('\n');
}

function errors(d: AuthMdDescription): string {
  const codes: ErrorCode[] = ['invalid_request', 'payload_too_large', 'rate_limit_exceeded'];
  const types = d.discovery.identityTypes;
  if (!types.includes('anonymous')) codes.push('anonymous_not_enabled');
  if (!types.includes('service_auth')) codes.push('service_auth_not_enabled');
  if (types.includes('service_auth')) codes.push('invalid_login_hint');
  if (types.includes('identity_assertion')) codes.push('issuer_not_enabled', 'interaction_required', 'login_required');
  if (d.lifetimes.refreshTokenSeconds) codes.push('invalid_refresh_token');
  if (d.discovery.endpoints.claim) {
    codes.push('invalid_claim_token', 'invalid_claim', 'claim_expired', 'already_claimed', 'claim_not_confirmed', 'invalid_user_code', 'user_code_expired', 'claim_denied', 'too_many_attempts');
  }
  codes.push('invalid_grant', 'invalid_target', 'invalid_scope', 'unsupported_grant_type');
  if (d.discovery.claimGrant) codes.push('authorization_pending', 'slow_down', 'expired_token', 'access_denied');
  codes.push('invalid_token', 'insufficient_scope');
  const v07 = d.discovery.dialects.includes('v0.7');
  return [
    '## Errors',
    '| error | HTTP | what to do |',
    '|---|---|---|',
    ...codes.map((code) => {
      const older = v07 && wireCode(code, 'v0.7') !== code ? ` (v0.7: \`${wireCode(code, 'v0.7')}\`)` : '';
      return `| \`${code}\`${older} | ${errorSpec(code).status} | ${errorSpec(code).hint} |`;
    }),
  ].join('\n');
}

function revocation(d: AuthMdDescription): string {
  const { endpoints } = d.discovery;
  return [
    '## Revocation',
    `Revoke a credential you no longer need with \`POST ${endpoints.revocation}\` (RFC 7009, form-encoded \`token=…\`). The answer is \`200\` whether or not the token was known.`,
    '- An access token stops working on the very next request.',
    '- An identity assertion: every assertion of that registration and every access token issued from them stop working.',
    d.lifetimes.refreshTokenSeconds
      ? '- A refresh token: it and every refresh token rotated from it, the registration\'s assertions and its access tokens stop working (sign-out).'
      : '',
    endpoints.events
      ? `Providers withdraw a user's delegation by pushing a security event token to \`${endpoints.events}\` (RFC 8417/8935); everything issued under it stops working.`
      : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Agents written for auth.md v0.1: credentials returned directly, the claim by an emailed code. */
function v01(d: AuthMdDescription): string {
  const { endpoints, identityTypes } = d.discovery;
  const lines = [
    '## v0.1 (`/agent/auth`): credentials returned directly',
    `Agents written for auth.md v0.1 register with \`POST ${endpoints.v01Register}\` and get the credential itself (\`credential\`, \`credential_type\`, \`credential_expires\`, \`scopes\`), sent as \`Authorization: Bearer <credential>\`.`,
  ];
  if (identityTypes.includes('anonymous')) {
    lines.push(
      fence('json', '{"type":"anonymous","requested_credential_type":"api_key"}'),
      `An API key (\`sk_…\`, no expiry) with ${list(d.preClaimScopes)}, and \`claim_token\` with \`claim_url\`. To claim it, \`POST ${endpoints.v01Claim}\` with \`{"claim_token":"clm_…","email":"user@example.com"}\`: the user is emailed a 6-digit code; the same key then gets ${list(d.postClaimScopes)}.`,
    );
  }
  if (identityTypes.includes('service_auth')) {
    lines.push(
      fence('json', '{"type":"identity_assertion","assertion_type":"verified_email","assertion":"user@example.com","requested_credential_type":"access_token"}'),
      'The user is emailed a 6-digit code at once; there is no credential until you send it back.',
    );
  }
  if (identityTypes.includes('identity_assertion')) {
    lines.push(fence('json', '{"type":"identity_assertion","assertion_type":"urn:ietf:params:oauth:token-type:id-jag","assertion":"<ID-JAG>","requested_credential_type":"access_token"}'));
  }
  lines.push(
    `Ask the user for the code from the email and send \`POST ${endpoints.v01Claim}/complete\` with \`{"claim_token":"clm_…","otp":"123456"}\`. Errors on these paths use the v0.1 names: \`otp_invalid\` (${errorSpec('invalid_user_code').status}, 5 tries per code), \`otp_expired\`, \`otp_not_generated\`, \`previously_claimed\`, \`claimed_or_in_flight\`, \`claim_expired\`, \`invalid_claim_token\`, \`unsupported_credential_type\`, \`rate_limited\`.`,
    `Revoke an API key or access token at \`${endpoints.revocation}\` (RFC 7009).`,
  );
  return lines.join('\n');
}

function fence(language: string, body: string): string {
  return `\`\`\`${language}\n${body}\n\`\`\``;
}

function list(items: readonly string[]): string {
  return items.map((item) => `\`${item}\``).join(', ');
}

function duration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} ${seconds === 86400 ? 'day' : 'days'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} ${seconds === 3600 ? 'hour' : 'hours'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}
