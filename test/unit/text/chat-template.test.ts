/**
 * Chat templates render a conversation as the prompt text each model family
 * expects: the generated model's ChatML template exactly; every template in
 * llama.cpp's collection with a system message and three turns (each message
 * present once, in order, the system text folded into the first user turn
 * where the template has no system role); a few well-known templates exactly,
 * as worked out by reading them; the renderer's Jinja against outputs of
 * Python's Jinja 3.1 (configured as Hugging Face runs templates); its limits.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import type { GgufFile, GgufKv } from '../../../src/gguf/types';
import { kvString, kvStringArray, kvU32 } from '../../../src/gguf/writer';
import { ChatTemplate } from '../../../src/text/chat-template';
import type { ChatMessage, ChatRenderOptions } from '../../../src/text/chat-template';
import { ChatTemplateError, NoChatTemplateError, TextError } from '../../../src/text/errors';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const TEMPLATES_DIR = fileURLToPath(new URL('../../../tools/reference/llama.cpp/models/templates/', import.meta.url));
const TEMPLATE_NAMES = readdirSync(TEMPLATES_DIR)
  .filter((f) => f.endsWith('.jinja'))
  .map((f) => f.slice(0, -'.jinja'.length))
  .sort();

function realTemplate(name: string, specials = { bosToken: '<s>', eosToken: '</s>' }): ChatTemplate {
  return new ChatTemplate(readFileSync(`${TEMPLATES_DIR}${name}.jinja`, 'utf8'), specials);
}

function ggufOf(metadata: GgufKv[]): GgufFile {
  return { version: 3, alignment: 32, metadata: new Map(metadata.map((kv) => [kv.key, kv])), tensors: [], dataOffset: 0, fileBytes: 0 };
}

/** The error `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const CONVERSATION: ChatMessage[] = [
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: 'Four.' },
  { role: 'user', content: 'And 3+3?' },
];

/** A system message and three turns: three user messages, two answers between them. */
const THREE_TURNS: ChatMessage[] = [
  { role: 'system', content: 'Be terse.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: 'Four.' },
  { role: 'user', content: 'And 3+3?' },
  { role: 'assistant', content: 'Six.' },
  { role: 'user', content: 'And 4+4?' },
];
const NOW = new Date(2024, 6, 26, 10, 30);

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

describe("every template in llama.cpp's collection: a system message and three turns", () => {
  /** Templates with no system role: they refuse a system message, so its text goes first in the first user turn. */
  const FOLDS_SYSTEM = ['google-gemma-2-2b-it'];
  /** Templates that write the system text before a later user turn (the message index it precedes). */
  const SYSTEM_BEFORE: Record<string, number> = { 'mistralai-Mistral-Nemo-Instruct-2407': 5 };
  /** Templates that cannot take this conversation at all, with the reason their error must give. None remain. */
  const CANNOT_TAKE_IT: Record<string, RegExp> = {};
  const MARKED = THREE_TURNS.map((m, i) => ({ ...m, content: `${m.role.toUpperCase()}-${i} ${m.content}` }));

  it('has the collection and lists only templates in it', () => {
    expect(TEMPLATE_NAMES.length).toBeGreaterThanOrEqual(70);
    for (const name of [...FOLDS_SYSTEM, ...Object.keys(SYSTEM_BEFORE), ...Object.keys(CANNOT_TAKE_IT)]) expect(TEMPLATE_NAMES).toContain(name);
  });

  it.each(TEMPLATE_NAMES)('%s', (name) => {
    const template = realTemplate(name);
    if (name in CANNOT_TAKE_IT) {
      const error = thrown(() => template.render(MARKED));
      expect(error).toBeInstanceOf(ChatTemplateError);
      expect(error).toMatchObject({ failure: 'refused', refusal: expect.stringMatching(CANNOT_TAKE_IT[name]) });
      return;
    }
    const text = template.render(MARKED);
    const at = MARKED.map((m) => text.indexOf(m.content));
    for (const [i, m] of MARKED.entries()) expect(text.split(m.content), `message ${i} appears once`).toHaveLength(2);
    const turns = at.slice(1);
    expect(turns, 'the turns are in order').toEqual([...turns].sort((a, b) => a - b));
    expect(at[0], 'the system text comes before its turn').toBeLessThan(at[SYSTEM_BEFORE[name] ?? 1]);
    expect(at[0], 'the system text follows the turn before').toBeGreaterThan(SYSTEM_BEFORE[name] ? at[SYSTEM_BEFORE[name] - 1] : -1);
    if (FOLDS_SYSTEM.includes(name)) {
      expect(text).toContain(`${MARKED[0].content}\n\n${MARKED[1].content}`);
      expect(thrown(() => template.render(MARKED, { foldSystem: false }))).toMatchObject({ failure: 'refused' });
    } else {
      expect(template.render(MARKED, { foldSystem: false })).toBe(text);
    }
  });
});

describe('well-known templates, exactly', () => {
  const render = (name: string, options: ChatRenderOptions = {}, specials?: { bosToken: string; eosToken: string }) =>
    realTemplate(name, specials).render(THREE_TURNS, { now: NOW, ...options });

  it('Qwen3 (ChatML): <|im_start|>role ... <|im_end|> turns, the assistant turn opened', () => {
    expect(render('Qwen-Qwen3-0.6B')).toBe(
      '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\nFour.<|im_end|>\n' +
        '<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\nSix.<|im_end|>\n<|im_start|>user\nAnd 4+4?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it("Llama 3.1: a system header with today's date_string, then header blocks ended by <|eot_id|>", () => {
    const specials = { bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' };
    const turn = (role: string, content: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n${content}<|eot_id|>`;
    expect(render('meta-llama-Llama-3.1-8B-Instruct', { now: new Date(2025, 0, 5) }, specials)).toBe(
      '<|begin_of_text|>' +
        turn('system', 'Cutting Knowledge Date: December 2023\nToday Date: 05 Jan 2025\n\nBe terse.') +
        turn('user', 'What is 2+2?') + turn('assistant', 'Four.') + turn('user', 'And 3+3?') + turn('assistant', 'Six.') + turn('user', 'And 4+4?') +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('Mistral Nemo: [INST] blocks, EOS after each answer, the system text in the last [INST]', () => {
    expect(render('mistralai-Mistral-Nemo-Instruct-2407')).toBe('<s>[INST]What is 2+2?[/INST]Four.</s>[INST]And 3+3?[/INST]Six.</s>[INST]Be terse.\n\nAnd 4+4?[/INST]');
  });

  it('Gemma 2: no system role, so the system text opens the first user turn; the assistant is "model"', () => {
    expect(render('google-gemma-2-2b-it', {}, { bosToken: '<bos>', eosToken: '<eos>' })).toBe(
      '<bos><start_of_turn>user\nBe terse.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\nFour.<end_of_turn>\n' +
        '<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\nSix.<end_of_turn>\n<start_of_turn>user\nAnd 4+4?<end_of_turn>\n<start_of_turn>model\n',
    );
  });

  it('DeepSeek R1 (distilled): the system text after BOS, <｜User｜>/<｜Assistant｜> turns, thinking closed unless enabled', () => {
    const specials = { bosToken: '<｜begin▁of▁sentence｜>', eosToken: '<｜end▁of▁sentence｜>' };
    const turns =
      '<｜begin▁of▁sentence｜>Be terse.<｜User｜>What is 2+2?<｜Assistant｜>Four.<｜end▁of▁sentence｜><｜User｜>And 3+3?<｜Assistant｜>Six.<｜end▁of▁sentence｜>' +
      '<｜User｜>And 4+4?<｜Assistant｜><think>\n';
    expect(render('deepseek-ai-DeepSeek-R1-Distill-Qwen-32B', {}, specials)).toBe(`${turns}</think>`);
    expect(render('deepseek-ai-DeepSeek-R1-Distill-Qwen-32B', { variables: { enable_thinking: true } }, specials)).toBe(turns);
  });

  it('DeepSeek V3.1: empty think blocks before each answer in non-thinking mode', () => {
    expect(render('deepseek-ai-DeepSeek-V3.1', {}, { bosToken: '<｜begin▁of▁sentence｜>', eosToken: '<｜end▁of▁sentence｜>' })).toBe(
      '<｜begin▁of▁sentence｜>Be terse.<｜User｜>What is 2+2?<｜Assistant｜><think></think>Four.<｜end▁of▁sentence｜>' +
        '<｜User｜>And 3+3?<｜Assistant｜><think></think>Six.<｜end▁of▁sentence｜><｜User｜>And 4+4?<｜Assistant｜><think></think>',
    );
  });

  it('Qwen3 with thinking disabled: an empty think block opens the answer', () => {
    const text = realTemplate('Qwen-Qwen3-0.6B').render(CONVERSATION, { variables: { enable_thinking: false } });
    expect(text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe(true);
  });

  it('gpt-oss (harmony): system and developer headers, channels, the date from strftime_now', () => {
    const text = realTemplate('openai-gpt-oss-120b').render([{ role: 'system', content: 'Be terse.' }, ...CONVERSATION], {
      now: NOW,
      variables: { reasoning_effort: 'low' },
    });
    expect(text.startsWith('<|start|>system<|message|>')).toBe(true);
    expect(text).toContain('Current date: 2024-07-26');
    expect(text).toContain('Reasoning: low');
    expect(text).toContain('<|start|>developer<|message|># Instructions\n\nBe terse.');
    expect(text).toContain('<|start|>assistant<|channel|>final<|message|>Four.<|end|>');
    expect(text.endsWith('<|start|>user<|message|>And 3+3?<|end|><|start|>assistant')).toBe(true);
  });

  it('firefunction v2: the datetime and functions llama.cpp gives it', () => {
    const text = render('fireworks-ai-llama-3-firefunction-v2');
    expect(text).toContain('Available functions as JSON spec:\n\nToday is Jul 26 2024.<|eot_id|>');
  });
});

describe('refusals', () => {
  it('name the template\'s own reason when folding the system message does not help', () => {
    const gemma = realTemplate('google-gemma-2-2b-it');
    const twoUsers: ChatMessage[] = [{ role: 'system', content: 'x' }, { role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
    const error = thrown(() => gemma.render(twoUsers));
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ code: 'TEMPLATE_ERROR', failure: 'refused', refusal: 'System role not supported' });
    expect(String(error)).toMatch(/refuses this conversation: System role not supported \(and with the system message folded .*: Conversation roles must alternate/);
  });

  it('are not retried when folding is turned off', () => {
    const error = thrown(() => realTemplate('google-gemma-2-2b-it').render(THREE_TURNS, { foldSystem: false }));
    expect(error).toMatchObject({ failure: 'refused', refusal: 'System role not supported' });
    expect(String(error)).not.toContain('folded');
  });

  it('a template that filters `none` tools gets an empty list on a second try', () => {
    const template = new ChatTemplate('{% if tools is not defined %}{% set tools = none %}{% endif %}{% for t in tools %}{{ t }}{% endfor %}ok');
    expect(template.render([])).toBe('ok');
    expect(template.render([], { tools: ['a'] })).toBe('aok');
  });

  it('parse and render failures say what and where', () => {
    expect(thrown(() => new ChatTemplate('{% if %}'))).toMatchObject({ failure: 'parse' });
    expect(() => new ChatTemplate('a\n{% for x in y %}')).toThrow(/missing \{% endfor %\}/);
    expect(thrown(() => new ChatTemplate('\n\n{{ messages[0].content.text.more }}').render([{ role: 'user', content: 'hi' }]))).toMatchObject({
      failure: 'render',
      message: expect.stringMatching(/'str object' has no attribute 'text'.*line 3/),
    });
    expect(thrown(() => new ChatTemplate('{{ 1 + "a" }}').render([]))).toBeInstanceOf(TextError);
  });
});

describe('the renderer against Python Jinja 3.1 (trim_blocks, lstrip_blocks, as Hugging Face configures it)', () => {
  /** [template, Python's output]; the variables are msgs (three dicts with r = a, b, c) and d ({a: 1, b: 2}). */
  const CASES: [string, string][] = [
    ["{% for i in range(3) %}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.revindex }}{% endfor %}", "1TrueFalse32FalseFalse23FalseTrue1"],
    ["{% for i in [1,2,3] %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% if i == 3 %}{% break %}{% endif %}{% endfor %}", "13"],
    ["{% for x in [] %}a{% else %}empty{% endfor %}", "empty"],
    ["{% for x in [1,2,3,4] if x is odd %}{{ x }}{{ loop.length }}{% endfor %}", "1232"],
    ["{% set x = 1 %}{% for i in range(2) %}{% set x = x + 10 %}{{ x }}{% endfor %}{{ x }}", "11111"],
    ["{% set ns = namespace(x=1) %}{% for i in range(3) %}{% set ns.x = ns.x * 2 %}{% endfor %}{{ ns.x }}", "8"],
    ["{% if true %}{% set y = 5 %}{% endif %}{{ y }}", "5"],
    ["{% macro m(a, b='B', c=none) %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(1, c=3) }}", "[1BNone][12None][1B3]"],
    ["{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(4) }}", "4321"],
    ["{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ 'a.b.c'.rsplit('.', 1) }}", "['a', 'b', '', 'c']['a', 'b']['a', 'b c']['a.b', 'c']"],
    ["{{ '  xx  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|", "xx|hi|a|a|"],
    ["{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}{{ 'abc'.replace('b', 'B') }}{{ 'abc'.replace('', '-') }}", "TrueTrueaBc-a-b-c-"],
    ["{{ '{} and {}'.format(1, 'two') }}{{ '{0}{1}{0}'.format('a', 'b') }}{{ '{x}'.format(x=5) }}{{ '{{}}'.format() }}", "1 and twoaba5{}"],
    ["{{ 'hello world'.title() }}{{ 'hELLO'.capitalize() }}{{ 'abc'.upper() }}{{ 'ABC'|lower }}", "Hello WorldHelloABCabc"],
    ["{{ [3,1,2]|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ ['b','A','c']|sort }}{{ [{'a':2},{'a':1}]|sort(attribute='a') }}", "[1, 2, 3][3, 2, 1]['A', 'b', 'c'][{'a': 1}, {'a': 2}]"],
    ["{{ {'b':1,'a':2}|dictsort }}{{ {'b':1,'a':2}.items()|list }}{{ {'b':1,'a':2}|items|list }}", "[('a', 2), ('b', 1)][('b', 1), ('a', 2)][('b', 1), ('a', 2)]"],
    ["{{ [1,2,3]|join(',') }}{{ [{'n':'x'},{'n':'y'}]|map(attribute='n')|join }}{{ ['a','b']|map('upper')|list }}", "1,2,3xy['A', 'B']"],
    ["{{ [1,2,3,4]|select('even')|list }}{{ [1,2,3,4]|reject('even')|list }}{{ [{'t':'a'},{'t':'b'}]|selectattr('t','equalto','a')|list }}", "[2, 4][1, 3][{'t': 'a'}]"],
    ["{{ [1,1,2,'A','a']|unique|list }}{{ [1,2,3]|first }}{{ [1,2,3]|last }}{{ 'abc'|first }}{{ []|first }}", "[1, 2, 'A']13a"],
    ["{{ x|default('d') }}{{ none|default('d') }}{{ ''|default('d', true) }}{{ x is defined }}{{ none is none }}", "dNonedFalseTrue"],
    ["{{ {'a': [1, 2.5, none, true, 'x\"y']}|tojson }}{{ {'a': {}}|tojson(indent=2) }}{{ [1,[2,3]]|tojson(indent=2) }}", "{\"a\": [1, 2.5, null, true, \"x\\\"y\"]}{\n  \"a\": {}\n}[\n  1,\n  [\n    2,\n    3\n  ]\n]"],
    ["{{ 'x'|tojson }}{{ 'é\n\t'|tojson }}{{ {'k': 'v'}|tojson(separators=(',', ':')) }}{{ {'b':1,'a':2}|tojson(sort_keys=true) }}", "\"x\"\"é\\n\\t\"{\"k\":\"v\"}{\"a\": 2, \"b\": 1}"],
    ["{{ 'line1\nline2\n\nline4'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(width='>', blank=true) }}", "line1\n  line2\n\n  line4|  a\n  b|a\n>\n>b"],
    ["{{ '42'|int }}{{ '4.7'|int }}{{ 'x'|int }}{{ 3.9|int }}{{ '2.5'|float }}{{ 7|string }}{{ (7/2) }}{{ 7//2 }}{{ -7//2 }}{{ -7 % 3 }}{{ 2**10 }}", "424032.573.53-421024"],
    ["{{ [1,2,3][1:] }}{{ [1,2,3][::-1] }}{{ 'abcdef'[1:4] }}{{ 'abcdef'[-2:] }}{{ [1,2,3][:-1] }}{{ 'abcdef'[::2] }}{{ [1,2,3,4,5][4:0:-2] }}", "[2, 3][3, 2, 1]bcdef[1, 2]ace[5, 3]"],
    ["{{ 1 in [1,2] }}{{ 'a' in 'cat' }}{{ 'k' in {'k':1} }}{{ 3 not in [1] }}{{ 'z' in x }}", "TrueTrueTrueTrueFalse"],
    ["{{ 1 if false }}|{{ 'y' if true else 'n' }}|{{ (1, 2) }}|{{ [1, 'a', none, true] }}|{{ {'a': 1, 2: 'b'} }}|{{ none }}|{{ true }}", "|y|(1, 2)|[1, 'a', None, True]|{'a': 1, 2: 'b'}|None|True"],
    ["{{ \"it's\" }}{{ ['it\\'s', \"q\\\"\"] }}{{ '\\u00e9\\x41\\n' }}", "it's[\"it's\", 'q\"']éA\n"],
    ["a  \n  {% if true %}\n    b\n  {% endif %}\n  c\n", "a  \n    b\n  c"],
    ["a  \n  {%- if true -%}\n    b\n  {%+ endif %}\n  c\n{{- ' d ' -}}\n  e", "ab\n    c d e"],
    ["{# comment #}\nx\n  {# indented comment #}\ny {#- trimmed -#}  z", "x\nyz"],
    ["{% set s %}block {{ 1 }}{% endset %}[{{ s }}]{% filter upper %}up {{ 'x' }}{% endfilter %}", "[block 1]UP X"],
    ["{% set a, b = 1, 2 %}{{ a }}{{ b }}{% for k, v in {'x': 1}.items() %}{{ k }}={{ v }}{% endfor %}", "12x=1"],
    ["{{ [1,2,3]|length }}{{ 'abc'|length }}{{ {'a':1}|length }}{{ x|length }}{{ [1,2]|count }}{{ [1,2,3]|sum }}{{ [1,5,3]|max }}{{ [4,2,9]|min }}", "33102652"],
    ["{{ 'a' ~ 1 ~ none }}{{ 'a' + 'b' }}{{ [1] + [2] }}{{ 'ab' * 3 }}{{ [0] * 3 }}", "a1Noneab[1, 2]ababab[0, 0, 0]"],
    ["{{ d.get('a') }}{{ d.get('z', 'dflt') }}{{ d.a }}{{ d['b'] }}{{ d.zz }}|{{ d.keys()|list }}{{ d.values()|list }}", "1dflt12|['a', 'b'][1, 2]"],
    ["{% set l = [] %}{% do l.append(1) %}{{ l.append(2) or '' }}{{ l }}{{ l.pop() }}{{ l }}", "[1, 2]2[1]"],
    ["{{ x is string }}{{ 'a' is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.5 is float }}{{ {} is mapping }}{{ [] is iterable }}{{ x is iterable }}{{ x is sequence }}{{ 'a' is sequence }}{{ true is boolean }}{{ none is mapping }}", "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueFalse"],
    ["{{ 4 is divisibleby 2 }}{{ 3 is divisibleby(2) }}{{ x is not defined }}{{ 1 is sameas 1 }}{{ 'a' is eq 'a' }}{{ 2 is gt 1 }}{{ 'ABC' is upper }}", "TrueFalseTrueTrueTrueTrueTrue"],
    ["{% for m in msgs %}{{ loop.previtem.r if loop.previtem is defined else '-' }}{{ m.r }}{{ loop.nextitem.r if not loop.last else '.' }}{% endfor %}", "-ababcbc."],
    ["{{ loop_var }}{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{{ a }}{{ b }}{% endfor %}{{ loop.index }}{% endfor %}", "11321411232242"],
    ["{{ '%s-%d' % ('a', 3) }}{{ '%s'|format('x') }}{{ 'abc'.find('c') }}{{ 'abcabc'.count('b') }}{{ ', '.join(['a','b']) }}", "a-3x22a, b"],
    ["{% raw %}{{ not rendered }}{% endraw %} {{ 'after' }}", "{{ not rendered }} after"],
    ["{{ range(5)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}", "[0, 1, 2, 3, 4][1, 4, 7][5, 3, 1]"],
    ["{{ 'a\nb\r\nc'.splitlines() }}{{ 'x'.join('abc') }}{{ ' '.isspace() }}{{ '12'.isdigit() }}", "['a', 'b', 'c']axbxcTrueTrue"],
    ["{% if x %}{% elif 1 %}one{% else %}else{% endif %}{% if none %}{% elif false %}{% else %}E{% endif %}", "oneE"],
    ["{%- for m in msgs -%}\n  {{- m.r -}}\n{%- endfor -%}", "abc"],
    ["{{ msgs[0]['r'] }}{{ msgs[-1].r }}{{ msgs[5] }}{{ msgs|selectattr('r', 'eq', 'b')|list|length }}{{ msgs|map(attribute='zz', default='D')|list }}", "ac1['D', 'D', 'D']"],
  ];

  it.each(CASES)('%s', (source, expected) => {
    const variables = { msgs: [{ r: 'a' }, { r: 'b' }, { r: 'c' }], d: { a: 1, b: 2 } };
    expect(new ChatTemplate(source).render([], { variables })).toBe(expected);
  });

  it('keeps integer dict keys, dictsort orders them as numbers', () => {
    const template = new ChatTemplate('{% set m = {512: 128, 0: 0, 16384: 1024} %}{% for k, v in m|dictsort %}{{ k }}:{{ v }} {% endfor %}{{ m[16384] }}');
    expect(template.render([])).toBe('0:0 512:128 16384:1024 1024');
  });

  it('gives strftime_now and date_string the clock it is told', () => {
    const template = new ChatTemplate("{{ strftime_now('%Y-%m-%d %H:%M %a %b %-d %B') }}|{{ date_string }}");
    expect(template.render([], { now: new Date(2025, 2, 7, 9, 5) })).toBe('2025-03-07 09:05 Fri Mar 7 March|07 Mar 2025');
  });
});

describe('limits: a hostile template stops instead of looping or filling memory', () => {
  const limits = { maxSteps: 100_000, maxChars: 1_000_000, maxDepth: 50 };
  it.each([
    ['a huge range', '{% for i in range(10**9) %}{% endfor %}', /built or scanned more than/],
    ['nested loops', '{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}', /more than 100000 steps/],
    ['doubling a string', "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", /built or scanned more than/],
    ['repeating a string', "{{ 'x' * 10**12 }}", /built or scanned more than/],
    ['endless recursion', '{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}', /nest more than 50 deep/],
    ['exponential recursion', '{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(1) }}', /nest more than 50 deep/],
    ['searching a long string', "{% set s = 'x' * 10000 %}{% for i in range(10000) %}{{ 'y' in s }}{% endfor %}", /built or scanned more than/],
    ['counting in a long string', "{% set s = 'x' * 10000 %}{% for i in range(10000) %}{{ s.count('y') }}{% endfor %}", /built or scanned more than/],
  ])('%s', (_what, source, message) => {
    const started = performance.now();
    const error = thrown(() => new ChatTemplate(source, {}, limits).render([]));
    expect(error).toMatchObject({ failure: 'limit', message: expect.stringMatching(message) });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('leave room for long conversations: 1000 messages through Gemma 4, whose template rescans earlier turns', () => {
    const messages = Array.from({ length: 1000 }, (_, i): ChatMessage => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i} `.repeat(40) }));
    const text = realTemplate('google-gemma-4-31B-it').render(messages);
    expect(text).toContain(messages[999].content.trim());
  });

  it('deeply nested expressions do not parse', () => {
    expect(thrown(() => new ChatTemplate(`{{ ${'('.repeat(5000)}1${')'.repeat(5000)} }}`))).toMatchObject({ failure: 'parse' });
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
    const error = thrown(() => ChatTemplate.fromGguf(ggufOf(base)));
    expect(error).toBeInstanceOf(NoChatTemplateError);
    expect(error).toMatchObject({ code: 'NO_CHAT_TEMPLATE' });
    expect(String(error)).toContain('tokenizer.chat_template');
  });
});
