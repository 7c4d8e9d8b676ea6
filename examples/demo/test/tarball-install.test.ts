import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test-support/free-port.ts';
import { packagesWithInstallScripts } from './install-scripts.ts';
import { pointAt, README_BASE, readmeSection } from './readme.ts';

/**
 * Issue 14, "Packages people can install": every package is packed by `npm pack` (its prepack builds
 * dist/ with tsc), the tarballs are installed together into a fresh project outside the checkout,
 * and that project runs with plain node, no tsx and no TypeScript: the README's `server.mjs`, `npx
 * authmd fetch` and `npx authmd check` against it as the README shows them, and `authmd-mcp` through
 * the MCP SDK's client.
 * A second fresh project installs the provider's tarballs alone: no database driver, no mailer.
 */

/** A TypeScript consumer of every package, type-checked with the libraries' declarations included (skipLibCheck off). */
const CONSUMER_SOURCE = `
import { AgentClient } from '@authmd/client';
import { runConformance } from '@authmd/conformance';
import { createPostgresStore } from '@authmd/core/postgres';
import { createProvider } from '@authmd/provider';
import { registrationEnvelope } from '@authmd/protocol';
import { createService, createSqliteStore, type ServiceOptions } from '@authmd/service';
const options: ServiceOptions = {
  issuer: 'https://notes.example.com',
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
  store: createSqliteStore({ path: ':memory:' }),
};
export const service = createService(options);
export const pg = createPostgresStore({ connectionString: 'postgres://127.0.0.1/notes' });
export { AgentClient, createProvider, registrationEnvelope, runConformance };
`;
const CONSUMER_TSCONFIG = {
  compilerOptions: { strict: true, skipLibCheck: false, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, types: ['node'] },
  files: ['consumer.ts'],
};

/** The provider-only project's script: an ID-JAG minted for the running service, and what loading the SQLite store says. */
const PROVIDER_SCRIPT = `
import { createProvider } from '@authmd/provider';
import { createMemoryStore } from '@authmd/core/store';
const provider = await createProvider({ issuer: 'http://127.0.0.1:9', store: createMemoryStore(), allowLoopback: true });
await provider.grants.create('user-1', { audience: process.env.SERVICE, mode: 'always' });
const { assertion } = await provider.mintIdJag({
  user: { id: 'user-1', email: 'ada@example.com', emailVerified: true, authTime: Math.floor(Date.now() / 1000) },
  audience: process.env.SERVICE,
});
let sqlite = 'loaded';
try { await import('@authmd/core/sqlite'); } catch (error) { sqlite = error.message; }
await provider.close();
console.log(JSON.stringify({ claims: JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url')), sqlite }));
`;

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['protocol', 'core', 'service', 'provider', 'conformance', 'client'];
/** What a provider alone installs: no database driver, no mailer. */
const PROVIDER_PACKAGES = ['protocol', 'core', 'provider'];
const SERVICE_ONLY_DEPENDENCIES = ['better-sqlite3', 'nodemailer', 'pg', 'redis'];
const SECTION = '## Use the service in your app';
/** Skips of `authmd check` that the README's tiny app cannot avoid: it trusts no agent provider and switches no registration method off. */
const UNAVOIDABLE_SKIPS = [
  'the service does not advertise identity_assertion registration',
  'the service advertises no agent_auth.events_endpoint',
  'the service advertises both anonymous and service_auth registration: no method is off to try',
];

/**
 * The environment of a person's shell in the fresh project: nothing from the npm run or the vitest
 * worker this test runs in (npm_config_local_prefix would point npm at the checkout, NODE_OPTIONS or
 * the checkout's node_modules/.bin on PATH could lend the project what it lacks).
 */
function projectEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(npm_|vitest|node_options$|node_env$|init_cwd$)/i.test(key)) continue;
    env[key] = value;
  }
  env['PATH'] = (env['PATH'] ?? '').split(delimiter).filter((dir) => !dir.startsWith(repoRoot) && !dir.includes('node_modules')).join(delimiter);
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', NO_COLOR: '1', ...extra };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killed after `timeoutMs`. */
function run(command: string, args: string[], options: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

/** The README's snippet of the section: its one ```js block (server.mjs), and the `npx authmd` commands of the block that runs it. */
function readmeApp(): { server: string; commands: string[][] } {
  const section = readmeSection(SECTION);
  const js = [...section.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  expect(js, `"${SECTION}" shows one server.mjs`).toHaveLength(1);
  const runBlock = [...section.matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).find((block) => block.includes('node server.mjs'));
  expect(runBlock, `"${SECTION}" shows how to run server.mjs`).toBeDefined();
  const commands = runBlock!
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith('npx authmd '))
    .map((line) => line.split(/\s+/).slice(2));
  return { server: js[0]!, commands };
}

/**
 * Puts better-sqlite3's native binary into the project installed with --ignore-scripts: the
 * checkout's, when the checkout holds the same version (and so was built from the same sources for
 * this node), else built from source in the project by npm, as its install script would.
 */
async function provideSqliteBinary(project: string): Promise<void> {
  const versionIn = (root: string) => (JSON.parse(readFileSync(join(root, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8')) as { version: string }).version;
  const binary = join('node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
  if (versionIn(project) === versionIn(repoRoot) && existsSync(join(repoRoot, binary))) {
    mkdirSync(dirname(join(project, binary)), { recursive: true });
    copyFileSync(join(repoRoot, binary), join(project, binary));
    return;
  }
  const rebuild = await run('npm', ['rebuild', 'better-sqlite3'], {
    cwd: project,
    env: projectEnv({ npm_config_build_from_source: 'true', CFLAGS: '-O0', CXXFLAGS: '-O0' }),
    timeoutMs: 360_000,
  });
  expect(rebuild.code, `${rebuild.stdout}\n${rebuild.stderr}`).toBe(0);
}

describe('the packages, packed and installed into a fresh project outside the checkout', () => {
  const work = mkdtempSync(join(tmpdir(), 'authmd-tarballs-'));
  const packs = join(work, 'packs');
  const app = join(work, 'app');
  const providerApp = join(work, 'provider-app');
  const { server: serverSource, commands } = readmeApp();
  let packed: { name: string; filename: string; files: { path: string }[] }[] = [];
  let server: ChildProcess | undefined;
  let serverOutput = '';
  let base = '';

  beforeAll(async () => {
    mkdirSync(packs);
    mkdirSync(app);
    mkdirSync(providerApp);
    // As the README says: one npm pack of the six packages, each built by its prepack.
    const pack = await run('npm', ['pack', '--json', '--pack-destination', packs, ...PACKAGES.flatMap((name) => ['-w', `packages/${name}`])], {
      cwd: repoRoot,
      env: projectEnv(),
      timeoutMs: 120_000,
    });
    expect(pack.code, pack.stderr).toBe(0);
    packed = JSON.parse(pack.stdout) as typeof packed;

    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'authmd-tarball-app', private: true, type: 'module', allowScripts: { 'better-sqlite3': true } }, null, 2));
    const tarballs = packed.map((p) => join(packs, p.filename));
    // Third-party dependencies from the npm registry (the cache first), nothing downloaded from
    // elsewhere. better-sqlite3 is the one package with an install script (a native build), which is
    // its own and not what this test is about: its binary comes from the checkout's install, which
    // compiled the same version from source for this same node, and is built here only when the
    // versions differ (unoptimised: SQLite's one 9 MB C file takes 90 s of CPU at -O3, 30 s at -O0).
    const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...tarballs], {
      cwd: app,
      env: projectEnv(),
      timeoutMs: 240_000,
    });
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
    expect([...packagesWithInstallScripts(join(app, 'node_modules')).keys()], 'no install script but better-sqlite3 was skipped').toEqual(['better-sqlite3']);
    await provideSqliteBinary(app);

    // A TypeScript consumer brings its own @types/node (and TypeScript: the checkout's tsc stands in, so none is installed here).
    const types = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', '@types/node@20'], { cwd: app, env: projectEnv(), timeoutMs: 120_000 });
    expect(types.code, `${types.stdout}\n${types.stderr}`).toBe(0);

    writeFileSync(join(providerApp, 'package.json'), JSON.stringify({ name: 'authmd-provider-app', private: true, type: 'module' }, null, 2));
    const providerTarballs = packed.filter((p) => PROVIDER_PACKAGES.includes(p.name.slice('@authmd/'.length))).map((p) => join(packs, p.filename));
    const providerInstall = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...providerTarballs], { cwd: providerApp, env: projectEnv(), timeoutMs: 120_000 });
    expect(providerInstall.code, `${providerInstall.stdout}\n${providerInstall.stderr}`).toBe(0);

    writeFileSync(join(app, 'server.mjs'), serverSource);
    // The issuer names the port, so the port is chosen before the start (server.mjs reads PORT).
    const port = await freePort();
    server = spawn(process.execPath, ['server.mjs'], { cwd: app, env: projectEnv({ PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.setEncoding('utf8').on('data', (chunk: string) => (serverOutput += chunk));
    server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (serverOutput += chunk));
    const started = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server.mjs printed no address within 20 s:\n${serverOutput}`)), 20_000);
      server!.on('exit', (code) => reject(new Error(`server.mjs exited (${code}):\n${serverOutput}`)));
      server!.stdout!.on('data', () => {
        const match = /Notes API on (http:\/\/127\.0\.0\.1:(\d+))\/api\/notes/.exec(serverOutput);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    base = started;
    expect(base).toBe(`http://127.0.0.1:${port}`);
  }, 480_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('packs built JavaScript with declarations, README and bins: no sources, no tests, no tsx', () => {
    expect(packed.map((p) => p.name).sort()).toEqual(PACKAGES.map((name) => `@authmd/${name}`).sort());
    for (const { name, files } of packed) {
      const paths = files.map((file) => file.path);
      expect(paths, name).toEqual(expect.arrayContaining(['package.json', 'dist/index.js', 'dist/index.d.ts']));
      expect(paths.filter((path) => !/^(dist\/|bin\/|README\.md$|package\.json$)/.test(path)), `${name}: only dist/, bin/, README.md, package.json`).toEqual([]);
      expect(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts')), `${name}: no TypeScript sources`).toEqual([]);
      const manifest = JSON.parse(readFileSync(join(app, 'node_modules', name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      expect(Object.keys(manifest.dependencies ?? {}), `${name} does not depend on tsx`).not.toContain('tsx');
    }
    const client = packed.find((p) => p.name === '@authmd/client')!.files.map((file) => file.path);
    expect(client).toEqual(expect.arrayContaining(['bin/authmd.js', 'bin/authmd-mcp.js', 'README.md']));

    // Installed: nothing under node_modules/@authmd/* is TypeScript but declarations, and no tsx anywhere.
    for (const name of PACKAGES) {
      const installed = filesUnder(join(app, 'node_modules', '@authmd', name));
      expect(installed.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts')), name).toEqual([]);
    }
    const tsx = readdirSync(join(app, 'node_modules'), { recursive: true }).filter((path) => /(^|\/)node_modules\/tsx$|^tsx$/.test(String(path)));
    expect(tsx, 'tsx is not installed in the fresh project').toEqual([]);
    expect(existsSync(join(app, 'node_modules', 'typescript')), 'nor TypeScript').toBe(false);
  });

  it('installs the provider with neither a database driver nor a mailer, and it mints an ID-JAG for the running service', async () => {
    const installed = readdirSync(join(providerApp, 'node_modules'), { recursive: true }).map(String);
    for (const name of SERVICE_ONLY_DEPENDENCIES) {
      expect(installed.filter((path) => path === name || path.endsWith(`/node_modules/${name}`)), `${name} is not installed with the provider`).toEqual([]);
    }
    expect(existsSync(join(providerApp, 'node_modules', '@authmd', 'service')), '@authmd/service is not installed with the provider').toBe(false);

    writeFileSync(join(providerApp, 'provider.mjs'), PROVIDER_SCRIPT);
    const result = await run(process.execPath, ['provider.mjs'], { cwd: providerApp, env: projectEnv({ SERVICE: base }), timeoutMs: 30_000 });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const { claims, sqlite } = JSON.parse(result.stdout) as { claims: Record<string, unknown>; sqlite: string };
    expect(claims).toMatchObject({ iss: 'http://127.0.0.1:9', aud: base, sub: 'user-1', email: 'ada@example.com' });
    // The SQLite store is there to use once its driver is installed; without it, the error names the package.
    expect(sqlite).toContain("Cannot find package 'better-sqlite3'");
  });

  it('type-checks a strict TypeScript consumer of every package with skipLibCheck off', async () => {
    writeFileSync(join(app, 'consumer.ts'), CONSUMER_SOURCE);
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(CONSUMER_TSCONFIG, null, 2));
    const tsc = await run(process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app, env: projectEnv(), timeoutMs: 60_000 });
    expect(tsc.code, `${tsc.stdout}\n${tsc.stderr}`).toBe(0);
  });

  it("serves the README's server.mjs with plain node: a protected route, 401 without a token", async () => {
    const response = await fetch(`${base}/api/notes`);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource`);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
  });

  it('npx authmd fetch, as the README shows it, registers and gets through', async () => {
    const fetchArgs = commands.find((args) => args[0] === 'fetch');
    expect(fetchArgs, 'the README runs npx authmd fetch').toBeDefined();
    const args = pointAt(fetchArgs!.join(' '), { [README_BASE]: base }).split(' ');
    const store = join(work, 'fetch-store', 'credentials.json');
    const result = await run('npx', ['authmd', ...args], { cwd: app, env: projectEnv({ AUTHMD_STORE_PATH: store }), timeoutMs: 60_000 });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ notes: [], registration: expect.stringMatching(/^reg_/) });
  });

  it('npx authmd check, as the README shows it, fails no check; it skips only what the tiny app does not offer', async () => {
    const checkArgs = commands.find((args) => args[0] === 'check');
    expect(checkArgs, 'the README runs npx authmd check').toBeDefined();
    const args = pointAt(checkArgs!.join(' '), { [README_BASE]: base }).split(' ');
    const providerPort = await freePort();
    const result = await run('npx', ['authmd', ...args, '--provider-port', String(providerPort), '--provider-key', join(work, 'check-provider-key.json')], {
      cwd: app,
      env: projectEnv({ AUTHMD_STORE_PATH: join(work, 'check-store', 'credentials.json') }),
      timeoutMs: 180_000,
    });
    console.log(`npx authmd ${args.join(' ')}:\n${result.stdout}`);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const lines = result.stdout.split('\n');
    const verdicts = lines.filter((line) => /^(PASS|FAIL|SKIP) {2}/.test(line));
    expect(verdicts.filter((line) => line.startsWith('FAIL'))).toEqual([]);
    const reasons = lines.flatMap((line, i) => (line.startsWith('SKIP  ') ? [lines[i + 1]!.trim()] : []));
    expect(reasons.filter((reason) => !UNAVOIDABLE_SKIPS.includes(reason)), 'skipped only for what the app does not offer').toEqual([]);
    const summary = new RegExp(`\\n(\\d+) checks against ${base}: (\\d+) passed, 0 failed, ${reasons.length} skipped \\(`).exec(result.stdout);
    expect(summary, result.stdout).not.toBeNull();
    expect(Number(summary![1])).toBe(verdicts.length);
    expect(Number(summary![2])).toBeGreaterThanOrEqual(50);
  }, 200_000);

  it('authmd-mcp, started by an MCP client as a host does (npx authmd-mcp), lists its tools and fetches the API', async () => {
    const transport = new StdioClientTransport({
      command: 'npx',
      args: ['authmd-mcp'],
      cwd: app,
      env: projectEnv({ AUTHMD_STORE_PATH: join(work, 'mcp-store', 'credentials.json') }),
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const client = new Client({ name: 'authmd-tarball-test', version: '0.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name), stderr).toEqual(expect.arrayContaining(['authmd_authenticate', 'authmd_complete_claim', 'authmd_fetch', 'authmd_wait_for_claim']));
      const result = (await client.callTool({ name: 'authmd_fetch', arguments: { issuer: base, url: `${base}/api/notes` } }, undefined, { timeout: 30_000 })) as CallToolResult;
      const text = result.content.find((item) => item.type === 'text');
      expect(result.isError ?? false, JSON.stringify(result)).toBe(false);
      const answer = JSON.parse(text && text.type === 'text' ? text.text : '{}') as { status: number; body: string };
      expect(answer.status, stderr).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ notes: [], registration: expect.stringMatching(/^reg_/) });
    } finally {
      await client.close();
    }
  }, 60_000);
});
