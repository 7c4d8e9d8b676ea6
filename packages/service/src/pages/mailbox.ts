import type { Endpoint } from '../http/env.ts';
import { json } from '../http/responses.ts';
import type { DevOutbox } from '../mail/outbox.ts';
import { escapeHtml, servicePage } from './layout.ts';

/** The development mailbox: every message the service "sent", newest first, as a page and as JSON. */
export function mailboxEndpoints(outbox: DevOutbox): { html: Endpoint; json: Endpoint } {
  return {
    html: async (_request, { ctx }) => {
      const items = outbox
        .messages()
        .map(
          (m) =>
            `<li><p><b>${escapeHtml(m.subject)}</b><br><span class="note">to ${escapeHtml(m.to)}, ${new Date(m.sentAt).toISOString()}</span></p><pre>${escapeHtml(m.text)}</pre></li>`,
        )
        .join('');
      return servicePage(ctx, {
        title: 'Development mailbox',
        body: `<p class="note">Mail this service would have sent, kept in memory because no SMTP server is configured. For development only.</p>${items ? `<ul>${items}</ul>` : '<p>No messages yet.</p>'}`,
      });
    },
    json: async () =>
      json({ messages: outbox.messages().map((m) => ({ id: m.id, to: m.to, subject: m.subject, text: m.text, sent_at: new Date(m.sentAt).toISOString() })) }),
  };
}
