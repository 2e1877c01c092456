/** The routing recorder (src/experts/trace-recorder.ts): batches into token rows, the incremental drain, and a trace beside a live stream. */
import { describe, expect, it } from 'vitest';
import { RoutingRecorder, RoutingRecorders } from '../../../src/experts/trace-recorder';
import { validateTrace } from '../../../src/experts/trace';
import { MASKED_EXPERT_ID } from '../../../src/kernels/router';

const SHAPE = { name: 't', nLayers: 2, nExperts: 8, topK: 2 };

/** Records a batch of `tokens` whose token t routes to experts (base + t, base + t + 1) % 8 at layer l, base = 2 * l. */
function recordBatch(recorder: { beginBatch(n: number): void; setLayer(l: number, ids: number[], w: number[]): void; endBatch(): void }, first: number, tokens: number): void {
  recorder.beginBatch(tokens);
  for (let l = 0; l < SHAPE.nLayers; l++) {
    const ids = Array.from({ length: tokens }, (_, t) => [(2 * l + first + t) % 8, (2 * l + first + t + 1) % 8]).flat();
    recorder.setLayer(l, ids, ids.map((_, j) => (j % 2 === 0 ? 0.75 : 0.25)));
  }
  recorder.endBatch();
}

const expertsOf = (token: number) => [[token % 8, (token + 1) % 8], [(token + 2) % 8, (token + 3) % 8]];

describe('RoutingRecorder.drain', () => {
  it('hands over exactly the tokens of the batches finished since the last drain, in order', () => {
    const recorder = new RoutingRecorder(SHAPE);
    expect(recorder.drain()).toEqual([]);
    recordBatch(recorder, 0, 3);
    const prompt = recorder.drain();
    expect(prompt.map((t) => t.experts)).toEqual([0, 1, 2].map(expertsOf));
    expect(prompt[0].weights).toEqual([[0.75, 0.25], [0.75, 0.25]]);
    expect(recorder.drain()).toEqual([]);
    recordBatch(recorder, 3, 1);
    recordBatch(recorder, 4, 1);
    expect(recorder.drain().map((t) => t.experts)).toEqual([3, 4].map(expertsOf));
    expect(recorder.length).toBe(0);
  });

  it('forgets what it handed over (a later drain or take returns only newer tokens) and never includes an open batch', () => {
    const recorder = new RoutingRecorder(SHAPE);
    recordBatch(recorder, 0, 2);
    const first = recorder.drain();
    recordBatch(recorder, 2, 1);
    recorder.beginBatch(1);
    recorder.setLayer(0, [6, 7], [1, 0]);
    expect(recorder.drain().map((t) => t.experts)).toEqual([expertsOf(2)]);
    // The earlier drain's rows stay as they were handed over.
    expect(first.map((t) => t.experts)).toEqual([0, 1].map(expertsOf));
    recorder.setLayer(1, [0, 1], [1, 0]);
    recorder.endBatch();
    recordBatch(recorder, 7, 1);
    expect(recorder.take().tokens.map((t) => t.experts)).toEqual([[[6, 7], [0, 1]], expertsOf(7)]);
    expect(recorder.drain()).toEqual([]);
  });
});

describe('RoutingRecorder.setLayer', () => {
  it('leaves out the pairs a routing knob skipped: each row lists the experts the token used, and the trace stays valid', () => {
    const recorder = new RoutingRecorder(SHAPE);
    recorder.beginBatch(2);
    recorder.setLayer(0, [3, MASKED_EXPERT_ID, 5, 6], [0.9, 0, 0.5, 0.4]);
    recorder.setLayer(1, [MASKED_EXPERT_ID, 1, 2, 7], [0, 0.8, 0.6, 0.3]);
    recorder.endBatch();
    const trace = recorder.take();
    expect(trace.tokens.map((t) => t.experts)).toEqual([[[3], [1]], [[5, 6], [2, 7]]]);
    expect(trace.tokens.map((t) => t.weights)).toEqual([[[0.9], [0.8]], [[0.5, 0.4], [0.6, 0.3]]]);
    expect(() => validateTrace(trace)).not.toThrow();
  });
});

describe('RoutingRecorders', () => {
  it('feed a trace and a live stream independently: draining the stream leaves the trace whole; pre-gate guesses go to the trace only', () => {
    const recorders = new RoutingRecorders();
    expect(recorders.active).toBe(false);
    expect(recorders.drainStream()).toEqual([]);
    recorders.startStream(SHAPE);
    expect(recorders.active).toBe(true);
    recordBatch(recorders, 0, 2);
    recorders.startTrace({ ...SHAPE, name: 'trace' });
    recorders.beginBatch(1);
    for (let l = 0; l < SHAPE.nLayers; l++) recorders.setLayer(l, expertsOf(2)[l], [0.75, 0.25]);
    recorders.setPredicted(0, 1, [5, 6]);
    recorders.endBatch();
    expect(recorders.drainStream().map((t) => t.experts)).toEqual([0, 1, 2].map(expertsOf));
    recordBatch(recorders, 3, 1);
    expect(recorders.drainStream().map((t) => t.experts)).toEqual([expertsOf(3)]);
    const trace = recorders.takeTrace()!;
    expect(trace.name).toBe('trace');
    expect(trace.tokens.map((t) => t.experts)).toEqual([2, 3].map(expertsOf));
    expect(trace.tokens[0].predicted).toEqual([null, [5, 6]]);
    expect(recorders.takeTrace()).toBeUndefined();
    recorders.stopStream();
    expect(recorders.active).toBe(false);
    recordBatch(recorders, 4, 1);
    expect(recorders.drainStream()).toEqual([]);
  });
});
