import { startNotesApp } from './app.ts';

/** `node --import tsx examples/hono/src/main.ts`: the notes API on Hono at http://127.0.0.1:8787 (PORT to change it). */
const app = await startNotesApp({ port: Number(process.env.PORT ?? 8787), database: process.env.AUTHMD_DATABASE ?? 'notes-hono.db' });
process.stdout.write(`Notes on Hono: ${app.url}/api/notes (try: npx authmd check ${app.url})\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void app.close().then(() => process.exit(0)));
