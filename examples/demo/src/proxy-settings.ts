import { checkTrustProxy, ConfigError, type ProxyHeader } from '@authmd/service';

export type ProxySettings = { ok: true; trustProxy?: number | string[]; proxyHeader?: ProxyHeader } | { ok: false; message: string };

const EXAMPLE = 'Example: AUTHMD_TRUST_PROXY=1 (one proxy in front) or AUTHMD_TRUST_PROXY=10.0.0.0/8,192.0.2.10 (the proxies\' addresses)';

/**
 * AUTHMD_TRUST_PROXY: how many proxies stand in front of the demo (a number), or their addresses and
 * CIDR ranges (comma-separated); unset or 0, the socket peer is the client. AUTHMD_PROXY_HEADER: the
 * header they append to, `x-forwarded-for` (default) or `forwarded`. Checked by the service's own rules.
 */
export function readProxySettings(env: NodeJS.ProcessEnv): ProxySettings {
  const raw = env.AUTHMD_TRUST_PROXY?.trim() || undefined;
  const header = env.AUTHMD_PROXY_HEADER?.trim().toLowerCase() || undefined;
  if (raw === undefined) {
    return header === undefined ? { ok: true } : { ok: false, message: `AUTHMD_PROXY_HEADER is set but AUTHMD_TRUST_PROXY is not: no proxy is trusted to name the client address. ${EXAMPLE}` };
  }
  const trustProxy = /^\d+$/.test(raw) ? Number(raw) : raw.split(',').map((entry) => entry.trim());
  try {
    checkTrustProxy(trustProxy, header as ProxyHeader | undefined);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const variable = error.message.startsWith('proxyHeader') ? 'AUTHMD_PROXY_HEADER' : 'AUTHMD_TRUST_PROXY';
    return { ok: false, message: `${variable}: ${error.message.replace(/^\w+: /, '')}. ${EXAMPLE}` };
  }
  return { ok: true, trustProxy, ...(header === undefined ? {} : { proxyHeader: header as ProxyHeader }) };
}
