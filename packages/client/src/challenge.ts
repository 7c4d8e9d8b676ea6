/**
 * The parameters of a `WWW-Authenticate` challenge (RFC 9110 §11.6.1): the scheme and its
 * auth-params, quoted or not. Only the first challenge of the header is read.
 */
export function parseChallenge(header: string | null | undefined): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const match = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const pattern = /([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?\s*/gy;
  let param: RegExpExecArray | null;
  pattern.lastIndex = 0;
  const rest = match[2]!;
  while ((param = pattern.exec(rest)) !== null) {
    params[param[1]!.toLowerCase()] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : param[3]!;
    if (pattern.lastIndex >= rest.length) break;
  }
  return { scheme: match[1]!, params };
}
