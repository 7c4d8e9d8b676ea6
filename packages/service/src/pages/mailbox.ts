import { ConfigError } from '../config.ts';
import type { EngineContext } from '../engine/context.ts';
import type { Endpoint, HttpRequest } from '../http/env.ts';
import { json } from '../http/responses.ts';
import type { DevOutbox } from '../mail/outbox.ts';
import { errorPage } from './html-errors.ts';
import { canonicalHost, hostAllowed } from './host.ts';
import { escapeHtml, servicePage } from './layout.ts';

/**
 * The development mailbox: every message the service "sent", newest first, as a page and as JSON.
 * It holds sign-in codes, so it answers only its own Host (the issuer's host:port, plus `mail.hosts`):
 * a page on another name that DNS rebinding pointed at this address gets 421, not the codes.
 */
export function mailboxEndpoints(ctx: EngineContext, outbox: DevOutbox): { html: Endpoint; json: Endpoint } {
  const issuer = new URL(ctx.config.issuer);
  const allowed = new Set([issuer.host]);
  for (const entry of ctx.config.outboxHosts) {
    const host = canonicalHost(entry, issuer.protocol);
    if (!host) throw new ConfigError(`mail.hosts: "${entry}" is not a host or host:port`);
    allowed.add(host);
  }
  const misdirected = (request: HttpRequest) => !hostAllowed(request.header('host'), allowed, issuer.protocol);
  const description = `The development mailbox answers only at ${[...allowed].join(', ')}, not at the host this request named.`;

  return {
    html: async (request) => {
      if (misdirected(request)) return errorPage(ctx, 421, 'Wrong address', description);
      const items = outbox
        .messages()
        .map(
          (m) =>
            `<li><p><b>${escapeHtml(m.subject)}</b><br><span class="note">to ${escapeHtml(m.to)}, ${new Date(m.sentAt).toISOString()}</span></p><pre>${escapeHtml(m.text)}</pre></li>`,
        )
        .join('');
      return servicePage(ctx, {
        title: 'Development mailbox',
        body: `<p class="note">Mail this service would have sent, kept in memory because no SMTP server is configured. For development only.</p>${items ? `<ul class="mail">${items}</ul>` : '<p>No messages yet.</p>'}`,
      });
    },
    json: async (request) => {
      if (misdirected(request)) return json({ error: 'misdirected_request', error_description: description, message: description }, 421);
      return json({ messages: outbox.messages().map((m) => ({ id: m.id, to: m.to, subject: m.subject, text: m.text, sent_at: new Date(m.sentAt).toISOString() })) });
    },
  };
}
