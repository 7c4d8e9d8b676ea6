import { tokenTypes, VERIFIED_EMAIL } from '@authmd/protocol';

/**
 * What a v0.1 service offers, in this client's words: `anonymous` (an API key at once),
 * `service_auth` (an email the agent vouches for: `verified_email`) and `identity_assertion` (an
 * ID-JAG). v0.1 lists the last two as assertion types; a list that says nothing means "try".
 */
export function v01IdentityTypes(agentAuth: Record<string, any>): string[] {
  const listed: unknown = agentAuth?.identity_types_supported;
  const types = Array.isArray(listed) ? listed : [];
  const assertions: unknown = agentAuth?.identity_assertion?.assertion_types_supported;
  const offered: string[] = [];
  if (types.includes('anonymous') || agentAuth?.anonymous !== undefined) offered.push('anonymous');
  if (Array.isArray(assertions) ? assertions.includes(VERIFIED_EMAIL) : types.includes('service_auth')) offered.push('service_auth');
  if (Array.isArray(assertions) ? assertions.includes(tokenTypes.idJag) : types.includes('identity_assertion')) offered.push('identity_assertion');
  return offered;
}
