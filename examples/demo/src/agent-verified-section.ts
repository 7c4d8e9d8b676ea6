import { agentVerifiedWalkthrough, PROVIDER_EXAMPLE_EMAIL } from './agent-verified-walkthrough.ts';
import { escapeHtml, stepHtml } from './html.ts';

/** The home page's part on Agent Verified: what it is, the provider's page, every command with real URLs. */
export function renderAgentVerifiedSection(base: string, providerUrl: string): string {
  const steps = agentVerifiedWalkthrough(base, providerUrl);
  const providerPage = `<a href="${escapeHtml(`${providerUrl}/`)}">${escapeHtml(`${providerUrl}/`)}</a>`;
  return `<h2>Agent Verified: a provider vouches for the user</h2>
  <p>An identity provider this service trusts (here, a demo provider at ${providerPage}) signs a short statement of who its
    user is, an <strong>ID-JAG</strong>, for an agent acting for them. The service checks it against its trust list and
    answers at once with credentials that have the post-claim scopes: no email, no claim page, no human ceremony.
    Only when the ID-JAG's verified email belongs to an account that already exists here, and has never been linked to
    this provider, does the service answer <code>401 interaction_required</code> with a claim link for that account's
    human. When the user withdraws consent at the provider, the provider pushes a revocation event and every token of
    that delegation stops working.</p>
  <p>By hand: open ${providerPage}, sign in as <code>${escapeHtml(PROVIDER_EXAMPLE_EMAIL)}</code>, press the button that
    allows agents at this service, and watch your grant and, after <em>Revoke</em>, the revocation notice. Or do all of it
    with curl (the user's part and the agent's part):</p>
  <ol>
    <li>${stepHtml(steps.login)}</li>
    <li>${stepHtml(steps.grant)}</li>
    <li>${stepHtml(steps.mint)}</li>
    <li>${stepHtml(steps.register)}</li>
    <li>${stepHtml(steps.exchange)}</li>
    <li>${stepHtml(steps.addNote)}</li>
    <li>${stepHtml(steps.revoke)}</li>
    <li>${stepHtml(steps.refused)}</li>
  </ol>`;
}
