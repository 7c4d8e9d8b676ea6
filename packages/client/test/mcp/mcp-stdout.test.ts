import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binPath, demo, repoRoot, tempDir } from './helpers.ts';

/**
 * The raw stream, without the SDK's parser in between: every line the server writes to stdout is a
 * JSON-RPC 2.0 message (logs go to stderr), across successful and failing tool calls, and closing
 * stdin ends the process.
 */
describe('authmd-mcp stdout', () => {
  let service: Awaited<ReturnType<typeof demo>>;

  beforeAll(async () => {
    service = await demo();
  }, 30_000);

  afterAll(async () => {
    await service?.close();
  });

  it('carries only protocol messages, and the server exits when stdin closes', async () => {
    const home = tempDir('authmd-mcp-raw-');
    const child = spawn(process.execPath, [binPath], {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '', HOME: home.path, AUTHMD_STORE_PATH: join(home.path, 'credentials.json') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const lines = () => stdout.split('\n').filter((line) => line !== '');
    const answered = async (id: number) => {
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        const found = lines().map((line) => JSON.parse(line) as { id?: number }).find((message) => message.id === id);
        if (found) return found as { id: number; result?: any; error?: unknown };
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`no answer to ${id}; stdout: ${stdout}; stderr: ${stderr}`);
    };
    const send = (message: object) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);

    try {
      const issuer = service.demo.url;
      send({ id: 1, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
      expect((await answered(1)).result.serverInfo.name).toBe('@authmd/client');
      send({ method: 'notifications/initialized' });
      send({ id: 2, method: 'tools/list' });
      send({ id: 3, method: 'tools/call', params: { name: 'authmd_authenticate', arguments: { issuer } } });
      send({ id: 4, method: 'tools/call', params: { name: 'authmd_fetch', arguments: { issuer, url: `${issuer}/api/notes` } } });
      send({ id: 5, method: 'tools/call', params: { name: 'authmd_complete_claim', arguments: { issuer, user_code: '123456' } } });
      send({ id: 6, method: 'tools/call', params: { name: 'authmd_fetch', arguments: { issuer } } });

      expect((await answered(2)).result.tools.map((tool: { name: string }) => tool.name)).toContain('authmd_fetch');
      const ready = JSON.parse((await answered(3)).result.content[0].text);
      expect(ready.status).toBe('ready');
      expect(JSON.parse((await answered(4)).result.content[0].text).status).toBe(200);
      expect((await answered(5)).result.isError).toBe(true);
      expect((await answered(6)).result.isError).toBe(true); // url missing: the SDK's input validation

      for (const line of lines()) {
        const message = JSON.parse(line) as { jsonrpc?: string };
        expect(message.jsonrpc, line).toBe('2.0');
      }
      expect(stdout.endsWith('\n')).toBe(true);
      expect(stderr).toContain('authmd-mcp: ready on stdio');
      expect(stderr).not.toContain(ready.access_token);

      child.stdin.end();
      expect(await exited).toBe(0);
    } finally {
      child.kill();
      home.remove();
    }
  }, 30_000);
});
