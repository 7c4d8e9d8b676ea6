import { expect } from 'vitest';
import { postJson } from '../support/harness.ts';

/** The agent's and the person's side of v0.1 (`/agent/auth`), over HTTP. */

export type Json = Record<string, any>;

export function register(base: string, body: unknown): Promise<Response> {
  return postJson(`${base}/agent/auth`, body);
}

/** A registration that must succeed; the 200 body. */
export async function registered(base: string, body: unknown): Promise<Json> {
  const response = await register(base, body);
  const json = await response.json();
  expect(response.status, JSON.stringify(json)).toBe(200);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return json;
}

export function claim(base: string, claimToken: string, email: string): Promise<Response> {
  return postJson(`${base}/agent/auth/claim`, { claim_token: claimToken, email });
}

export function complete(base: string, claimToken: string, otp: string): Promise<Response> {
  return postJson(`${base}/agent/auth/claim/complete`, { claim_token: claimToken, otp });
}

/** `{status, error}` of a refusal, and its body. */
export async function refusal(response: Response): Promise<{ status: number; error: string; body: Json }> {
  const body = (await response.json()) as Json;
  return { status: response.status, error: body.error, body };
}

interface Message {
  to: string;
  subject: string;
  text: string;
}

/** The dev outbox of the service. */
export async function mailbox(base: string): Promise<Message[]> {
  return ((await (await fetch(`${base}/dev/mailbox.json`)).json()) as { messages: Message[] }).messages;
}

/** The latest claim email to `to`: its code and its link. */
export async function claimEmail(base: string, to: string): Promise<{ code: string; link: string; count: number }> {
  const messages = (await mailbox(base)).filter((m) => m.to === to && m.subject.includes('let an agent'));
  // The outbox lists the newest message first.
  const latest = messages[0];
  expect(latest, `a claim email to ${to}`).toBeDefined();
  const code = /read this code to your agent: (\d{6})/.exec(latest!.text)?.[1];
  const link = /(https?:\/\/\S+\/agent\/auth\/claim\/view\?token=\S+)/.exec(latest!.text)?.[1];
  expect(code, latest!.text).toMatch(/^\d{6}$/);
  expect(link, latest!.text).toBeDefined();
  return { code: code!, link: link!, count: messages.length };
}

/** A six-digit code that is not `code`. */
export function wrongCode(code: string): string {
  return code === '000000' ? '111111' : '000000';
}
