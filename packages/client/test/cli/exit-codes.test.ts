import { describe, expect, it } from 'vitest';
import { ExitCode, exitCodeFor } from '../../src/cli/exit-codes.ts';
import { AuthmdClientError } from '../../src/errors.ts';

/** Issue 10: a claim whose answer was lost ends the CLI with "a person must act", like any claim that needs them again. */
describe('exit codes of lost claim answers', () => {
  it.each(['claim_answer_lost', 'claim_not_completed'])('%s → 2 (a person must act)', (code) => {
    expect(exitCodeFor(new AuthmdClientError(code, 'the answer was lost'))).toBe(ExitCode.needsHuman);
  });
});
