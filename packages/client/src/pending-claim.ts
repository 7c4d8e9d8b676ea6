import type { RegistrationType } from './store/contract.ts';
import type { Handoff } from './types.ts';

/** A claim in progress. The claim token lives here only, never on disk: it is lost on restart, as AUTH.md requires. */
export interface PendingClaim {
  claimToken: string;
  claimUrl: string;
  registrationId: string;
  registrationType: RegistrationType;
  loginHint: string | undefined;
  handoff: Handoff | undefined;
}
