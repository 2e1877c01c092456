/** `webmoe inspect`: print a GGUF file's metadata and tensor table. */
import { readGguf } from '../gguf/reader';
import { sourceFromPath } from '../gguf/source-node';
import { GgufValueType, type GgufKv, type GgufValue } from '../gguf/types';
import { ggmlTypeName } from '../quant/formats';
import { CliError, parseCommand } from './args';

const HELP = `usage: webmoe inspect <file.gguf> [--tensors]

  --tensors   also list every tensor (name, type, dims, bytes)`;

/** The shortest decimal that reads back as the same f32 (1e-6, not 9.999999974752427e-7). */
export function formatF32(x: number): string {
  for (let digits = 1; digits < 9; digits++) {
    const s = x.toPrecision(digits);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(x);
}

/** Metadata values short enough for one line: long arrays show their length and first items. */
export function formatValue(value: GgufValue, type?: GgufValueType): string {
  if (typeof value === 'object') {
    const shown = value.items.slice(0, 4).map((v) => formatValue(v, value.itemType)).join(', ');
    return value.items.length > 4 ? `[${shown}, ... (${value.items.length} items)]` : `[${shown}]`;
  }
  if (typeof value === 'string') {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}..."` : s;
  }
  if (type === GgufValueType.FLOAT32 && typeof value === 'number') return formatF32(value);
  return String(value);
}

function formatKv(kv: GgufKv): string {
  return `${kv.key} = ${formatValue(kv.value, kv.type)}`;
}

export async function inspectCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, { tensors: { type: 'boolean' } }, HELP);
  if (!parsed) return;
  const path = parsed.positionals[0];
  if (!path) throw new CliError(`a GGUF file path is required\n\n${HELP}`);
  const source = await sourceFromPath(path);
  try {
    const file = await readGguf(source);
    console.log(`${path}: GGUF v${file.version}, ${file.fileBytes} bytes, ${file.metadata.size} metadata keys, ` +
      `${file.tensors.length} tensors, data at ${file.dataOffset} (alignment ${file.alignment})`);
    for (const kv of file.metadata.values()) console.log(`  ${formatKv(kv)}`);
    const byType = new Map<string, number>();
    for (const t of file.tensors) byType.set(ggmlTypeName(t.type), (byType.get(ggmlTypeName(t.type)) ?? 0) + t.nBytes);
    console.log('  tensor bytes by type: ' + [...byType].map(([t, b]) => `${t} ${b}`).join(', '));
    if (parsed.values.tensors) {
      for (const t of file.tensors) {
        console.log(`  ${t.name.padEnd(32)} ${ggmlTypeName(t.type).padEnd(6)} [${t.dims.join(', ')}] ${t.nBytes} bytes`);
      }
    }
  } finally {
    await source.close();
  }
}
