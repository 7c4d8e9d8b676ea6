export { AgentClient, instructionsFor, type AgentClientOptions } from './client.ts';
export { Discovery, type ServiceInfo } from './discovery.ts';
export { AuthmdClientError } from './errors.ts';
export { embeddedProviderSource, sampleProviderSource } from './id-jag-sources.ts';
export type { AuthenticateRequest, AuthResult, ClaimPrompt, ClaimRequiredResult, Handoff, IdJagSource, ReadyResult } from './types.ts';
export * from './store/index.ts';
