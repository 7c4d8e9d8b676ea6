import { expect } from 'vitest';
import { AuthmdPagesHuman } from '../../../packages/conformance/src/human/authmd-pages.ts';
import { READ_BACK_BUTTON, TYPE_IN_BUTTON } from '../src/claim-walkthrough.ts';

/**
 * A person at a browser, over fetch: the conformance suite's `AuthmdPagesHuman` (a cookie jar,
 * same-site redirects, only what the pages hand out; sign-in with the code from the development
 * mailbox) as one person with one email, plus what the demo promises on top: the mailbox page shows
 * the sign-in code too, and the claim page has the buttons the walkthroughs name.
 */
export class Human {
  private readonly pages: AuthmdPagesHuman;

  constructor(
    readonly base: string,
    readonly email: string,
  ) {
    this.pages = new AuthmdPagesHuman(base, undefined, {
      // The code the driver read from the mailbox's JSON is on the mailbox page as well.
      onSignIn: async (_email, code) => {
        const page = await fetch(`${base}/dev/mailbox`);
        expect(page.status).toBe(200);
        expect(await page.text(), 'the mailbox page shows the sign-in code').toContain(code);
      },
    });
  }

  /** Opens a claim link; signs in first when the service asks for it. Returns the claim page's HTML. */
  async openClaimLink(link: string): Promise<string> {
    expect(new URL(link).origin, 'the link points at the demo').toBe(this.base);
    const page = await this.pages.openClaim(link, this.email);
    expect(page.html).toContain('Authorize this agent?');
    return page.html;
  }

  /** Read-back: presses the Authorize button the walkthroughs name, and returns the code the page shows. */
  async authorize(claimPage: string): Promise<string> {
    expect(claimPage).toContain(`>${READ_BACK_BUTTON}</button>`);
    return this.pages.authorizeOn(claimPage, this.email);
  }

  /** Type-in: enters the agent's code on the claim page (the button the walkthroughs name). */
  async typeAgentCode(claimPage: string, code: string): Promise<void> {
    expect(claimPage).toContain(`>${TYPE_IN_BUTTON}</button>`);
    return this.pages.typeInOn(claimPage, this.email, code);
  }
}
