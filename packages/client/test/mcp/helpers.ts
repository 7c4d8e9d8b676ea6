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
  const running = await startDemo({ port: 0, dataDir: data.path });
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
 * A person at a browser, over fetch: a cookie jar, one redirect hop at a time, and only what the
 * pages give out (cookies and hidden fields). Signs in with the code from the demo's mailbox.
 */
export class Human {
  private readonly jar = new Map<string, string>();

  constructor(
    readonly base: string,
    readonly email: string,
  ) {}

  /** Opens a claim link, signing in when asked; returns the claim page. */
  async openClaimLink(link: string): Promise<string> {
    let page = await this.visit(link);
    if (page.status === 303 && new URL(page.location!, this.base).pathname === '/login') {
      const emailForm = await this.visit(page.location!);
      const codeForm = await this.submit(emailForm.html, '/login', { email: this.email });
      const signedIn = await this.submit(codeForm.html, '/login/code', { code: await this.signInCode() });
      if (signedIn.status !== 303) throw new Error(`sign-in failed: ${signedIn.status} ${signedIn.html}`);
      page = await this.visit(signedIn.location!);
    }
    if (page.status !== 200 || !page.html.includes('Authorize this agent?')) throw new Error(`no claim page: ${page.status} ${page.html}`);
    return page.html;
  }

  /** Read-back: Authorize, then the code the page shows. */
  async authorize(claimPage: string): Promise<string> {
    const shown = await this.submit(claimPage, '/claim/authorize', {});
    const code = /data-testid="page-code">(\d{6})</.exec(shown.html)?.[1];
    if (!code) throw new Error(`no page code: ${shown.status} ${shown.html}`);
    return code;
  }

  /** Type-in: enters the agent's code on the claim page. */
  async typeAgentCode(claimPage: string, code: string): Promise<void> {
    const linked = await this.submit(claimPage, '/claim/code', { code });
    if (linked.status !== 200 || !linked.html.includes('Agent linked')) throw new Error(`type-in failed: ${linked.status} ${linked.html}`);
  }

  private async signInCode(): Promise<string> {
    const { messages } = (await (await fetch(`${this.base}/dev/mailbox.json`)).json()) as { messages: { to: string; subject: string }[] };
    const code = /\b(\d{6})\b/.exec([...messages].reverse().find((m) => m.to === this.email)?.subject ?? '')?.[1];
    if (!code) throw new Error(`no sign-in code for ${this.email}`);
    return code;
  }

  private async submit(html: string, action: string, inputs: Record<string, string>): Promise<Page> {
    const form = [...html.matchAll(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/g)].find((m) => m[1] === action);
    if (!form) throw new Error(`no form posting to ${action} in ${html}`);
    const fields: Record<string, string> = {};
    for (const input of form[2]!.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[input[1]!] = unescapeHtml(input[2]!);
    return this.visit(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...inputs }).toString(),
    });
  }

  private async visit(target: string, init: RequestInit = {}): Promise<Page> {
    const cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const headers = { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) };
    const response = await fetch(new URL(target, this.base), { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      if (attributes.some((a) => a.trim().toLowerCase() === 'max-age=0')) this.jar.delete(pair!.slice(0, eq));
      else this.jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return { status: response.status, location: response.headers.get('location'), html: await response.text() };
  }
}

interface Page {
  status: number;
  location: string | null;
  html: string;
}

const unescapeHtml = (text: string) =>
  text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
