import type { V01CredentialType } from '@authmd/protocol';
import type { RegistrationType } from './store/contract.ts';

/** Where an agent gets an ID-JAG for a service (its platform's identity provider). Undefined: none available. */
export type IdJagSource = (audience: { issuer: string; resource?: string }) => Promise<string | undefined>;

/** What the human must do to claim a registration, whichever directions the service offers. */
export interface Handoff {
  issuer: string;
  registrationId: string;
  /** The page to open; the human signs in there. */
  verificationUri: string;
  /** ISO-8601: the link stops working then (a new one can be asked for while the registration lives). */
  expiresAt: string;
  /** Read-back: after Authorize the page shows a code; the human gives it to the agent (`completeClaim`). */
  readBack: boolean;
  /** Type-in: the code the human types on the page; the agent then learns the outcome by polling (`waitForClaim`). */
  userCode?: string;
  /** Seconds between polls in the type-in direction. */
  interval?: number;
  /**
   * v0.1: the service emailed the code to this address; the human reads it from the email and gives it
   * to the agent (`completeClaim`). There is no page for the agent to show: `verificationUri` is then
   * `mailto:` this address.
   */
  emailedTo?: string;
}

/** Shows the hand-off to the human (a terminal, a chat message, an MCP tool result…). */
export interface ClaimPrompt {
  show(handoff: Handoff): void | Promise<void>;
}

export interface ReadyResult {
  status: 'ready';
  access_token: string;
  token_type: 'Bearer';
  /** Seconds; null for a v0.1 API key, which does not expire. */
  expires_in: number | null;
  scope?: string;
  /** v0.1 only: the kind of credential `access_token` holds (an API key or an access token). */
  credential_type?: V01CredentialType;
  registration_id: string;
  registration_type: RegistrationType;
  claimed: boolean;
}

export interface ClaimRequiredResult {
  status: 'claim_required';
  registration_id: string;
  verification_uri: string;
  attempt_expires_at: string;
  /** The code to type on the page, when the service offers the type-in direction. */
  user_code?: string;
  instructions: string;
  handoff: Handoff;
}

export type AuthResult = ReadyResult | ClaimRequiredResult;

export interface AuthenticateRequest {
  /** The service: its issuer, its base URL, or a URL of its API. */
  issuer?: string;
  url?: string;
  /** The user's email: registers by service_auth, or upgrades an anonymous registration by claiming it. */
  email?: string;
  /** An ID-JAG minted for this service (else the client's IdJagSource is asked). */
  idJag?: string;
  /** RFC 8707 resource for the access token; default the resource discovery found. */
  resource?: string;
  /** Register anew even when stored credentials exist. */
  forceReregister?: boolean;
}
