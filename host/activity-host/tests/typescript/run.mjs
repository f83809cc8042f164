// Runs workflows.ts on a Temporal TypeScript SDK worker and prints what typedUser answered,
// as JSON: node run.mjs ADDRESS TASK_QUEUE WORKFLOW_ID
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';

const [address, taskQueue, id] = process.argv.slice(2);
Runtime.install({ logger: new DefaultLogger('WARN') });
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address }),
  taskQueue,
  workflowsPath: fileURLToPath(new URL('./workflows.ts', import.meta.url)),
});
const client = new Client({ connection: await Connection.connect({ address }) });
const started = performance.now();
const result = await worker.runUntil(
  client.workflow.execute('typedUser', { taskQueue, workflowId: id, args: [id] }),
);
// From the start request to the result, as this client saw it.
const elapsed_ms = Math.round(performance.now() - started);
console.log(JSON.stringify({ ...result, elapsed_ms }));
process.exit(0);
