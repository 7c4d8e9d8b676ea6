import { documentLinks, firstCurl, walkthrough } from './walkthrough.ts';

/** What `npm start` prints once the demo is listening. */
export function renderBanner(options: { name: string; url: string; dbPath: string }): string {
  const { name, url, dbPath } = options;
  const width = 16;
  const row = (label: string, value: string) => `  ${label.padEnd(width)}${value}`;
  const lines = [
    '',
    `${name} is running.`,
    '',
    row('Home page', `${url}/`),
    ...documentLinks(url).map((link) => row(link.label === 'auth.md' ? 'auth.md' : shortLabel(link.label), link.url)),
    row('SQLite', dbPath),
    '',
    'Try it (no token yet, so: 401 and a WWW-Authenticate challenge):',
    `  ${firstCurl(url)}`,
    '',
    'Walk the agent path (bash, curl and node):',
    ...walkthrough(url).flatMap((step, i) => [`  ${i + 1}. ${step.title}`, `     ${step.command}`, `     → ${step.expect}`]),
    '',
    'The claim ceremony (a human takes ownership with a 6-digit code) comes in a later version.',
    'Ctrl+C stops the server.',
    '',
  ];
  return lines.join('\n');
}

function shortLabel(label: string): string {
  if (label.startsWith('Protected resource')) return 'Resource meta';
  if (label.startsWith('Authorization server')) return 'AS metadata';
  return label;
}
