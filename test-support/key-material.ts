import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/**
 * For the keys-at-rest tests (issue 10): every form in which a private key could sit in a database
 * file, and a scan of the file, its WAL and its shared-memory file for them.
 */

/** The JWK `d` (as text in each encoding, and as bytes), PKCS #8 and SEC1 DER, and PEM. */
export function privateKeyForms(privateKey: KeyObject): { what: string; bytes: Buffer }[] {
  const d = (privateKey.export({ format: 'jwk' }) as { d?: string }).d;
  if (!d) throw new Error('not a private EC or OKP key');
  const dBytes = Buffer.from(d, 'base64url');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const forms = [
    { what: 'd (base64url)', bytes: Buffer.from(d) },
    { what: 'd (raw bytes)', bytes: dBytes },
    { what: 'd (hex)', bytes: Buffer.from(dBytes.toString('hex')) },
    { what: 'd (base64)', bytes: Buffer.from(dBytes.toString('base64').replace(/=+$/, '')) },
    { what: 'PKCS #8 DER', bytes: pkcs8 },
    { what: 'PEM (first line of the body)', bytes: Buffer.from(pem.split('\n')[1]!) },
    { what: 'PKCS #8 DER (base64url)', bytes: Buffer.from(pkcs8.toString('base64url').slice(0, 48)) },
  ];
  if (privateKey.asymmetricKeyType === 'ec') forms.push({ what: 'SEC1 DER', bytes: privateKey.export({ format: 'der', type: 'sec1' }) });
  return forms;
}

/** The database file and its WAL and shared-memory files, as they are on disk now. */
export function databaseFiles(path: string): { file: string; bytes: Buffer }[] {
  return [path, `${path}-wal`, `${path}-shm`].filter((file) => existsSync(file)).map((file) => ({ file, bytes: readFileSync(file) }));
}

/** Which form of which private key occurs in which of the database's files ('d (hex) in /…/authmd.db-wal'). */
export function keyMaterialIn(path: string, privateKeys: KeyObject[]): string[] {
  const files = databaseFiles(path);
  if (files.length === 0) throw new Error(`no database at ${path}`);
  const found: string[] = [];
  for (const key of privateKeys) {
    for (const form of privateKeyForms(key)) {
      for (const { file, bytes } of files) if (bytes.includes(form.bytes)) found.push(`${form.what} in ${file}`);
    }
  }
  return found;
}

/** Whether any of the database's files holds `text` (positive controls for the scan). */
export function databaseHolds(path: string, text: string): boolean {
  return databaseFiles(path).some(({ bytes }) => bytes.includes(Buffer.from(text)));
}

/** Whether `privateKey` is the key that signed the ES256 JWT `jwt`. */
export function signedBy(jwt: string, privateKey: KeyObject): boolean {
  const [h, p, s] = jwt.split('.') as [string, string, string];
  return verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey(privateKey), dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
}
