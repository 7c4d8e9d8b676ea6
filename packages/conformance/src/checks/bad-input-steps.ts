import { grantTypes, mediaTypes } from '@authmd/protocol';
import { CheckFailed } from '../check.ts';
import { type Discovered } from '../discovery.ts';
import { describeAnswer, type Answer, type SendOptions } from '../http.ts';

/**
 * What bad input must get: never a 5xx, an error in JSON (RFC 6749 §5.2 `error`, or RFC 8935 §2.3
 * `err` at the events endpoint), and the status and code the rule names.
 */

export interface ErrorExpectation {
  /** Allowed statuses; default any 4xx. */
  status?: number[];
  /** Allowed `error` codes; default any. */
  codes?: string[];
}

const isObject = (value: unknown): value is Record<string, any> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether the answer's declared media type is JSON (`application/json` or a `+json` type). */
export function declaresJson(answer: Answer): boolean {
  const type = (answer.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

/** What is wrong with an error answer, or undefined when it is what `expected` allows. */
export function errorProblem(answer: Answer, expected: ErrorExpectation = {}): string | undefined {
  if (answer.status >= 500) return 'a server error';
  const statusOk = expected.status ? expected.status.includes(answer.status) : answer.status >= 400 && answer.status < 500;
  if (!statusOk) return `status ${answer.status}`;
  if (!declaresJson(answer) || !isObject(answer.json)) return `a body that is not JSON (Content-Type ${answer.headers.get('content-type') ?? 'none'})`;
  const code = answer.json.error ?? answer.json.err;
  if (typeof code !== 'string') return 'a JSON body without an error code';
  if (expected.codes && !expected.codes.includes(code)) return `error ${code}`;
  return undefined;
}

/** "400 or 413 invalid_request in JSON" */
export function describeExpectation(expected: ErrorExpectation = {}): string {
  const status = expected.status ? expected.status.join(' or ') : 'a 4xx';
  const codes = expected.codes ? ` ${expected.codes.join(' or ')}` : ' error';
  return `${status}${codes} in JSON`;
}

/** Fails unless the answer is the JSON error `expected` allows; `what` names the request. */
export function expectJsonError(answer: Answer, what: string, expected: ErrorExpectation = {}): void {
  const problem = errorProblem(answer, expected);
  if (problem) throw new CheckFailed(`${what}: expected ${describeExpectation(expected)}, got ${problem}: ${describeAnswer(answer)}`);
}

// The fuzz sweep

type Kind = 'json' | 'form' | 'secevent';

interface Target {
  name: string;
  url: string;
  kind: Kind;
  /** A well-shaped body of the endpoint's kind (for the wrong-method cases). */
  sample: string;
  /** The endpoint answers 200 to some garbage by design (RFC 7009: unknown tokens are fine). */
  lenient?: boolean;
}

export interface FuzzCase {
  url: string;
  label: string;
  options: SendOptions;
  /** `error`: a 4xx JSON error is due. `any`: anything below 500, a 4xx in JSON. */
  expect: 'error' | 'any';
}

const CONTENT_TYPES: Record<Kind, string> = {
  json: 'application/json',
  form: 'application/x-www-form-urlencoded',
  secevent: mediaTypes.secEvent,
};

/** A small deterministic generator (mulberry32), so that every run sends the same requests. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Bytes in 0x80–0xFF only: never valid UTF-8 text on their own, never a form separator. */
function highBytes(random: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => 0x80 + Math.floor(random() * 0x80));
}

const WRONG_METHODS = ['GET', 'PUT', 'DELETE', 'PATCH'];

/** Close to the 64 KiB cap of profile §3 but under it, so the endpoint has to parse it. */
const HUGE = 'A'.repeat(60 * 1024);
const bytes = (...parts: (string | Uint8Array)[]): Uint8Array => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));

/** The POST endpoints the service advertises, with the body kind each takes. */
function targets(service: Discovered): Target[] {
  const { endpoints, dialects } = service;
  const list: Target[] = [];
  if (endpoints.identity) list.push({ name: 'identity', url: endpoints.identity, kind: 'json', sample: '{"type":"anonymous"}' });
  if (endpoints.claim) list.push({ name: 'claim', url: endpoints.claim, kind: 'json', sample: '{"type":"service_auth","claim_token":"clm_x","login_hint":"a@example.com"}' });
  if (endpoints.claimComplete && dialects.current) list.push({ name: 'claim/complete', url: endpoints.claimComplete, kind: 'json', sample: '{"claim_token":"clm_x","user_code":"123456"}' });
  list.push({ name: 'token', url: endpoints.token, kind: 'form', sample: `grant_type=${encodeURIComponent(grantTypes.jwtBearer)}&assertion=x.y.z` });
  if (endpoints.revocation) list.push({ name: 'revocation', url: endpoints.revocation, kind: 'form', sample: 'token=x', lenient: true });
  if (endpoints.events) list.push({ name: 'events', url: endpoints.events, kind: 'secevent', sample: 'e30.e30.' });
  const { register_uri: register, claim_uri: claim } = service.agentAuth;
  if (dialects.v01 && typeof register === 'string') list.push({ name: 'v0.1 register', url: register, kind: 'json', sample: '{"type":"anonymous","requested_credential_type":"api_key"}' });
  if (dialects.v01 && typeof claim === 'string') {
    list.push({ name: 'v0.1 claim', url: claim, kind: 'json', sample: '{"claim_token":"clm_x","email":"a@example.com"}' });
    list.push({ name: 'v0.1 claim/complete', url: `${claim.replace(/\/$/, '')}/complete`, kind: 'json', sample: '{"claim_token":"clm_x","otp":"123456"}' });
  }
  return list;
}

/** The body-shape cases of one kind of endpoint: [label, body, whether 200 is possible]. */
function shapeCases(target: Target, random: () => number): [string, string | Uint8Array, boolean][] {
  const grant = `grant_type=${encodeURIComponent(target.name === 'token' ? grantTypes.jwtBearer : grantTypes.claim)}`;
  switch (target.kind) {
    case 'json':
      return [
        ['truncated JSON', '{"type":"anonymous"', false],
        ['a top-level array', `[${target.sample}]`, false],
        ['a top-level null', 'null', false],
        ['every member null', '{"type":null,"claim_token":null,"login_hint":null,"user_code":null,"refresh_token":null,"email":null,"otp":null,"requested_credential_type":null}', false],
        ['nesting 5000 levels deep', `${'['.repeat(5000)}${']'.repeat(5000)}`, false],
        ['__proto__ and constructor members', '{"__proto__":{"type":"anonymous"},"constructor":{"prototype":{"type":"anonymous"}}}', false],
        ['a 60 KiB string value', `{"type":"${HUGE}","claim_token":"${HUGE.slice(0, 1024)}"}`, false],
        ['bytes that are not UTF-8 inside a string', bytes('{"type":"', highBytes(random, 16), '"}'), false],
      ];
    case 'form':
      return [
        ['a JSON body under the form content type', target.name === 'token' ? `{"grant_type":"${grantTypes.jwtBearer}","assertion":"x.y.z"}` : '{"token":"x"}', false],
        ['broken percent-encoding', target.name === 'token' ? 'grant_type=%ZZ&assertion=%' : 'token=%ZZ%', !!target.lenient],
        ['percent-encoded bytes that are not UTF-8', target.name === 'token' ? `${grant}&assertion=%FF%FE%FD&claim_token=%C0%AF` : 'token=%FF%FE%FD', !!target.lenient],
        ['empty names and values', '=&&=&grant_type=&token=', false],
        ['a 60 KiB value', target.name === 'token' ? `${grant}&assertion=${HUGE}` : `token=${HUGE}`, !!target.lenient],
      ];
    case 'secevent':
      return [
        ['a JSON body', '{"events":{}}', false],
        ['a JWS of empty objects, unsigned', 'e30.e30.', false],
        ['dots only', '...', false],
        ['a 60 KiB token', `${HUGE}.${HUGE.slice(0, 1024)}.x`, false],
      ];
  }
}

/**
 * The seeded sweep: for every advertised POST endpoint, a wrong method, an empty body, bytes that are
 * not UTF-8, a wrong content type, then the malformed shapes of its body kind: 54 requests against a
 * service with identity, claim, complete, token and revocation endpoints, 62 with an events endpoint,
 * and 12 more for each v0.1 endpoint (register_uri, claim_uri, <claim_uri>/complete).
 */
export function fuzzCases(service: Discovered, seed = 0x5eed): FuzzCase[] {
  const random = seeded(seed);
  const cases: FuzzCase[] = [];
  for (const target of targets(service)) {
    const type = CONTENT_TYPES[target.kind];
    const add = (label: string, options: SendOptions, expect: FuzzCase['expect'] = 'error') =>
      cases.push({ url: target.url, label: `${target.name}: ${label}`, options, expect });
    const method = WRONG_METHODS[Math.floor(random() * WRONG_METHODS.length)]!;
    add(`${method} instead of POST`, method === 'GET' ? { method } : { method, body: target.sample, headers: { 'content-type': type } });
    add('an empty body', { method: 'POST', body: '', headers: { 'content-type': type } });
    add('random bytes', { method: 'POST', body: highBytes(random, 64), headers: { 'content-type': type } });
    add('Content-Type application/xml', { method: 'POST', body: '<type>anonymous</type>', headers: { 'content-type': 'application/xml' } });
    for (const [label, body, lenient] of shapeCases(target, random)) add(label, { method: 'POST', body, headers: { 'content-type': type } }, lenient ? 'any' : 'error');
  }
  return cases;
}

/** What is wrong with the answer to one fuzz case, or undefined. */
export function fuzzProblem(answer: Answer, expect: FuzzCase['expect']): string | undefined {
  if (expect === 'any' && answer.status < 400) return undefined;
  return errorProblem(answer);
}
