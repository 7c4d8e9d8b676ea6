import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startDemo, type RunningDemo } from '../../../../examples/demo/src/start.ts';

export const repoRoot = resolve(fileURLToPath(new URL('../../../../', import.meta.url)));
export const binPath = join(repoRoot, 'packages/client/bin/authmd-mcp.js');

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export async function demo(): Promise<{ demo: RunningDemo; close(): Promise<void> }> {
  const data = tempDir('authmd-mcp-demo-');
  const running = await startDemo({ port: 0, dataDir: data.path, pollIntervalSeconds: 1 });
  return {
    demo: running,
    close: async () => {
      await running.close();
      data.remove();
    },
  };
}

/** The MCP server as a host runs it: `node bin/authmd-mcp.js` over stdio, driven by the SDK's own client. */
export interface Connected {
  client: Client;
  storePath: string;
  /** Everything the server wrote to stderr. */
  stderr(): string;
  /** Transport errors, such as a stdout line that is not a JSON-RPC message. */
  transportErrors: Error[];
  close(): Promise<void>;
}

export async function connect(env: Record<string, string> = {}): Promise<Connected> {
  const home = tempDir('authmd-mcp-home-');
  const storePath = join(home.path, 'store', 'credentials.json');
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [binPath],
    cwd: repoRoot,
    env: { ...getDefaultEnvironment(), HOME: home.path, AUTHMD_STORE_PATH: storePath, ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const transportErrors: Error[] = [];
  const client = new Client({ name: 'authmd-mcp-test', version: '0.0.0' });
  await client.connect(transport);
  client.onerror = (error) => transportErrors.push(error);
  return {
    client,
    storePath,
    stderr: () => stderr,
    transportErrors,
    close: async () => {
      await client.close();
      home.remove();
    },
  };
}

/** Calls a tool and parses its JSON text. */
export async function call<T = any>(client: Client, name: string, args: Record<string, unknown>): Promise<{ isError: boolean; value: T }> {
  const result = (await client.callTool({ name, arguments: args }, undefined, { timeout: 30_000 })) as CallToolResult;
  const text = result.content.find((item) => item.type === 'text');
  if (!text || text.type !== 'text') throw new Error(`${name} answered without text: ${JSON.stringify(result)}`);
  return { isError: result.isError === true, value: JSON.parse(text.text) as T };
}

/**
 * A person at a browser, over fetch, signed in with the code from the demo's mailbox: the CLI tests'
 * `Human`, itself the conformance suite's `AuthmdPagesHuman` for one email.
 */
export { Human } from '../cli/human.ts';
