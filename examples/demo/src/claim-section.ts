import { claimWalkthrough, EXAMPLE_EMAIL, mailboxUrl, READ_BACK_BUTTON, TYPE_IN_BUTTON } from './claim-walkthrough.ts';
import { escapeHtml, sectionHtml, stepHtml } from './html.ts';

export const CLAIM_HEADING = 'Claim it as a human';

/**
 * The home page's part on the claim ceremony: one line on what it is for, the steps with real URLs
 * (type-in, the claim page's primary button; the read-back and the anonymous agent's claim collapsed as
 * alternatives), and the explanations collapsed.
 * `devMailbox` false (AUTHMD_SMTP_URL): the codes go out by real mail, and the page says so.
 */
export function renderClaimSection(base: string, options: { devMailbox: boolean } = { devMailbox: true }): string {
  const steps = claimWalkthrough(base);
  const mailbox = options.devMailbox ? `<a href="${escapeHtml(mailboxUrl(base))}">development mailbox</a>` : 'email';
  const where = options.devMailbox ? `this demo sends no mail, it keeps every message in the ${mailbox}` : 'this demo sends it through its SMTP server (AUTHMD_SMTP_URL)';
  return sectionHtml(
    'claim',
    CLAIM_HEADING,
    `<p>An agent on its own gets <code>notes.read</code> at most. For <code>notes.write</code>, you take ownership of its
    registration with a 6-digit code, after signing in with a code sent by email; ${where}.</p>
  <ol class="steps">
    <li>${stepHtml(steps.register)}
      <details><summary>Or claim the agent of “Try it in 1 minute”</summary>${stepHtml(steps.claimAnonymous)}</details></li>
    <li><p class="step">Open the link in a browser and sign in as <code>${escapeHtml(EXAMPLE_EMAIL)}</code> with the code from the
      ${mailbox}.</p><p class="expect">→ the claim page: which agent asks, and the scopes it will get</p></li>
    <li>${stepHtml(steps.typeIn)}
      <details><summary>No code from your agent? Read the page's code back instead</summary>${stepHtml(steps.readBack)}</details></li>
    <li>${stepHtml(steps.addNote)}</li>
  </ol>
  <details><summary>The two directions, Deny, and refresh tokens</summary>
    <ul>
      <li><strong>Type-in</strong> (v0.7 agents): the agent shows you its own code; you type it on the claim page
        (<em>${escapeHtml(TYPE_IN_BUTTON)}</em>) while the agent polls <code>/oauth2/token</code>.</li>
      <li><strong>Read-back</strong>: you press <em>${escapeHtml(READ_BACK_BUTTON)}</em>, the page shows a code, and you read it
        to the agent, which sends it to <code>/agent/identity/claim/complete</code>.</li>
    </ul>
    <p>The link works for 10 minutes; the <code>/agent/identity/claim</code> request makes a new one for the same
      <code>$CLAIM</code>. <em>Deny</em> on the claim page refuses: the read-back answers <code>claim_denied</code> and
      the poll <code>access_denied</code>. The read-back also hands the agent a refresh token: trade it at
      <code>/agent/identity</code> with <code>{"type":"refresh","refresh_token":"art_…"}</code>.</p>
  </details>`,
  );
}
