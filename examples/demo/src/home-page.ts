import { renderAgentVerifiedSection } from './agent-verified-section.ts';
import { renderClaimSection } from './claim-section.ts';
import { escapeHtml, stepHtml } from './html.ts';
import { documentLinks, firstCurl, walkthrough } from './walkthrough.ts';

/** Headers for the home page: no scripts, no external anything, not framable. */
export const HOME_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/**
 * The page at `/`: what is running, where the documents are, and the curl walkthroughs with real URLs;
 * the Agent Verified part when a demo provider is trusted (`providerUrl`).
 */
export function renderHomePage(options: { base: string; name: string; dbPath: string; databaseKind?: 'SQLite' | 'PostgreSQL'; providerUrl?: string; devMailbox?: boolean }): string {
  const { base, name, dbPath, providerUrl } = options;
  const links = documentLinks(base)
    .map((link) => `<li><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a> — ${escapeHtml(link.about)}</li>`)
    .join('\n      ');
  const steps = walkthrough(base)
    .map((step) => `<li>${stepHtml(step)}</li>`)
    .join('\n      ');

  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(name)}</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
    code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
    pre { background: #f4f4f5; padding: .75rem; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
    .expect { color: #52525b; margin-top: -.5rem; }
    .note { border-left: 4px solid #a1a1aa; padding-left: 1rem; color: #3f3f46; }
  </style>
</head>
<body>
  <h1>${escapeHtml(name)}</h1>
  <p>This is an <strong>auth.md</strong> service running on your machine: AI agents can register for it and get
    credentials without a browser, a sign-up form or a consent screen. It protects a small notes API at
    <code>/api/notes</code>. Registrations, keys and tokens live in ${options.databaseKind ?? 'SQLite'} at <code>${escapeHtml(dbPath)}</code>;
    the notes themselves are kept in memory.</p>

  <h2>Documents agents read</h2>
  <ul>
      ${links}
  </ul>

  <h2>Try it with curl</h2>
  <p>Without a token, the API answers 401 with a <code>WWW-Authenticate</code> header pointing at the metadata:</p>
  <pre><code>${escapeHtml(firstCurl(base))}</code></pre>
  <p>Then walk the agent's path (bash, with curl and node):</p>
  <ol>
      ${steps}
  </ol>

  ${renderClaimSection(base, { devMailbox: options.devMailbox ?? true })}
${providerUrl ? `\n  ${renderAgentVerifiedSection(base, providerUrl)}\n` : ''}</body>
</html>
`;
}
