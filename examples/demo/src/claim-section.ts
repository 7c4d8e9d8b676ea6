import { claimWalkthrough, EXAMPLE_EMAIL, mailboxUrl, READ_BACK_BUTTON, TYPE_IN_BUTTON } from './claim-walkthrough.ts';
import { escapeHtml, stepHtml } from './html.ts';

/**
 * The home page's part on the claim ceremony: the two directions, then every command with real URLs.
 * `devMailbox` false (AUTHMD_SMTP_URL): the codes go out by real mail, and the page says so.
 */
export function renderClaimSection(base: string, options: { devMailbox: boolean } = { devMailbox: true }): string {
  const steps = claimWalkthrough(base);
  const mailbox = options.devMailbox ? `<a href="${escapeHtml(mailboxUrl(base))}">development mailbox</a>` : 'email';
  const where = options.devMailbox ? `this demo sends no mail, it keeps every message in the ${mailbox}` : 'this demo sends it through its SMTP server (AUTHMD_SMTP_URL)';
  return `<h2>Claim it as a human</h2>
  <p>An agent on its own gets <code>notes.read</code> at most. For <code>notes.write</code> a human takes ownership of the
    registration with a 6-digit code. Either way the human first signs in on this service's own pages with a code sent
    by email; ${where}. Then the claim page offers two
    directions:</p>
  <ul>
    <li><strong>Read-back</strong>: the human presses <em>${escapeHtml(READ_BACK_BUTTON)}</em>, the page shows a code, and the human
      reads it to the agent, which sends it to <code>/agent/identity/claim/complete</code>.</li>
    <li><strong>Type-in</strong> (v0.7 agents): the agent shows the human its own code; the human types it on the claim
      page (<em>${escapeHtml(TYPE_IN_BUTTON)}</em>) while the agent polls <code>/oauth2/token</code>.</li>
  </ul>
  <ol>
    <li>${stepHtml(steps.register)}${stepHtml(steps.claimAnonymous)}</li>
    <li><p>Open the link in a browser and sign in as <code>${escapeHtml(EXAMPLE_EMAIL)}</code> with the code from the
      ${mailbox}. The claim page names the agent and the scopes it will get. The link works for 10 minutes; the
      <code>/agent/identity/claim</code> request above makes a new one for the same <code>$CLAIM</code>.</p></li>
    <li>${stepHtml(steps.readBack)}${stepHtml(steps.typeIn)}</li>
    <li>${stepHtml(steps.addNote)}</li>
  </ol>
  <p class="note"><em>Deny</em> on the claim page refuses: the read-back answers <code>claim_denied</code> and the poll
    <code>access_denied</code>. The read-back also hands the agent a refresh token: trade it at
    <code>/agent/identity</code> with <code>{"type":"refresh","refresh_token":"art_…"}</code>.</p>`;
}
