/**
 * Where the shared routing traces live: `../shared/traces` next to the
 * repository (never copied into it), or WEBMOE_TRACES_DIR. Missing traces
 * fail the tests that need them, with this message, rather than skipping.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RoutingTrace } from '../../../src/experts/trace';
import { readTracePaths } from '../../../src/experts/analysis/trace-node';

const repoRoot = resolve(import.meta.dirname, '../../..');

export const TRACES_DIR = process.env.WEBMOE_TRACES_DIR ?? resolve(repoRoot, '../shared/traces');

export type TraceFamily = 'gpt-oss-20b' | 'mixtral-8x7b';

/** The family's directory; throws naming the path and the override when it is missing. */
export function familyDir(family: TraceFamily): string {
  const dir = join(TRACES_DIR, family);
  if (!existsSync(dir)) {
    throw new Error(`routing traces not found at ${dir}: these tests need the shared traces ` +
      `(../shared/traces beside the repository, or set WEBMOE_TRACES_DIR to their directory)`);
  }
  return dir;
}

export function loadFamily(family: TraceFamily): Promise<RoutingTrace[]> {
  return readTracePaths([familyDir(family)]);
}
