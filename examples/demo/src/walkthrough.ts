import { NOTES_PATH } from './notes-api.ts';

/** The URLs and curl commands the terminal banner and the home page both show. */

export interface Link {
  label: string;
  url: string;
  about: string;
}

export interface Step {
  title: string;
  command: string;
  expect: string;
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Reads one member of the JSON on stdin with Node itself, so the walkthrough needs no jq. */
const pick = (member: string) => `node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).${member}'`;

export function documentLinks(base: string): Link[] {
  return [
    { label: 'auth.md', url: `${base}/auth.md`, about: 'the instructions an agent reads' },
    { label: 'Protected resource metadata', url: `${base}/.well-known/oauth-protected-resource`, about: 'RFC 9728: who protects the notes API, which scopes exist' },
    { label: 'Authorization server metadata', url: `${base}/.well-known/oauth-authorization-server`, about: 'RFC 8414: registration, token and revocation endpoints' },
    { label: 'JWKS', url: `${base}/.well-known/jwks.json`, about: "the public keys of the service's identity assertions" },
  ];
}

/** One line to try first: the API without a token, answered with a 401 and a discovery hint. */
export function firstCurl(base: string): string {
  return `curl -i ${base}${NOTES_PATH}`;
}

/** Register, exchange, read, and see a write refused: each step's command runs in bash with curl and node. */
export function walkthrough(base: string): Step[] {
  return [
    {
      title: 'Register anonymously (no account, no browser)',
      command: `ASSERTION=$(curl -s -X POST ${base}/agent/identity -H 'Content-Type: application/json' -d '{"type":"anonymous"}' | ${pick('identity.assertion')})`,
      expect: 'a registration with a signed identity assertion (drop "| node …" to see the whole response, claim token included)',
    },
    {
      title: 'Exchange the assertion for an access token',
      command: `TOKEN=$(curl -s ${base}/oauth2/token -d grant_type=${JWT_BEARER} --data-urlencode "assertion=$ASSERTION" | ${pick('access_token')})`,
      expect: 'an opaque bearer token with the pre-claim scope notes.read',
    },
    {
      title: 'List your notes',
      command: `curl -s ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN"`,
      expect: '200 {"notes":[]}',
    },
    {
      title: 'Try to add a note',
      command: `curl -i ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"text":"hello"}'`,
      expect: '403 insufficient_scope: notes.write comes only once a human claims the registration',
    },
  ];
}
