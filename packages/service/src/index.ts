export { createService, type AuthmdService } from './service.ts';
export { checkTrustProxy, ConfigError, type HostUser, type MailOptions, type ServiceConfig, type ServiceOptions, type SignInOptions } from './config.ts';
export type { MailMessage, Mailer } from './mail/mailer.ts';
export type { Guard, GuardOutcome, Principal, ProtectOptions, Refusal } from './protect.ts';
export { createRemoteGuard, type RemoteGuard, type RemoteGuardOptions } from './remote.ts';
export type { FetchHandler, RequestInfo } from './adapters/fetch.ts';
export type { HttpRequest, HttpResponse } from './http/env.ts';
export type { ProxyHeader } from './http/client-address.ts';
export type { AuditEvent, AuditEventType, AuditSink } from './audit.ts';
export { jsonLogger, silentLogger, toLogger, type Logger, type PinoLikeLogger } from '@authmd/core';
/** `MetricsOptions` is the `metrics` option's shape; `metricCollectors` is shared with @authmd/provider. */
export { collectBody, metricCollectors, type Collectors, type MetricsOptions, type MetricsRegistry } from '@authmd/core';
export type { RandomSource } from './secrets.ts';
export type { SigningAlgorithm } from '@authmd/core/keys';
export * from './store/index.ts';
export { nodeGuard, nodeMiddleware, writeRefusal, writeResponse, type NodeAdapterOptions, type RequestWithPrincipal } from './adapters/node.ts';
export { authmd as expressMiddleware, requireToken } from './adapters/express.ts';
export { authmdFastify, fastifyGuard } from './adapters/fastify.ts';
export { authmdHono, honoGuard, type HonoAdapterOptions } from './adapters/hono.ts';
