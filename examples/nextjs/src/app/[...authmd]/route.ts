import { notFound } from 'next/navigation';
import { authmd } from '../../lib/authmd.ts';

/**
 * Every path of the auth.md service (discovery under /.well-known, /agent/identity, /oauth2/token,
 * the claim pages…), through its Web-standard handler; any other path is Next's own 404.
 */
async function handle(request: Request): Promise<Response> {
  const service = await authmd();
  if (!service.handles(new URL(request.url).pathname)) notFound();
  return service.handler(request);
}

export const dynamic = 'force-dynamic';
export { handle as GET, handle as HEAD, handle as POST, handle as PUT, handle as PATCH, handle as DELETE, handle as OPTIONS };
