import type { Step } from './walkthrough.ts';

/** Escapes text for HTML element content and quoted attribute values. */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A command as the home page shows it; `data-run` names it, so tests can run exactly what is on the page. */
export const commandHtml = (step: Step): string => `<pre><code data-run="${escapeHtml(step.id)}">${escapeHtml(step.command)}</code></pre>`;

/** One step of a walkthrough: its title, its command, what comes back. */
export const stepHtml = (step: Step): string =>
  `<p class="step">${escapeHtml(step.title)}</p>${commandHtml(step)}<p class="expect">→ ${escapeHtml(step.expect)}</p>`;

/** A section of the home page: its anchor, its heading first, then its content. */
export const sectionHtml = (id: string, heading: string, content: string): string =>
  `<section id="${escapeHtml(id)}">
  <h2>${escapeHtml(heading)}</h2>
  ${content}
</section>`;
