import { paths, tokenTypes } from '@authmd/protocol';
import { NOTES_PATH } from './notes-api.ts';
import { exchangeCommand, pick, withJson, type Step } from './walkthrough.ts';

/**
 * The Agent Verified flow as curl commands with real URLs, for the home page: the user signs in at the
 * demo provider and gives consent for this service, the agent gets an ID-JAG there and registers with
 * it here (no human step: credentials at once, with the post-claim scopes), then the user revokes and
 * the provider's revocation event shuts the agent out.
 */

/** The seeded provider account the commands sign in as (verified email, no account here yet). */
export const PROVIDER_EXAMPLE_EMAIL = 'ada@example.com';

export interface AgentVerifiedWalkthrough {
  /** User, at the provider: sign in. Sets $SESSION. */
  login: Step;
  /** User: consent for this service. Sets $GRANT. */
  grant: Step;
  /** Agent, at the provider: an ID-JAG for this service. Sets $IDJAG. */
  mint: Step;
  /** Agent, here: register with the ID-JAG. Sets $REG and $ASSERTION. */
  register: Step;
  exchange: Step;
  addNote: Step;
  /** User, at the provider: withdraw consent. */
  revoke: Step;
  /** A few seconds later: the SET was delivered and the token is refused. */
  refused: Step;
}

export function agentVerifiedWalkthrough(base: string, providerUrl: string): AgentVerifiedWalkthrough {
  const asUser = `-H "Authorization: Bearer $SESSION"`;
  /** A JSON POST; `headers` before the body, so that the URL comes first, as in the other walkthroughs. */
  const postJson = (url: string, headers: string, body: string) => `curl -s ${url}${headers ? ` ${headers}` : ''} -H 'Content-Type: application/json' -d ${body}`;
  return {
    login: {
      id: 'av-login',
      title: `Sign in at the provider as ${PROVIDER_EXAMPLE_EMAIL} (a demo: the email is enough)`,
      command: `SESSION=$(${postJson(`${providerUrl}/login`, '', `'{"email":"${PROVIDER_EXAMPLE_EMAIL}"}'`)} | ${pick('session_token')})`,
      expect: 'a provider session token in $SESSION',
    },
    grant: {
      id: 'av-grant',
      title: "Let agents act at this service (the provider page's button)",
      command: `GRANT=$(${postJson(`${providerUrl}/grants`, asUser, `'{"audience":"${base}","mode":"always"}'`)} | ${pick('id')})`,
      expect: 'a grant id in $GRANT; consent lasts 24 hours',
    },
    mint: {
      id: 'av-mint',
      title: 'Get an ID-JAG: who the user is, signed by the provider, for this service, for 5 minutes',
      command: `IDJAG=$(${postJson(`${providerUrl}/id-jag`, asUser, `'{"audience":"${base}"}'`)} | ${pick('assertion')})`,
      expect: 'a JWT (typ oauth-id-jag+jwt) in $IDJAG',
    },
    register: {
      id: 'av-register',
      title: 'Register with it: the service trusts the provider and answers at once',
      command: [
        `REG=$(${postJson(`${base}${paths.identity}`, '', `"{\\"type\\":\\"identity_assertion\\",\\"assertion_type\\":\\"${tokenTypes.idJag}\\",\\"assertion\\":\\"$IDJAG\\"}"`)})`,
        `echo "$REG" | ${withJson('r.scopes?.join(" ") ?? r.error_description')}`,
        `ASSERTION=$(echo "$REG" | ${pick('identity.assertion')})`,
      ].join('\n'),
      expect: `notes.read notes.write, no human step (401 interaction_required if ${PROVIDER_EXAMPLE_EMAIL} already had an account here)`,
    },
    exchange: {
      id: 'av-exchange',
      title: 'Exchange the assertion for an access token',
      command: exchangeCommand(base),
      expect: 'a bearer token with notes.read notes.write',
    },
    addNote: {
      id: 'av-add-note',
      title: 'Add a note',
      command: `curl -i ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"text":"vouched for by my provider"}'`,
      expect: '201 {"note":{…}}',
    },
    revoke: {
      id: 'av-revoke',
      title: 'Withdraw consent at the provider (or press Revoke on its page)',
      command: `curl -i -X DELETE ${providerUrl}/grants/$GRANT ${asUser}`,
      expect: '204, Revocation-Status: delivered: the provider pushed a signed revocation event (SET) here before answering',
    },
    refused: {
      id: 'av-refused',
      title: 'The token is refused at once',
      command: [
        `curl -s ${providerUrl}/revocations ${asUser} | ${pick('revocations.at(-1).status')}`,
        `curl -i ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN"`,
      ].join('\n'),
      expect: 'delivered, then 401 invalid_token (the assertion is refused too); fresh consent and a new ID-JAG bring the registration back',
    },
  };
}
