/** The `authmd` command: `bin/authmd.js` runs this file (built to dist/cli/main.js). */
import { processIo, write } from './io.ts';
import { run } from './run.ts';

const io = processIo();
const code = await run(process.argv.slice(2), io);
// Everything written reaches the pipe before the exit; then exit even if a timer or stdin is still open.
await Promise.all([write(io.stdout, ''), write(io.stderr, '')]);
process.exit(code);
