/**
 * Import bookkeeping that makes resumption safe: every write batch ends with
 * a journal record listing the hash of each record in it, written in the
 * same backend call after them. On resume, a record counts as done only when
 * it is present and a journal vouches for it; anything else is written again.
 * Journals are removed once the manifest is committed.
 */

import type { RecordWrite, StoreBackend } from './backend';
import { storageCall } from './errors';
import { JOURNAL_PREFIX } from './manifest';
import type { RecordEntry } from './manifest';

export interface JournalEntry {
  key: string;
  hash: string;
}

export function journalRecord(index: number, records: readonly JournalEntry[]): RecordWrite {
  const entries: JournalEntry[] = records.map((r) => ({ key: r.key, hash: r.hash }));
  return { key: `${JOURNAL_PREFIX}${index}`, bytes: new TextEncoder().encode(JSON.stringify(entries)) };
}

export interface FinishedRecords {
  /** Hash of every record present and journaled, by key. */
  hashes: Map<string, string>;
  /** A journal number no journal uses yet. */
  nextJournal: number;
}

/** What an earlier import of the same plan already finished. */
export async function finishedRecords(backend: StoreBackend, modelId: string, records: readonly RecordEntry[]): Promise<FinishedRecords> {
  const keys = await storageCall(modelId, 'listing records', () => backend.listRecordKeys(modelId));
  const present = new Set(keys);
  const expected = new Set(records.map((r) => r.key));
  const hashes = new Map<string, string>();
  let nextJournal = 0;
  for (const key of keys.filter((k) => k.startsWith(JOURNAL_PREFIX))) {
    const index = Number(key.slice(JOURNAL_PREFIX.length));
    if (Number.isSafeInteger(index)) nextJournal = Math.max(nextJournal, index + 1);
    const bytes = await storageCall(modelId, `reading ${key}`, () => backend.getRecord(modelId, key));
    for (const entry of parseJournal(bytes)) {
      if (present.has(entry.key) && expected.has(entry.key)) hashes.set(entry.key, entry.hash);
    }
  }
  return { hashes, nextJournal };
}

/** A journal that cannot be parsed vouches for nothing. */
function parseJournal(bytes: Uint8Array | undefined): JournalEntry[] {
  if (bytes === undefined) return [];
  try {
    const entries: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (!Array.isArray(entries)) return [];
    return entries.filter((e): e is JournalEntry => typeof e?.key === 'string' && typeof e?.hash === 'string');
  } catch {
    return [];
  }
}

/** Deletes the model's journals; best effort (leftovers are a few bytes that deleting the model removes). */
export async function removeJournals(backend: StoreBackend, modelId: string): Promise<void> {
  try {
    const keys = await backend.listRecordKeys(modelId);
    await backend.deleteRecords(modelId, keys.filter((k) => k.startsWith(JOURNAL_PREFIX)));
  } catch {
    // The model is committed and usable either way.
  }
}
