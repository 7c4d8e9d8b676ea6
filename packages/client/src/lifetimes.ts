/** A credential this close to its expiry is treated as expired: a request sent with it could arrive late. */
export const EXPIRY_SLACK_MS = 30_000;

/** How long a claim attempt (its link or emailed code) lives when the service does not say: the profile's attempt lifetime. */
export const DEFAULT_ATTEMPT_MS = 600_000;
