/**
 * Chat templates render a conversation as the prompt text each model family
 * expects: the generated model's ChatML template exactly, and real templates
 * shipped with models (llama.cpp's collection) by their key markers.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { GgufFile, GgufKv } from '../../../src/gguf/types';
import { kvString, kvStringArray, kvU32 } from '../../../src/gguf/writer';
import { ChatTemplate } from '../../../src/text/chat-template';
import type { ChatMessage } from '../../../src/text/chat-template';
import { NoChatTemplateError, TextError } from '../../../src/text/errors';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const TEMPLATES_DIR = fileURLToPath(new URL('../../../tools/reference/llama.cpp/models/templates/', import.meta.url));

function realTemplate(name: string, specials = { bosToken: '<s>', eosToken: '</s>' }): ChatTemplate {
  return new ChatTemplate(readFileSync(`${TEMPLATES_DIR}${name}.jinja`, 'utf8'), specials);
}

function ggufOf(metadata: GgufKv[]): GgufFile {
  return { version: 3, alignment: 32, metadata: new Map(metadata.map((kv) => [kv.key, kv])), tensors: [], dataOffset: 0, fileBytes: 0 };
}

const CONVERSATION: ChatMessage[] = [
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: 'Four.' },
  { role: 'user', content: 'And 3+3?' },
];

describe('the generated model', () => {
  it('renders its ChatML template exactly, with and without the generation prompt', async () => {
    const file = await readGguf(sourceFromBytes(makeTinyModel({ arch: 'qwen2moe' })));
    const template = ChatTemplate.fromGguf(file);
    const turns =
      '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
      '<|im_start|>assistant\nFour.<|im_end|>\n' +
      '<|im_start|>user\nAnd 3+3?<|im_end|>\n';
    expect(template.render(CONVERSATION)).toBe(`${turns}<|im_start|>assistant\n`);
    expect(template.render(CONVERSATION, { addGenerationPrompt: false })).toBe(turns);
  });
});

describe('real chat templates, two-turn conversation', () => {
  it('Qwen3: ChatML turns, a system turn, the assistant turn opened', () => {
    const text = realTemplate('Qwen-Qwen3-0.6B').render([{ role: 'system', content: 'Be terse.' }, ...CONVERSATION]);
    expect(text.startsWith('<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>')).toBe(true);
    expect(text).toContain('<|im_start|>assistant\nFour.<|im_end|>');
    expect(text.endsWith('<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n')).toBe(true);
  });

  it('Qwen3 with thinking disabled: an empty think block opens the answer', () => {
    const text = realTemplate('Qwen-Qwen3-0.6B').render(CONVERSATION, { variables: { enable_thinking: false } });
    expect(text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
  });

  it('Mistral: [INST] blocks, BOS at the start, EOS after each answer', () => {
    const text = realTemplate('mistralai-Mistral-Nemo-Instruct-2407').render(CONVERSATION);
    expect(text).toBe('<s>[INST]What is 2+2?[/INST]Four.</s>[INST]And 3+3?[/INST]');
  });

  it('gpt-oss (harmony): system and developer headers, channels, the assistant turn opened', () => {
    const text = realTemplate('openai-gpt-oss-120b').render([{ role: 'system', content: 'Be terse.' }, ...CONVERSATION], {
      variables: { reasoning_effort: 'low' },
    });
    expect(text.startsWith('<|start|>system<|message|>')).toBe(true);
    expect(text).toContain('Reasoning: low');
    expect(text).toContain('<|start|>developer<|message|># Instructions\n\nBe terse.');
    expect(text).toContain('<|start|>user<|message|>What is 2+2?<|end|>');
    expect(text).toContain('<|start|>assistant<|channel|>final<|message|>Four.<|end|>');
    expect(text.endsWith('<|start|>user<|message|>And 3+3?<|end|><|start|>assistant')).toBe(true);
  });

  it('Llama 3.1: header blocks ended by <|eot_id|>, after the BOS text it is given', () => {
    const text = realTemplate('meta-llama-Llama-3.1-8B-Instruct', { bosToken: '<|begin_of_text|>', eosToken: '' }).render(CONVERSATION);
    expect(text.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>')).toBe(true);
    expect(text).toContain('<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>');
    expect(text.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
  });
});

describe('templates from GGUF metadata', () => {
  const tokens = ['<unk>', '<s>', '</s>'];
  const base = [
    kvStringArray('tokenizer.ggml.tokens', tokens),
    kvU32('tokenizer.ggml.bos_token_id', 1),
    kvU32('tokenizer.ggml.eos_token_id', 2),
  ];

  it('takes BOS and EOS texts from the vocabulary', () => {
    const file = ggufOf([...base, kvString('tokenizer.chat_template', '{{ bos_token }}{{ messages[0].content }}{{ eos_token }}')]);
    expect(ChatTemplate.fromGguf(file).render([{ role: 'user', content: 'hi' }])).toBe('<s>hi</s>');
  });

  it('reads a named template variant', () => {
    const file = ggufOf([
      ...base,
      kvString('tokenizer.chat_template', 'default'),
      kvStringArray('tokenizer.chat_templates', ['tool_use']),
      kvString('tokenizer.chat_template.tool_use', 'tools:{{ tools | length }}'),
    ]);
    expect(ChatTemplate.fromGguf(file, 'tool_use').render([], { tools: [{ name: 'a' }, { name: 'b' }] })).toBe('tools:2');
    expect(() => ChatTemplate.fromGguf(file, 'rag')).toThrow(/named 'rag'.*tool_use/);
  });

  it('throws NoChatTemplateError when the model has none', () => {
    let error: unknown;
    try {
      ChatTemplate.fromGguf(ggufOf(base));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NoChatTemplateError);
    expect(error).toMatchObject({ code: 'NO_CHAT_TEMPLATE' });
    expect(String(error)).toContain('tokenizer.chat_template');
  });

  it('reports templates that fail to parse or that raise', () => {
    expect(() => new ChatTemplate('{% if %}')).toThrow(TextError);
    // Gemma 2 refuses system messages through raise_exception.
    const gemma = realTemplate('google-gemma-2-2b-it');
    expect(() => gemma.render([{ role: 'system', content: 'x' }, ...CONVERSATION])).toThrow(/System role not supported/);
    expect(() => gemma.render([{ role: 'system', content: 'x' }])).toThrow(expect.objectContaining({ code: 'TEMPLATE_ERROR' }));
  });
});
