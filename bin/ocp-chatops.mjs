#!/usr/bin/env node
// ocp-chatops, the command-line client: runs src/cli/bin.ts through tsx (a
// dependency, so this works from a clean checkout after `npm ci`, no build).
import { register } from 'tsx/esm/api';

register();
await import(new URL('../src/cli/bin.ts', import.meta.url).href);
