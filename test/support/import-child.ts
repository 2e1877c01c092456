/**
 * A process that imports one GGUF file into a filesystem store and prints
 * each progress event as a JSON line on stdout, for tests that kill it
 * mid-import (test/gpu-node/import-kill.test.ts).
 *   node --import tsx test/support/import-child.ts <file.gguf> <storeDir> <modelId> <batchBytes>
 */
import { sourceFromPath } from '../../src/gguf/source-node';
import { openFsWeightStore } from '../../src/store/fs-node';

const [path, storeDir, modelId, batchBytes] = process.argv.slice(2);
const store = await openFsWeightStore(storeDir);
const source = await sourceFromPath(path);
try {
  const result = await store.importModel(source, {
    modelId,
    batchBytes: Number(batchBytes),
    onProgress: (p) => process.stdout.write(`${JSON.stringify(p)}\n`),
  });
  process.stdout.write(`${JSON.stringify({ done: true, recordsResumed: result.recordsResumed, bytesWritten: result.bytesWritten })}\n`);
} finally {
  await source.close();
}
