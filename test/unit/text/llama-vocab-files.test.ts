/**
 * llama.cpp's own tokenizer test data: real vocabulary-only GGUF files with
 * input strings (.inp, separated by a marker line) and the ids llama.cpp
 * produces for them (.out, one line of space-separated ids per input). Every
 * vocabulary whose tokenizer we support must reproduce every line (and, for
 * some, the end-of-generation set llama.cpp derives); the others must be
 * refused with UnsupportedTokenizerError. The files come from the
 * llama.cpp source bundled with the reference (scripts/prepare-reference.sh).
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromPath } from '../../../src/gguf/source-node';
import { UnsupportedTokenizerError } from '../../../src/text/errors';
import { Tokenizer } from '../../../src/text/tokenizer';

const MODELS_DIR = fileURLToPath(new URL('../../../tools/reference/llama.cpp/models', import.meta.url));
const INPUT_SEPARATOR = '\n__ggml_vocab_test__\n';

/** End-of-generation ids as llama.cpp reports them (llama_vocab_is_eog over the whole vocabulary). */
const EXPECTED_EOG: Record<string, { ids: number[]; eot?: number }> = {
  'ggml-vocab-qwen2.gguf': { ids: [128247, 151643, 151645], eot: 151645 }, // </s>, <|endoftext|>, <|im_end|>
  'ggml-vocab-llama-bpe.gguf': { ids: [128001, 128009], eot: 128009 }, // <|end_of_text|>, <|eot_id|>
  'ggml-vocab-phi-3.gguf': { ids: [2, 32000, 32007], eot: 32007 }, // </s>, <|endoftext|>, <|end|>
  'ggml-vocab-gemma-4.gguf': { ids: [1, 50, 106] }, // <eos>, <|tool_response>, <turn|>
  'ggml-vocab-deepseek-llm.gguf': { ids: [100001], eot: 100001 }, // <｜end▁of▁sentence｜>
};

/** Vocabularies with test data whose tokenizer kind we do not implement (WordPiece). */
const EXPECTED_UNSUPPORTED = ['ggml-vocab-bert-bge.gguf'];

const vocabFiles = existsSync(MODELS_DIR)
  ? readdirSync(MODELS_DIR).filter((name) => name.endsWith('.gguf') && existsSync(join(MODELS_DIR, `${name}.inp`)))
  : [];

function readCases(name: string): Array<{ text: string; ids: number[] }> {
  const inputs = readFileSync(join(MODELS_DIR, `${name}.inp`), 'utf8').split(INPUT_SEPARATOR);
  // The file ends with a separator: the piece after it is not a test.
  if (inputs[inputs.length - 1] === '') inputs.pop();
  const outputs = readFileSync(join(MODELS_DIR, `${name}.out`), 'utf8').split('\n');
  return inputs.map((text, i) => {
    const line = outputs[i].trim();
    return { text, ids: line === '' ? [] : line.split(' ').map(Number) };
  });
}

async function loadTokenizer(name: string): Promise<Tokenizer> {
  const source = await sourceFromPath(join(MODELS_DIR, name));
  try {
    return Tokenizer.fromGguf(await readGguf(source));
  } finally {
    await source.close();
  }
}

describe("llama.cpp's tokenizer test data", () => {
  it('is present (run scripts/prepare-reference.sh)', () => {
    expect(vocabFiles.length, `${MODELS_DIR} has no vocabularies with .inp/.out test data`).toBeGreaterThanOrEqual(15);
  });

  for (const name of vocabFiles.filter((n) => EXPECTED_UNSUPPORTED.includes(n))) {
    it(`${name}: is refused as unsupported`, async () => {
      await expect(loadTokenizer(name)).rejects.toThrow(UnsupportedTokenizerError);
    });
  }

  for (const name of vocabFiles.filter((n) => !EXPECTED_UNSUPPORTED.includes(n))) {
    it(`${name}: tokenizes every test string as llama.cpp does and decodes it back`, async () => {
      const tok = await loadTokenizer(name);
      const cases = readCases(name);
      expect(cases.length).toBeGreaterThan(40);
      const mismatches = cases.filter(({ text, ids }) => JSON.stringify(tok.encode(text)) !== JSON.stringify(ids));
      expect(mismatches.map((c) => c.text)).toEqual([]);
      const notRoundTripped = cases.filter(({ text }) => tok.decode(tok.encode(text)) !== text);
      expect(notRoundTripped.map((c) => c.text)).toEqual([]);
      const eog = EXPECTED_EOG[name];
      if (eog) {
        expect(tok.eogIds()).toEqual(eog.ids);
        expect(tok.eot).toBe(eog.eot);
      }
    }, 60_000);
  }
});
