/**
 * The human side of a ceremony. The suite hands the person a claim link (`verification_uri`) and,
 * depending on the direction, a code; a driver does what the person would do on the service's pages.
 * - `authmd`: drives authmd's own pages over HTTP (sign-in through the development mailbox).
 * - `manual`: prints what the person must do and waits for them.
 */
export interface HumanDriver {
  /** A short name for reports: `authmd pages`, `manual`. */
  readonly name: string;
  /** Read-back: sign in as `email`, open the link, press Authorize; resolves to the code the page shows. */
  readBack(verificationUri: string, email: string): Promise<string>;
  /** Type-in: sign in as `email`, open the link and type `userCode` (the agent's code) on the page. */
  typeIn(verificationUri: string, email: string, userCode: string): Promise<void>;
  /** Sign in as `email`, open the link and press Deny. */
  deny(verificationUri: string, email: string): Promise<void>;
  /**
   * v0.1 (emailed code): the service has just emailed `email` about letting an agent act for them;
   * read the 6-digit code from that email (or from the page its link opens) and resolve to it.
   */
  emailedCode(email: string): Promise<string>;
  /** Releases what the driver holds (stdin, sessions). */
  close?(): Promise<void> | void;
}
