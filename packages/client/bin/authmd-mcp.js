#!/usr/bin/env node
// The auth.md MCP server over stdio (see packages/client/README.md). The package ships TypeScript
// sources; tsx runs them.
import { register } from 'tsx/esm/api';

register();
await import('../src/mcp/main.ts');
