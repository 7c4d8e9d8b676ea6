#!/usr/bin/env node
// The auth.md MCP server over stdio (see packages/client/README.md): dist/mcp/main.js (in the authmd
// checkout, its TypeScript source; see load.js).
import { load } from './load.js';

await load('mcp/main');
