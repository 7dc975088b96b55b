/** The process behind bin/ocp-chatops.mjs. */
import { runCli } from './main.js';
import { processIo } from './process-io.js';

process.exitCode = await runCli(process.argv.slice(2), processIo());
