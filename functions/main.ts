// The container image's entry point: runs the function named by KCR_FUNCTION
// (or the first argument) as a Knative Service.
import { FUNCTIONS, isFunctionName } from './catalog.js';
import { runFunction } from './core/runtime/server.js';
import { errorMessage } from './core/runtime/errors.js';

const name = process.argv[2] ?? process.env.KCR_FUNCTION;
if (!name || !isFunctionName(name)) {
  console.error(`kcr: KCR_FUNCTION=${JSON.stringify(name ?? null)}: name one of ${Object.keys(FUNCTIONS).join(', ')}`);
  process.exit(2);
}
try {
  await runFunction(await FUNCTIONS[name](process.env), process.env);
} catch (err) {
  console.error(`kcr ${name}: ${errorMessage(err)}`);
  process.exit(1);
}
