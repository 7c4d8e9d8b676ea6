import { agentVerifiedWalkthrough, PROVIDER_EXAMPLE_EMAIL } from './agent-verified-walkthrough.ts';
import { escapeHtml, sectionHtml, stepHtml } from './html.ts';

export const AGENT_VERIFIED_HEADING = 'Agent Verified: a provider vouches for the user';

/**
 * The home page's part on Agent Verified: what it is in two lines (the rest collapsed), the provider's
 * page, and the commands with real URLs in three groups: the user at the provider, the agent, revoking.
 */
export function renderAgentVerifiedSection(base: string, providerUrl: string): string {
  const steps = agentVerifiedWalkthrough(base, providerUrl);
  const providerPage = `<a href="${escapeHtml(`${providerUrl}/`)}">${escapeHtml(`${providerUrl}/`)}</a>`;
  return sectionHtml(
    'agent-verified',
    AGENT_VERIFIED_HEADING,
    `<p>An identity provider this service trusts (here, the demo provider at ${providerPage}) signs an <strong>ID-JAG</strong>:
    who its user is, for an agent acting for them. The agent registers with it and gets <code>notes.write</code> at once:
    no email, no claim page.</p>
  <details><summary>How it works, and doing it by hand</summary>
    <p>The service checks the ID-JAG against its trust list and answers with credentials that have the post-claim scopes.
      Only when the ID-JAG's verified email belongs to an account that already exists here, and has never been linked to
      this provider, does the service answer <code>401 interaction_required</code> with a claim link for that account's
      human. When the user withdraws consent at the provider, the provider pushes a revocation event and every token of
      that delegation stops working (queued, and retried until accepted, when the service cannot be reached).</p>
    <p>By hand: open ${providerPage}, sign in as <code>${escapeHtml(PROVIDER_EXAMPLE_EMAIL)}</code>, press the button that
      allows agents at this service, and watch your grant and, after <em>Revoke</em>, the revocation notice.</p>
  </details>
  <h3>The user, at the provider</h3>
  <ol class="steps">
    <li>${stepHtml(steps.login)}</li>
    <li>${stepHtml(steps.grant)}</li>
  </ol>
  <h3>The agent</h3>
  <ol class="steps" start="3">
    <li>${stepHtml(steps.mint)}</li>
    <li>${stepHtml(steps.register)}</li>
    <li>${stepHtml(steps.exchange)}</li>
    <li>${stepHtml(steps.addNote)}</li>
  </ol>
  <h3>Revoke</h3>
  <ol class="steps" start="7">
    <li>${stepHtml(steps.revoke)}</li>
    <li>${stepHtml(steps.refused)}</li>
  </ol>`,
  );
}
