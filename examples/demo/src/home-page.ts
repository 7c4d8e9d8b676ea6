import { renderAgentVerifiedSection } from './agent-verified-section.ts';
import { CLAIM_HEADING, renderClaimSection } from './claim-section.ts';
import { mailboxUrl } from './claim-walkthrough.ts';
import { escapeHtml, sectionHtml, stepHtml } from './html.ts';
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
 * The page at `/`, made to be scanned: a short intro and a line of links to its sections, then each
 * part under its heading with a few short commands (real URLs; `data-run` names each, see html.ts),
 * long explanations collapsed in `<details>`: the agent's path, the claim by a human, Agent Verified
 * when a demo provider is trusted (`providerUrl`), the documents agents read, and where things are.
 */
export function renderHomePage(options: { base: string; name: string; dbPath: string; databaseKind?: 'SQLite' | 'PostgreSQL'; providerUrl?: string; devMailbox?: boolean; consolePath?: string; operators?: readonly string[] }): string {
  const { base, name, dbPath, providerUrl } = options;
  const devMailbox = options.devMailbox ?? true;
  const links = documentLinks(base)
    .map((link) => `<li><a href="${escapeHtml(link.url)}">${escapeHtml(link.label)}</a>: ${escapeHtml(link.about)}</li>`)
    .join('\n      ');
  const steps = walkthrough(base)
    .map((step) => `<li>${stepHtml(step)}</li>`)
    .join('\n    ');
  // Absolute, like every link of the page: the same document, at the section.
  const contents = [
    ['try', TRY_HEADING],
    ['claim', CLAIM_HEADING],
    ...(providerUrl ? [['agent-verified', 'Agent Verified']] : []),
    ['documents', DOCUMENTS_HEADING],
  ]
    .map(([id, label]) => `<a href="${escapeHtml(`${base}/#${id}`)}">${escapeHtml(label!)}</a>`)
    .join('\n    ');

  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(name)}</title>
  <style>
    body { font: 16px/1.55 system-ui, sans-serif; max-width: 54rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; color: #1d1d1f; overflow-wrap: anywhere; }
    h1 { font-size: 1.9rem; margin: .5rem 0; }
    h2 { font-size: 1.4rem; margin: 0 0 .5rem; }
    h3 { font-size: 1.05rem; margin: 1.4rem 0 .2rem; }
    a { color: #1d4ed8; }
    .lead { font-size: 1.1rem; color: #3f3f46; margin: 0 0 1rem; }
    nav { display: flex; flex-wrap: wrap; gap: .5rem; margin: 0 0 .5rem; }
    nav a { padding: .3rem .75rem; border: 1px solid #d4d4d8; border-radius: 999px; text-decoration: none; font-size: .95rem; }
    section { border-top: 1px solid #e4e4e7; margin-top: 2rem; padding-top: 1.25rem; scroll-margin-top: 1rem; }
    code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; }
    pre { background: #f4f4f5; padding: .6rem .75rem; border-radius: 6px; margin: .3rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
    ol.steps { padding-left: 1.5rem; }
    ol.steps > li { margin: 1rem 0; }
    .step { margin: 0 0 .2rem; font-weight: 600; }
    .step + pre, .expect + .step { margin-top: .3rem; }
    .expect { color: #52525b; margin: .2rem 0 .6rem; font-size: .93rem; }
    details { margin: .6rem 0; }
    summary { cursor: pointer; color: #1d4ed8; }
    details[open] { border-left: 3px solid #e4e4e7; padding-left: .75rem; }
    @media (max-width: 30rem) { body { padding: 1rem .75rem 2rem; } ol.steps { padding-left: 1.25rem; } pre { padding: .5rem .6rem; } }
  </style>
</head>
<body>
  <h1>${escapeHtml(name)}</h1>
  <p class="lead">An <strong>auth.md</strong> service running on your machine: AI agents register for it and get credentials
    without a browser, a sign-up form or a consent screen. It protects a small notes API at <code>/api/notes</code>.</p>
  <nav aria-label="On this page">
    ${contents}
  </nav>

${sectionHtml(
  'try',
  TRY_HEADING,
  `<p>The agent's path, in bash with curl and node. Run the steps in one terminal: each sets variables the next one uses.
    Without a token, the API answers 401 with a <code>WWW-Authenticate</code> header pointing at the metadata:</p>
  <pre><code>${escapeHtml(firstCurl(base))}</code></pre>
  <ol class="steps">
    ${steps}
  </ol>`,
)}

${renderClaimSection(base, { devMailbox })}
${providerUrl ? `\n${renderAgentVerifiedSection(base, providerUrl)}\n` : ''}
${sectionHtml(
  'documents',
  DOCUMENTS_HEADING,
  `<ul>
      ${links}
  </ul>`,
)}

${sectionHtml(
  'more',
  'More',
  `<ul>
    <li>Registrations, keys and tokens live in ${options.databaseKind ?? 'SQLite'} at <code>${escapeHtml(dbPath)}</code>; the notes
      themselves are kept in memory.${devMailbox ? ` Every email the demo would send is in the <a href="${escapeHtml(mailboxUrl(base))}">development mailbox</a>.` : ''}</li>
${options.consolePath && options.operators?.length ? `    <li>The operator's console, every registration and a way to end any of them: <a href="${escapeHtml(base + options.consolePath)}">${escapeHtml(options.consolePath)}</a>, for ${escapeHtml(options.operators.join(', '))} (sign in with the emailed code${devMailbox ? ', in the development mailbox' : ''}).</li>
` : ''}    <li>The README of the checkout has the rest: <code>npx authmd</code>, an agent client that does the agent's path in one
      command; v0.1 agents, claimed from the email alone; <code>authmd check</code> for any auth.md service; and the
      service in your own app.</li>
  </ul>`,
)}
</body>
</html>
`;
}

const TRY_HEADING = 'Try it in 1 minute';
const DOCUMENTS_HEADING = 'Documents agents read';
