/** Routing traces: the webmoe JSONL format, validation, and the converters from published formats. */
import { describe, expect, it } from 'vitest';
import { accessSequence, readTraces, TraceFormatError, validateTrace, writeTraces, type RoutingTrace } from '../../../src/experts/trace';
import { detectTraceFormat, parseGptOssTrace, parseMixtralRows, parseTraceText } from '../../../src/experts/analysis/trace-import';

function tinyTrace(): RoutingTrace {
  return {
    name: 'tiny', nLayers: 2, nExperts: 4, topK: 2, expertBytes: 1000, layerAligned: [true, false],
    tokens: [
      { experts: [[0, 3], [1, 2]], weights: [[0.75, 0.25], [0.5, 0.5]], predicted: [null, [1, 3]] },
      { experts: [[2, 3], [0, 1]], weights: [[0.6, 0.4], [0.9, 0.1]] },
    ],
  };
}

describe('webmoe trace format', () => {
  it('round-trips every field, several traces to a file', () => {
    const other: RoutingTrace = { name: 'other', nLayers: 1, nExperts: 2, topK: 1, tokens: [{ experts: [[1]], weights: [[1]] }] };
    const text = writeTraces([tinyTrace(), other]);
    expect(text.split('\n')[0]).toBe('{"webmoe_trace":1,"name":"tiny","n_layers":2,"n_experts":4,"top_k":2,"expert_bytes":1000,"layer_aligned":[true,false]}');
    expect(text.endsWith('\n')).toBe(true);
    expect(readTraces(text)).toEqual([tinyTrace(), other]);
  });

  it('names the line of a bad row', () => {
    const lines = writeTraces([tinyTrace()]).trim().split('\n');
    const withBadId = [lines[0], '{"experts":[[0,4],[1,2]],"weights":[[1,0],[1,0]]}'].join('\n');
    expect(() => readTraces(withBadId)).toThrow(/line 2 layer 0: expert id 4 is not in 0\.\.3/);
    const twice = [lines[0], '{"experts":[[1,1],[1,2]],"weights":[[1,0],[1,0]]}'].join('\n');
    expect(() => readTraces(twice)).toThrow(/expert 1 selected twice/);
    const layers = [lines[0], '{"experts":[[1,2]],"weights":[[1,0]]}'].join('\n');
    expect(() => readTraces(layers)).toThrow(/expected experts for 2 layers/);
    expect(() => readTraces(lines[1])).toThrow(/line 1: token row before any trace header/);
    expect(() => readTraces('{"webmoe_trace":2}')).toThrow(/version 2 is not supported/);
    expect(() => readTraces(`${lines[0]}\n{oops`)).toThrow(TraceFormatError);
  });

  it('validates shapes and weights', () => {
    expect(() => validateTrace({ ...tinyTrace(), topK: 5 })).toThrow(/topK 5 exceeds nExperts 4/);
    const t = tinyTrace();
    t.tokens[0].weights[1] = [0.5];
    expect(() => validateTrace(t)).toThrow(/weights must be 2 finite numbers/);
  });

  it('lists accesses token by token, layer by layer, as keys layer * nExperts + expert', () => {
    expect([...accessSequence(tinyTrace())]).toEqual([0, 3, 5, 6, 2, 3, 4, 5]);
  });
});

describe('gpt-oss router_data', () => {
  const doc = {
    row_index: 1, full_text: ['a', 'b', 'c'],
    router_data: [
      { token_1: { layer_0: { selected_experts: [3, 1], selected_probs: [0.7, 0.3] }, layer_1: { selected_experts: [0, 2], selected_probs: [0.6, 0.4] } } },
      { token_2: { layer_0: { selected_experts: [1, 2], selected_probs: [0.5, 0.5] }, layer_1: { selected_experts: [2, 3], selected_probs: [0.8, 0.2] } } },
    ],
  };

  it('becomes one trace, tokens in order, with ids and probabilities per layer', () => {
    const t = parseGptOssTrace(JSON.stringify(doc), 'g.json', { nExperts: 4 });
    expect(t).toMatchObject({ name: 'g.json', nLayers: 2, nExperts: 4, topK: 2 });
    expect(t.tokens[1]).toEqual({ experts: [[1, 2], [2, 3]], weights: [[0.5, 0.5], [0.8, 0.2]] });
  });

  it('takes 32 experts for 24 layers (gpt-oss-20b), else the largest id seen', () => {
    expect(parseGptOssTrace(JSON.stringify(doc), 'g.json').nExperts).toBe(4);
    const layers = Object.fromEntries(Array.from({ length: 24 }, (_, l) => [`layer_${l}`, { selected_experts: [0, 1, 2, 3], selected_probs: [0.4, 0.3, 0.2, 0.1] }]));
    expect(parseGptOssTrace(JSON.stringify({ router_data: [{ token_9: layers }] }), 'x').nExperts).toBe(32);
  });

  it('rejects a document without routing', () => {
    expect(() => parseGptOssTrace('{"router_data": []}', 'e.json')).toThrow(/router_data must be a non-empty array/);
  });
});

describe('Mixtral routing rows', () => {
  // Problem 0 has 3 tokens over 2 layers; the collector dropped layer 1's row of
  // token 1 (a 0.5/0.5 tie) and renumbered, so layer 1 has rows 0 and 1 only.
  const row = (problem: number, layer: number, token: number, experts: number[]) =>
    JSON.stringify({ dataset: 'd', problem_id: problem, layer, experts, gating_probs: [0.6, 0.4], token_idx: token });
  const text = [
    row(0, 0, 0, [7, 0]), row(0, 0, 1, [5, 6]), row(0, 0, 2, [3, 6]),
    row(0, 1, 0, [1, 2]), row(0, 1, 1, [2, 4]),
    row(1, 0, 0, [1, 0]), row(1, 1, 0, [0, 1]),
  ].join('\n');

  it('becomes one trace per problem, keeping only tokens routed at every layer', () => {
    const [p0, p1] = parseMixtralRows(text, 'm.jsonl');
    expect(p0).toMatchObject({ name: 'm.jsonl#problem0', nLayers: 2, nExperts: 8, topK: 2 });
    expect(p0.tokens.map((t) => t.experts)).toEqual([[[7, 0], [1, 2]], [[5, 6], [2, 4]]]);
    expect(p1.tokens).toHaveLength(1);
  });

  it('marks a layer with fewer rows than the problem\'s maximum as unaligned', () => {
    const [p0, p1] = parseMixtralRows(text, 'm.jsonl');
    expect(p0.layerAligned).toEqual([true, false]);
    expect(p1.layerAligned).toEqual([true, true]);
  });

  it('rejects duplicated rows', () => {
    expect(() => parseMixtralRows([row(0, 0, 0, [1, 2]), row(0, 0, 0, [1, 2])].join('\n'), 'm')).toThrow(/two rows for token 0 layer 0/);
  });
});

describe('detectTraceFormat', () => {
  it('tells the three formats apart and refuses others', () => {
    expect(detectTraceFormat(writeTraces([tinyTrace()]))).toBe('webmoe');
    expect(detectTraceFormat('{"row_index": 1, "router_data": []}')).toBe('gpt-oss');
    expect(detectTraceFormat('{"dataset": "gsm8k", "problem_id": 0, "layer": 0, "experts": [7, 0], "gating_probs": [0.8, 0.2], "token_idx": 0}\n')).toBe('mixtral-rows');
    expect(() => detectTraceFormat('{"problem_id": 0, "generated": "x"}')).toThrow(/unrecognised trace format/);
  });

  it('lets parseTraceText read any of them', () => {
    expect(parseTraceText(writeTraces([tinyTrace()]), 'x')).toEqual([tinyTrace()]);
  });
});
