/**
 * `authmd-mcp`: the MCP server over stdio. Credentials in the file store (`AUTHMD_STORE_PATH`, else
 * `~/.authmd/credentials.json`); the user's email, if set, from `AUTHMD_EMAIL`. stdout carries the
 * protocol only; the few log lines go to stderr (set `AUTHMD_MCP_QUIET=1` to silence them).
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { AgentClient } from '../client.ts';
import { FileCredentialStore } from '../store/index.ts';
import { createMcpServer } from './server.ts';

const quiet = process.env['AUTHMD_MCP_QUIET'] === '1';
const log = (line: string) => {
  if (!quiet) process.stderr.write(`authmd-mcp: ${line}\n`);
};

const email = process.env['AUTHMD_EMAIL']?.trim() || undefined;
const store = new FileCredentialStore();
const client = new AgentClient({ store, ...(email ? { email } : {}) });
const server = createMcpServer({ client, log });
const transport = new StdioServerTransport();

let closing = false;
const shutdown = (why: string) => {
  if (closing) return;
  closing = true;
  log(`stopping (${why})`);
  void server.close().finally(() => process.exit(0));
};
// The host ends the session by closing our stdin (then signals, if we linger).
process.stdin.once('end', () => shutdown('stdin closed'));
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));

await server.connect(transport);
log(`ready on stdio; credentials in ${store.path}${email ? '; user email set' : ''}`);
