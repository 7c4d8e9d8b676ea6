import { describeExampleApp } from '../../../test-support/example-apps.ts';
import { startNotesApp } from '../src/app.ts';

describeExampleApp('Fastify', startNotesApp);
