import { describeExampleApp } from '../../../test-support/example-apps.ts';
import { startNextApp } from './next-app.ts';

// `next dev` in a process of its own: starting it (and compiling the routes on their first request) and
// stopping its process group take longer than an app started in the test's process.
describeExampleApp('Next.js', startNextApp, { startTimeout: 120_000 });
