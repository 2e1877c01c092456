/**
 * Model ids: the name a model is stored under. They become IndexedDB keys and
 * directory names, so they are limited to a portable alphabet; the default id
 * is derived from the file name or the last segment of a URL.
 */

import { StoreError } from './errors';

const MAX_ID_CHARS = 128;
const VALID_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Throws BAD_MODEL_ID unless `id` is 1..128 characters of [A-Za-z0-9._-] starting with a letter or digit. */
export function checkModelId(id: string): void {
  if (id.length > MAX_ID_CHARS || !VALID_ID.test(id)) {
    throw new StoreError('BAD_MODEL_ID',
      `${JSON.stringify(id.slice(0, MAX_ID_CHARS + 1))} cannot name a model: use 1 to ${MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ - starting with a letter or digit`,
      { modelId: id });
  }
}

/** A valid id from a file path or URL: its last segment without query, odd characters replaced by '_'. */
export function modelIdFromName(name: string): string {
  const withoutQuery = name.replace(/[?#].*$/, '');
  const segment = withoutQuery.split(/[/\\]/).filter((s) => s.length > 0).pop() ?? '';
  let decoded = segment;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    // Not percent-encoded after all: keep it as it is.
  }
  const id = decoded.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '').slice(0, MAX_ID_CHARS);
  return id.length > 0 ? id : 'model';
}
