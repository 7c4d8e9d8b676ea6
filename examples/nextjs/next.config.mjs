/**
 * The Next.js example (issue 14). In this repository the workspace packages run from their
 * TypeScript sources, which their package.json exports under the "@authmd/source" condition; Turbopack
 * has no setting for export conditions, so the aliases below point at the sources. An app that installs
 * @authmd/service from npm needs no alias: the package's default export is its built JavaScript.
 */
const source = (entry) => `../../packages/${entry}`;

/** @type {import('next').NextConfig} */
export default {
  turbopack: {
    resolveAlias: {
      '@authmd/service': source('service/src/index.ts'),
      '@authmd/protocol': source('protocol/src/index.ts'),
      '@authmd/conformance': source('conformance/src/index.ts'),
    },
  },
  // The native SQLite driver and the service's optional drivers stay plain Node modules, loaded at run time.
  serverExternalPackages: ['better-sqlite3', 'pg', 'redis', 'nodemailer', 'prom-client'],
  // No AGENTS.md written into the example by `next dev`.
  agentRules: false,
  experimental: { agentUpgrade: false },
};
