/** `current` and `v0.7` share `/agent/identity*`; a service speaking only v0.1 serves none of it. */
export function speaksIdentity(dialects: readonly string[]): boolean {
  return dialects.includes('current') || dialects.includes('v0.7');
}
