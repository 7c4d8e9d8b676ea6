import type { Guard, Principal } from '../protect.ts';
import type { AuthmdService } from '../service.ts';

// Hono's context as far as the adapter uses it: @authmd/service does not depend on hono.
interface HonoContextLike {
  req: { raw: Request; path: string };
  set(key: 'authmd', value: Principal): void;
}
type HonoNext = () => Promise<void>;

export interface HonoAdapterOptions<C extends HonoContextLike> {
  /**
   * The address of the request's sender, which a Web `Request` does not carry: on Node,
   * `(c) => getConnInfo(c).remote.address` from `@hono/node-server/conninfo`. Behind proxies, the
   * service's `trustProxy` reads their header.
   */
  clientIp?: (c: C) => string | undefined;
}

/**
 * Hono middleware: `app.use(authmdHono(service))`. The service's paths get its Web handler, which
 * reads the request's own body; every other path goes on to the app's routes.
 */
// `C` defaults to `any` so that `clientIp: (c) => getConnInfo(c)…` takes Hono's own Context, whose
// type this package cannot name without depending on hono.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function authmdHono<C extends HonoContextLike = any>(service: AuthmdService, options: HonoAdapterOptions<C> = {}) {
  return async (c: C, next: HonoNext): Promise<Response | undefined> => {
    if (!service.handles(c.req.path)) {
      await next();
      return undefined;
    }
    return service.handler(c.req.raw, { clientIp: options.clientIp?.(c) });
  };
}

/** Hono middleware for an API route: `c.get('authmd')` is the principal, or the answer is 401/403 (or 503). */
export function honoGuard<C extends HonoContextLike>(guard: Guard) {
  return async (c: C, next: HonoNext): Promise<Response | undefined> => {
    const outcome = await guard(c.req.raw);
    if (!outcome.ok) return outcome.response;
    c.set('authmd', outcome.principal);
    await next();
    return undefined;
  };
}
