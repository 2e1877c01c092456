/**
 * The default model's tokenizer as GGUF metadata: a byte-level BPE vocabulary
 * (the `gpt2` tokenizer model with the qwen2 pre-tokenizer, as src/text and
 * llama.cpp read it) plus one control token that separates documents.
 */
import { readFileSync } from 'node:fs';
import { readGguf } from '../../src/gguf/reader';
import { sourceFromBytes } from '../../src/gguf/source';
import type { GgufKv } from '../../src/gguf/types';
import { kvBool, kvI32Array, kvString, kvStringArray, kvU32, writeGguf } from '../../src/gguf/writer';
import { Tokenizer } from '../../src/text/tokenizer';

export const END_OF_TEXT = '<|endoftext|>';

/** A completion model: the prompt is the messages' contents, one paragraph each. */
export const COMPLETION_TEMPLATE =
  "{%- for message in messages %}{{ message['content'] }}{%- if not loop.last %}{{ '\\n\\n' }}{%- endif %}{%- endfor %}";

export interface VocabFile {
  /** Byte tokens, then merged tokens, then END_OF_TEXT. */
  tokens: string[];
  merges: string[];
}

export function readVocabFile(path: string): VocabFile {
  return JSON.parse(readFileSync(path, 'utf8')) as VocabFile;
}

export function tokenizerMetadata(v: VocabFile): GgufKv[] {
  const eot = v.tokens.indexOf(END_OF_TEXT);
  return [
    kvString('tokenizer.ggml.model', 'gpt2'),
    kvString('tokenizer.ggml.pre', 'qwen2'),
    kvStringArray('tokenizer.ggml.tokens', v.tokens),
    // 1 = normal, 3 = control (llama_token_type)
    kvI32Array('tokenizer.ggml.token_type', v.tokens.map((_, i) => (i === eot ? 3 : 1))),
    kvStringArray('tokenizer.ggml.merges', v.merges),
    kvU32('tokenizer.ggml.bos_token_id', eot),
    kvU32('tokenizer.ggml.eos_token_id', eot),
    kvU32('tokenizer.ggml.padding_token_id', eot),
    kvBool('tokenizer.ggml.add_bos_token', false),
    kvString('tokenizer.chat_template', COMPLETION_TEMPLATE),
  ];
}

/** The project's runtime tokenizer over this vocabulary (through a tensor-less GGUF). */
export async function tokenizerOf(v: VocabFile): Promise<Tokenizer> {
  const bytes = writeGguf({ metadata: [kvString('general.architecture', 'tokenizer'), ...tokenizerMetadata(v)], tensors: [] });
  return Tokenizer.fromGguf(await readGguf(sourceFromBytes(bytes)));
}
