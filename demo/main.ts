/** Demo page: inspects a user-chosen GGUF file in the engine worker. */
import { spawnWorker } from '../src/api/worker-client';

const worker = spawnWorker();
const out = document.getElementById('out')!;
const adapter = document.getElementById('adapter')!;

function row(label: string, value: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const text of [label, value]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

worker.api.adapter().then(
  (a) => (adapter.textContent = `WebGPU adapter: ${a.vendor} ${a.architecture} ${a.description} (${a.features.join(', ') || 'no optional features'})`),
  (err: Error) => {
    adapter.textContent = `WebGPU unavailable: ${err.message}`;
    adapter.className = 'error';
  },
);

document.getElementById('file')!.addEventListener('change', async (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (!file) return;
  out.textContent = `Reading ${file.name}...`;
  try {
    const s = await worker.api.inspect(file);
    const table = document.createElement('table');
    table.append(
      row('architecture', s.architecture ?? '(none)'),
      row('name', s.name ?? '(none)'),
      row('GGUF version', String(s.version)),
      row('size', `${(s.fileBytes / 2 ** 20).toFixed(1)} MiB`),
      row('metadata keys', String(s.metadataKeys)),
      row('tensors', String(s.tensorCount)),
      ...Object.entries(s.bytesByType).map(([t, b]) => row(`${t} data`, `${(b / 2 ** 20).toFixed(1)} MiB`)),
    );
    out.replaceChildren(table);
  } catch (err) {
    out.textContent = `Could not read ${file.name}: ${(err as Error).message}`;
    out.className = 'error';
  }
});
