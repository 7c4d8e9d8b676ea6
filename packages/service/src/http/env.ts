import type { Dialect } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';

/**
 * The request as endpoints see it: what every host can provide cheaply. The Web handler builds it
 * from a `Request`; the Node adapter from an `IncomingMessage`, without constructing Web objects on
 * the hot path.
 */
export interface HttpRequest {
  readonly method: string;
  readonly pathname: string;
  /** A query parameter (the first, when repeated). */
  query(name: string): string | undefined;
  /** A header by lowercase name; repeated headers joined with ", ". */
  header(name: string): string | undefined;
  /** The body, read once. Throws `payload_too_large` beyond `maxBytes`, before reading it whole. */
  body(maxBytes: number): Promise<Uint8Array>;
  /** The client's IP address: from the adapter, the socket peer; at the endpoints, after `trustProxy` was applied. */
  readonly clientIp: string | undefined;
}

export interface HttpResponse {
  status: number;
  /** Arrays for headers that repeat (Set-Cookie). */
  headers: Record<string, string | string[]>;
  body?: string;
  /** A refusal's error code, for the service's metrics and spans; never sent. */
  error?: string;
}

export interface HttpEnv {
  ctx: EngineContext;
}

export type Endpoint = ((request: HttpRequest, env: HttpEnv) => Promise<HttpResponse>) & {
  /** The dialect whose error names the dispatcher answers refusals with (default `current`). */
  readonly errorDialect?: Dialect;
};
