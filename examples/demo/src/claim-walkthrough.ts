import { grantTypes, paths } from '@authmd/protocol';
import { NOTES_PATH } from './notes-api.ts';
import { exchangeCommand, pick, withJson, type Step } from './walkthrough.ts';

/**
 * The claim ceremony, as curl commands with real URLs for the home page: the agent starts a claim,
 * a human signs in on the service's pages (the code arrives in the development mailbox) and either
 * reads the page's code back to the agent or types the agent's code on the page.
 */

/** The address in the commands. The development mailbox takes any; the human signs in with the same one. */
export const EXAMPLE_EMAIL = 'you@example.com';
/** Stands for the code the claim page shows after Authorize; the human replaces it. */
export const CODE_PLACEHOLDER = '123456';
/** The claim page's buttons for each direction (both show when the agent has a code of its own). */
export const READ_BACK_BUTTON = 'Authorize and show me a code';
export const TYPE_IN_BUTTON = 'Authorize with this code';

export const mailboxUrl = (base: string) => `${base}/dev/mailbox`;

export interface ClaimWalkthrough {
  /** Agent: register with an email. Sets $CLAIM and prints the link and the agent's code. */
  register: Step;
  /** Agent, instead: claim the anonymous registration of the agent path ($REG). Same output. */
  claimAnonymous: Step;
  /** Read-back: after Authorize, the agent sends the page's code; $TOKEN then holds notes.write. */
  readBack: Step;
  /** Type-in: the agent polls until the human has typed its code; $TOKEN then holds notes.write. */
  typeIn: Step;
  addNote: Step;
}

const json = (members: Record<string, string>) =>
  `"{${Object.entries(members).map(([key, value]) => `\\"${key}\\":\\"${value}\\"`).join(',')}}"`;

/** Prints the link for the human and the agent's own code (the type-in direction) from a claim response. */
const showLink = (uri: string, agentCode: string) => withJson(`r.${uri} + "  agent code: " + r.${agentCode}`);

/** Prints one member of a response, or the error's description when it is a refusal. */
const showOrExplain = (member: string) => withJson(`r.${member} ?? r.error_description`);

export function claimWalkthrough(base: string): ClaimWalkthrough {
  const postJson = `curl -s -X POST -H 'Content-Type: application/json'`;
  return {
    register: {
      id: 'claim-register',
      title: `The agent registers with your email: no access yet, a link for you`,
      command: [
        `REG=$(${postJson} ${base}${paths.identity} -d '{"type":"service_auth","login_hint":"${EXAMPLE_EMAIL}"}')`,
        `CLAIM=$(echo "$REG" | ${pick('claim.token')})`,
        `echo "$REG" | ${showLink('claim.attempt.verification_uri', 'claim.user_code')}`,
      ].join('\n'),
      expect: `${base}/claim?token=cvt_…  agent code: 123456`,
    },
    claimAnonymous: {
      id: 'claim-anonymous',
      title: 'Or claim the anonymous registration of “Try it in 1 minute” (its $REG)',
      command: [
        `CLAIM=$(echo "$REG" | ${pick('claim.token')})`,
        `${postJson} ${base}${paths.claim} -d ${json({ type: 'service_auth', claim_token: '$CLAIM', login_hint: EXAMPLE_EMAIL })} | ${showLink('attempt.verification_uri', 'claim_attempt.user_code')}`,
      ].join('\n'),
      expect: 'the same: a link for you and the agent code',
    },
    readBack: {
      id: 'claim-read-back',
      title: `Read-back: press "${READ_BACK_BUTTON}" and put the code the page shows in place of ${CODE_PLACEHOLDER}`,
      command: [
        `CODE=${CODE_PLACEHOLDER}`,
        `DONE=$(${postJson} ${base}${paths.claimComplete} -d ${json({ claim_token: '$CLAIM', user_code: '$CODE' })})`,
        `echo "$DONE" | ${showOrExplain('status')}`,
        `ASSERTION=$(echo "$DONE" | ${pick('identity.assertion')})`,
        exchangeCommand(base),
      ].join('\n'),
      expect: `claimed, and $TOKEN has notes.read notes.write (the answer also holds a refresh token)`,
    },
    typeIn: {
      id: 'claim-type-in',
      title: `Type the agent code on the claim page and press "${TYPE_IN_BUTTON}"; the agent polls until you have`,
      command: [
        `until R=$(curl -s ${base}${paths.token} -d grant_type=${grantTypes.claim} -d "claim_token=$CLAIM"); [[ $R != *authorization_pending* ]]; do sleep 5; done`,
        `echo "$R" | ${showOrExplain('scope')}`,
        `TOKEN=$(echo "$R" | ${pick('access_token')})`,
      ].join('\n'),
      expect: 'notes.read notes.write once the code is typed (access_denied after Deny)',
    },
    addNote: {
      id: 'claim-add-note',
      title: 'Add a note',
      command: `curl -i ${base}${NOTES_PATH} -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"text":"hello from my agent"}'`,
      expect: '201 {"note":{…}}',
    },
  };
}
