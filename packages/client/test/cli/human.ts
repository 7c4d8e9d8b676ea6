import { AuthmdPagesHuman } from '../../../conformance/src/human/authmd-pages.ts';

/**
 * The person at a browser, over fetch: the conformance suite's `AuthmdPagesHuman` (a cookie jar,
 * same-site redirects, hidden form fields; sign-in with the code from the demo's development
 * mailbox), as one person with one email. Answers the claim page: Authorize (read-back), type the
 * agent's code (type-in), or Deny. Every step throws, saying what the page showed, when it fails.
 */
export class Human {
  private readonly pages: AuthmdPagesHuman;

  constructor(
    readonly base: string,
    readonly email: string,
  ) {
    this.pages = new AuthmdPagesHuman(base);
  }

  /** Opens the claim link, signing in first. Returns the claim page's HTML. */
  async openClaimLink(link: string): Promise<string> {
    return (await this.pages.openClaim(link, this.email)).html;
  }

  /** Read-back: presses Authorize; returns the code the page shows. */
  authorize(claimPage: string): Promise<string> {
    return this.pages.authorizeOn(claimPage, this.email);
  }

  /** Type-in: enters the agent's code on the page. */
  typeAgentCode(claimPage: string, code: string): Promise<void> {
    return this.pages.typeInOn(claimPage, this.email, code);
  }

  deny(claimPage: string): Promise<void> {
    return this.pages.denyOn(claimPage, this.email);
  }
}
