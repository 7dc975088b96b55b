/** `npm run doctor [-- --json …]`: the doctor on its own (the CLI's `ocp-chatops doctor` runs the same). */
import { processIo } from '../cli/process-io.js';
import { doctorCommand } from './command.js';

process.exitCode = await doctorCommand(process.argv.slice(2), processIo());
