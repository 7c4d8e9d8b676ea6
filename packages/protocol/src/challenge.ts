/** One challenge of a `WWW-Authenticate` header: its scheme as written, and its auth-params. */
export interface Challenge {
  scheme: string;
  /** Parameter names lower-cased; quoted values unquoted and unescaped. */
  params: Record<string, string>;
}

const PART = /([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s,]*))?/g;

/**
 * The challenges of a `WWW-Authenticate` value, in order (RFC 9110 §11.6.1). Several may share one
 * header (`DPoP algs="ES256", Bearer resource_metadata="…"`); a token without `=` starts the next one.
 */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  const challenges: Challenge[] = [];
  for (const [, name, value] of (header ?? '').matchAll(PART)) {
    if (value === undefined) challenges.push({ scheme: name!, params: {} });
    else if (challenges.length) challenges.at(-1)!.params[name!.toLowerCase()] = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
  }
  return challenges;
}

/** The auth-params of the `Bearer` challenge (RFC 6750 §3, RFC 9728 §5.1); undefined when there is none. */
export function bearerChallenge(header: string | null | undefined): Record<string, string> | undefined {
  return parseChallenges(header).find((challenge) => challenge.scheme.toLowerCase() === 'bearer')?.params;
}
