/** A setting that cannot work, found before anything starts; its message names the option and the fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
