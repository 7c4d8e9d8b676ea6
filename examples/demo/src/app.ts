import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { nodeMiddleware, type AuthmdService, type Logger } from '@authmd/service';
import { HOME_PAGE_HEADERS, renderHomePage } from './home-page.ts';
import { NOTES_PATH, notesApi } from './notes-api.ts';
import { NotesStore } from './notes.ts';
import { sendError } from './respond.ts';

export interface AppOptions {
  service: AuthmdService;
  logger: Logger;
  /** Shown on the home page. */
  dbPath: string;
  /** Which database `dbPath` names (default SQLite). */
  databaseKind?: 'SQLite' | 'PostgreSQL';
  /** The trusted demo provider's URL: the home page then shows the Agent Verified walkthrough. */
  providerUrl?: string;
  notes?: NotesStore;
}

/** The demo's request listener: the service's own paths first, then the notes API, then the home page, then 404 JSON. */
export function createApp(options: AppOptions): RequestListener {
  const { service, logger } = options;
  const serviceRoutes = nodeMiddleware(service);
  const api = notesApi(service, options.notes ?? new NotesStore());
  // Without the development outbox (AUTHMD_SMTP_URL) codes go out by mail, and the page must not send people to /dev/mailbox.
  const devMailbox = service.handles('/dev/mailbox');
  const homePage = renderHomePage({ base: service.config.issuer, name: service.config.name, dbPath: options.dbPath, databaseKind: options.databaseKind, providerUrl: options.providerUrl, devMailbox, consolePath: service.config.admin?.path, operators: service.config.admin && [...service.config.admin.operators] });

  const failed = (res: ServerResponse) => (error: unknown) => {
    logger.error('request failed', { error: error instanceof Error ? error.stack : String(error) });
    if (!res.headersSent) sendError(res, 500, 'server_error', 'An unexpected error occurred.');
    else res.destroy();
  };

  return (req: IncomingMessage, res: ServerResponse) => {
    const pathname = pathOf(req);
    if (pathname === undefined) return sendError(res, 400, 'invalid_request', 'The request target is not a valid path.');
    if (service.handles(pathname)) {
      return serviceRoutes(req, res, (error) => (error === undefined ? notFound(res, pathname) : failed(res)(error)));
    }
    if (pathname === NOTES_PATH) return void api(req, res).catch(failed(res));
    if (pathname === '/') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return sendError(res, 405, 'method_not_allowed', `${req.method} is not allowed here; use GET.`, { Allow: 'GET, HEAD' });
      }
      res.writeHead(200, { ...HOME_PAGE_HEADERS, 'Content-Length': Buffer.byteLength(homePage) });
      return void res.end(homePage);
    }
    notFound(res, pathname);
  };
}

function notFound(res: ServerResponse, pathname: string): void {
  sendError(res, 404, 'not_found', `Nothing is served at ${pathname}. Start at / or /auth.md.`);
}

/** The path of the request target, normalised the way the service's adapter does it. */
function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://demo.invalid').pathname;
  } catch {
    return undefined;
  }
}
