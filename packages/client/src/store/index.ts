export type { CredentialStore, IssuerRecord, RegistrationType, StoredAccessToken, StoredCredential, StoredIdentity } from './contract.ts';
export { MemoryCredentialStore } from './memory-store.ts';
export {
  CredentialStoreCorruptError,
  CredentialStoreLockTimeoutError,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_STALE_LOCK_MS,
  defaultStorePath,
  FileCredentialStore,
  type FileCredentialStoreOptions,
} from './file-store.ts';
export { InvalidRecordError, sanitizeRecord } from './record.ts';
