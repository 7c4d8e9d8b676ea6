/** The service's own browser pages, relative to the issuer. */
export const pagePaths = {
  claim: '/claim',
  authorize: '/claim/authorize',
  deny: '/claim/deny',
  enterCode: '/claim/code',
  login: '/login',
  loginCode: '/login/code',
  logout: '/logout',
  mailbox: '/dev/mailbox',
  mailboxJson: '/dev/mailbox.json',
} as const;
