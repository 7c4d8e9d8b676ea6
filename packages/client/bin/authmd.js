#!/usr/bin/env node
// The `authmd` CLI: dist/cli/main.js (in the authmd checkout, its TypeScript source; see load.js).
import { load } from './load.js';

await load('cli/main');
