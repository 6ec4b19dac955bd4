#!/usr/bin/env node
// The published entry point: the compiled CLI. `npm ci` builds dist/ through the prepare script.
import { main } from '../dist/cli/index.js';

process.exitCode = await main(process.argv);
