/**
 * The tokenizer against llama.cpp itself (CPU build through node-llama-cpp)
 * on generated models: the same ids for text of every kind (accents, CJK,
 * emoji, white-space runs, newlines, digits, special tokens), with and
 * without special-token parsing.
 *
 * The generated vocabulary has too few merges for pre-tokenizer mistakes to
 * show, so the pre-tokenizers without llama.cpp test files of their own are
 * checked on a generated model carrying the real GPT-2 vocabulary (50k
 * merges) relabelled with each of them.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { getStringArray } from '../../../src/gguf/metadata';
import { readGguf, tensorDataRange } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { sourceFromPath } from '../../../src/gguf/source-node';
import type { GgufFile } from '../../../src/gguf/types';
import { GgmlType } from '../../../src/quant/formats';
import { kvString, writeGguf } from '../../../src/gguf/writer';
import { Tokenizer } from '../../../src/text/tokenizer';
import { makeTinyModel } from '../../../src/tiny/make-tiny';
import { loadReference } from '../../../tools/reference/llama-cpp';

const TEXTS = [
  'The river ran past the old mill.',
  "Don't stop; it's 5 o'clock, WE'LL see. I'M here, you'RE late, they'VE gone.",
  'Café, naïve résumé, Ångström, ÉCOLE, straße, e\u0301 with a combining accent',
  '中文字符和日本語のテキスト、ひらがな カタカナ 한국어',
  '😀 👍🏽 👨‍👩‍👧 🇫🇷 ❤️',
  '   leading spaces',
  'trailing spaces   ',
  'a  b   c    d\t\te',
  'line one\nline two\r\nline three\n\n\n \n',
  '3.14159 12345678 1,000,000 0x1F 2024-06-01',
  'camelCase HTTPServer snake_case x=y+1; if (a) { return b; }',
  '\u00a0no-break\u3000ideographic\u2028line\u0085next\ufeffbom',
  '<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n',
  '<|endoftext|>text<|im_end|><|im_start|>',
  '',
];

/** Pre-tokenizers checked on the GPT-2 vocabulary (llama.cpp's test files cover the others). */
const RELABELLED = ['gpt-4o', 'deepseek-v3', 'tekken', 'bailingmoe', 'glm4'];
const GPT2_VOCAB = fileURLToPath(new URL('../../../tools/reference/llama.cpp/models/ggml-vocab-gpt-2.gguf', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'webmoe-text-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The model with the vocabulary of `vocab` labelled with pre-tokenizer `pre`:
 * tokenizer metadata replaced, embedding and output matrices resized (zeros).
 */
async function withVocabulary(bytes: Uint8Array, vocab: GgufFile, pre: string): Promise<Uint8Array> {
  const file = await readGguf(sourceFromBytes(bytes));
  const ownVocabSize = getStringArray(file, 'tokenizer.ggml.tokens').length;
  const newVocabSize = getStringArray(vocab, 'tokenizer.ggml.tokens').length;
  const metadata = [
    ...[...file.metadata.values()].filter((kv) => !kv.key.startsWith('tokenizer.')),
    ...[...vocab.metadata.values()].filter((kv) => kv.key.startsWith('tokenizer.ggml.') && kv.key !== 'tokenizer.ggml.pre'),
    kvString('tokenizer.ggml.pre', pre),
  ];
  const tensors = file.tensors.map((t) => {
    if (t.dims[1] === ownVocabSize) {
      const dims = [t.dims[0], newVocabSize];
      return { name: t.name, type: GgmlType.F32, dims, data: new Uint8Array(dims[0] * dims[1] * 4) };
    }
    const { offset, length } = tensorDataRange(file, t);
    return { name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(offset, offset + length) };
  });
  return writeGguf({ version: 3, alignment: file.alignment, metadata, tensors });
}

async function compareWithLlamaCpp(bytes: Uint8Array, label: string): Promise<void> {
  const path = join(dir, `${label}.gguf`);
  writeFileSync(path, bytes);
  const tok = Tokenizer.fromGguf(await readGguf(sourceFromBytes(bytes)));
  const ref = await loadReference(path, 64);
  try {
    for (const parseSpecial of [false, true]) {
      for (const text of TEXTS) {
        expect(tok.encode(text, { parseSpecial }), `${label} ${JSON.stringify(text)} parseSpecial=${parseSpecial}`).toEqual(
          ref.tokenize(text, parseSpecial),
        );
      }
    }
  } finally {
    await ref.dispose();
  }
}

describe('tokenization identical to llama.cpp on a generated model', () => {
  let model: Uint8Array;
  beforeAll(() => {
    model = makeTinyModel({ arch: 'qwen2moe' });
  });

  it('qwen2 byte-level BPE (as generated): same ids for every text, with and without special tokens', async () => {
    await compareWithLlamaCpp(model, 'qwen2');
  }, 60_000);

  it('parses special tokens only when asked, and decodes every text back unchanged', async () => {
    const tok = Tokenizer.fromGguf(await readGguf(sourceFromBytes(model)));
    const imStart = tok.tokenId('<|im_start|>')!;
    expect(tok.encode(TEXTS[12], { parseSpecial: true })[0]).toBe(imStart);
    expect(tok.encode(TEXTS[12])).not.toContain(imStart);
    for (const text of TEXTS) {
      expect(tok.decode(tok.encode(text))).toBe(text);
      expect(tok.decode(tok.encode(text, { parseSpecial: true }))).toBe(text);
    }
  });

  for (const pre of RELABELLED) {
    it(`GPT-2 vocabulary labelled '${pre}': same ids for every text`, async () => {
      const source = await sourceFromPath(GPT2_VOCAB);
      const vocab = await readGguf(source);
      await source.close();
      await compareWithLlamaCpp(await withVocabulary(model, vocab, pre), pre);
    }, 60_000);
  }
});
