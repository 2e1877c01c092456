/**
 * `webmoe models list | import | rm`: the filesystem model store, used
 * directly (no GPU device is opened: these commands only move bytes).
 */
import { existsSync } from 'node:fs';
import { modelCard } from '../api/openai';
import type { ModelCard } from '../api/types';
import { defaultStoreDir } from '../engine/node';
import type { ByteSource } from '../gguf/source';
import { sourceFromUrl } from '../gguf/source';
import { sourceFromPath } from '../gguf/source-node';
import type { FileSource } from '../gguf/source-node';
import { splitShardNames } from '../gguf/split';
import { checkGpuReadable } from '../models/gpu-readable';
import { modelConfigFromGguf } from '../models/registry';
import { formatBytes } from '../store/errors';
import { openFsWeightStore } from '../store/fs-node';
import type { ModelSummary } from '../store/weight-store';
import { CliError, parseCommand } from './args';
import { progress } from './model';
import { ProgressReporter } from './progress-bar';

const STORE_HELP = '  --store DIR  the store\'s directory (default $WEBMOE_STORE, else ~/.cache/webmoe/store)';

const HELP = `usage: webmoe models <list|import|rm> [options]

  webmoe models list [--json]                 the stored models: id, architecture, size, state
  webmoe models import <file.gguf|url> [--id ID]
                                              copies a GGUF file (or the shards of a split set: give
                                              the first) into the store, ready for --model ID; an
                                              interrupted import (Ctrl-C, a crash) resumes when the
                                              same command runs again
  webmoe models rm <id>                       deletes a stored model
${STORE_HELP}
  --json       list: print {"object":"list","data":[...]} as the API's models.list() does
  --id ID      import: the id to store it under (default: from the file name or URL)`;

/** A stored model as `list --json` prints it: the API's model card, and what an unfinished import holds so far. */
export interface ListedModel extends ModelCard {
  present_bytes: number;
}

export function listedModel(m: ModelSummary): ListedModel {
  return { ...modelCard(m), present_bytes: m.presentBytes };
}

/** The models as a table with a header row; columns padded to their widest cell. */
export function formatModelTable(models: readonly ModelSummary[]): string {
  const rows = [['ID', 'ARCHITECTURE', 'SIZE', 'STATE']];
  for (const m of models) {
    const state = m.state === 'complete' ? 'complete'
      : `importing (${m.storedBytes > 0 ? Math.floor((100 * m.presentBytes) / m.storedBytes) : 0}% stored)`;
    rows.push([m.modelId, m.architecture, formatBytes(m.storedBytes), state]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : c === 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

export async function modelsCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, { store: { type: 'string' }, json: { type: 'boolean' }, id: { type: 'string' } }, HELP);
  if (!parsed) return;
  const [action, ...rest] = parsed.positionals;
  const storeDir = (parsed.values.store as string | undefined) ?? defaultStoreDir();
  const id = parsed.values.id as string | undefined;
  if (id !== undefined && action !== 'import') throw new CliError(`--id goes with import\n\n${HELP}`);
  if (parsed.values.json && action !== 'list') throw new CliError(`--json goes with list\n\n${HELP}`);
  switch (action) {
    case 'list':
      if (rest.length > 0) throw new CliError(`unexpected argument '${rest[0]}'\n\n${HELP}`);
      return listModels(storeDir, parsed.values.json === true);
    case 'import':
      if (rest.length !== 1) throw new CliError(`import takes one file or URL\n\n${HELP}`);
      return importModel(storeDir, rest[0], id);
    case 'rm':
      if (rest.length !== 1) throw new CliError(`rm takes one model id\n\n${HELP}`);
      return removeModel(storeDir, rest[0]);
    default:
      throw new CliError(`${action === undefined ? 'a subcommand is required' : `unknown subcommand '${action}'`}\n\n${HELP}`);
  }
}

async function listModels(storeDir: string, json: boolean): Promise<void> {
  // Listing does not create the store's directory.
  const models = existsSync(storeDir) ? await (await openFsWeightStore(storeDir)).listModels() : [];
  if (json) {
    process.stdout.write(`${JSON.stringify({ object: 'list', data: models.map(listedModel) })}\n`);
    return;
  }
  if (models.length === 0) {
    progress(`no models in ${storeDir}; add one with webmoe models import <file.gguf>`);
    return;
  }
  process.stdout.write(`${formatModelTable(models)}\n`);
}

async function removeModel(storeDir: string, id: string): Promise<void> {
  const store = existsSync(storeDir) ? await openFsWeightStore(storeDir) : undefined;
  const models = store ? await store.listModels() : [];
  if (!store || !models.some((m) => m.modelId === id)) {
    const known = models.length > 0 ? `; stored: ${models.map((m) => m.modelId).join(', ')}` : '';
    throw new CliError(`no model '${id}' in the store at ${storeDir}${known}`);
  }
  await store.deleteModel(id);
  progress(`deleted ${id} from ${storeDir}`);
}

async function importModel(storeDir: string, from: string, id: string | undefined): Promise<void> {
  const sources = await openSources(from);
  const controller = new AbortController();
  // Ctrl-C stops between write batches; what was written is kept for the next run to resume from.
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  const reporter = new ProgressReporter(process.stderr);
  let announced = false;
  try {
    const store = await openFsWeightStore(storeDir);
    const result = await store.importModel(sources, {
      modelId: id,
      signal: controller.signal,
      // Refused from the header, before anything is written: a model the engine could not run.
      accept: (file) => checkGpuReadable(file, modelConfigFromGguf(file)),
      onProgress: (p) => {
        if (!announced && p.phase === 'writing') {
          announced = true;
          progress(p.bytesDone > 0
            ? `resuming ${p.modelId}: ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} already stored`
            : `importing ${p.modelId} (${formatBytes(p.bytesTotal)}) into ${storeDir}`);
        }
        if (p.phase !== 'complete') reporter.update(p.phase, p.bytesDone, p.bytesTotal);
      },
    });
    reporter.endLine();
    const m = result.manifest;
    progress(result.alreadyComplete
      ? `${m.modelId} is already imported (${m.architecture}, ${formatBytes(m.storedBytes)}); use --model ${m.modelId}`
      : `imported ${m.modelId} (${m.architecture}, ${formatBytes(m.storedBytes)}${result.recordsResumed > 0 ? `, ${result.recordsResumed} records kept from the earlier run` : ''}); use --model ${m.modelId}`);
  } catch (error) {
    reporter.endLine();
    if (controller.signal.aborted) {
      process.exitCode = 130;
      progress('import interrupted; run the same command again to resume');
      return;
    }
    throw error;
  } finally {
    process.off('SIGINT', interrupt);
    await Promise.all(sources.map((s) => (s as Partial<FileSource>).close?.()));
  }
}

/** A URL, or a local file (a split set's first shard brings the others, found by name). */
async function openSources(from: string): Promise<ByteSource[]> {
  if (/^https?:\/\//i.test(from)) {
    const names = splitShardNames(from) ?? [from];
    return Promise.all(names.map((url) => sourceFromUrl(url)));
  }
  if (!existsSync(from)) throw new CliError(`no file '${from}' (give a GGUF file path or an http(s) URL)`);
  const paths = (splitShardNames(from) ?? [from]).filter((p) => p === from || existsSync(p));
  const opened: FileSource[] = [];
  for (const path of paths) opened.push(await sourceFromPath(path));
  return opened;
}
