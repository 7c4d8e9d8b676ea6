import { grantTypes, paths } from '@authmd/protocol';
import { NOTES_PATH } from './notes-api.ts';

/** The URLs and curl commands the terminal banner and the home page both show. */

export interface Link {
  label: string;
  url: string;
  about: string;
}

export interface Step {
  /** Names the command on the home page (`data-run`), so tests run exactly what the page shows. */
  id: string;
  title: string;
  /** One or more lines of bash; they run as written with curl and node. */
  command: string;
  expect: string;
}

/**
 * Reads one member of the JSON on stdin with Node itself, so the walkthrough needs no jq. `node -p`
 * has the built-in modules as globals (`fs`), as its REPL does: shorter than `require("fs")`.
 */
export const pick = (member: string) => `node -pe 'JSON.parse(fs.readFileSync(0)).${member}'`;

/** A Node one-liner over the JSON on stdin, as `r`: prints `expression`. */
export const withJson = (expression: string) => `node -pe 'const r = JSON.parse(fs.readFileSync(0)); ${expression}'`;

/** The jwt-bearer exchange of an identity assertion held in $ASSERTION, into $TOKEN. */
export const exchangeCommand = (base: string) =>
  `TOKEN=$(curl -s ${base}${paths.token} -d grant_type=${grantTypes.jwtBearer} --data-urlencode "assertion=$ASSERTION" | ${pick('access_token')})`;

export function documentLinks(base: string): Link[] {
  return [
    { label: 'auth.md', url: `${base}${paths.authMd}`, about: 'the instructions an agent reads' },
    { label: 'Protected resource metadata', url: `${base}/.well-known/oauth-protected-resource`, about: 'RFC 9728: who protects the notes API, which scopes exist' },
    { label: 'Authorization server metadata', url: `${base}/.well-known/oauth-authorization-server`, about: 'RFC 8414: registration, token and revocation endpoints' },
    { label: 'JWKS', url: `${base}${paths.jwks}`, about: "the public keys of the service's identity assertions" },
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
      id: 'agent-register',
      title: 'Register anonymously: no account, no browser',
      command: [
        `REG=$(curl -s -X POST ${base}${paths.identity} -H 'Content-Type: application/json' -d '{"type":"anonymous"}')`,
        `ASSERTION=$(echo "$REG" | ${pick('identity.assertion')})`,
      ].join('\n'),
      expect: 'a signed identity assertion now, a claim token for later (echo "$REG" shows it all)',
    },
    {
      id: 'agent-exchange',
      title: 'Exchange the assertion for an access token',
      command: exchangeCommand(base),
      expect: 'a bearer token with the pre-claim scope notes.read',
    },
    {
      id: 'agent-list',
      title: 'List your notes',
      command: `curl -s ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN"`,
      expect: '200 {"notes":[]}',
    },
    {
      id: 'agent-write-refused',
      title: 'Try to add a note',
      command: `curl -i ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"text":"hello"}'`,
      expect: '403 insufficient_scope: notes.write needs a human to claim the registration',
    },
  ];
}
