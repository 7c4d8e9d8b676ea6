/** The demo agent provider (issue 4 item 9): what `npm start` and the demo service's trust list use. */
export { DEMO_PROVIDER_NAME, startDemoProvider, type DemoProviderOptions, type DemoProviderTrustEntry, type RunningDemoProvider } from './start.ts';
export { DEMO_USERS, type DemoUser } from './users.ts';
