/**
 * The built-in default model (models/default-moe-q8_0.gguf, trained by
 * scripts/train): it loads, reads as the qwen2moe shape it was trained in,
 * and is a trained model, not noise: on held-out text (a document it never
 * saw) its perplexity under the CPU reference forward pass is far below what
 * random weights give (about the vocabulary size, 3,070, or worse).
 * Its committed routing traces parse and are more local than random routing.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_FILE, defaultModelPath } from '../../../src/default-model';
import { reuseRate } from '../../../src/experts/analysis/stats';
import { readTraces } from '../../../src/experts/trace';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { loadReferenceModel } from '../../../src/ref/forward';
import { perplexity as heldOutPerplexity } from '../../../src/ref/forward-compare';
import { Tokenizer } from '../../../src/text/tokenizer';

const FIXTURES = join(import.meta.dirname, '../../fixtures/default-model');
const TOKENS = 192;
/** Measured 31.0 on these 192 tokens (46.3 over 2,040 held-out tokens: bench/default-model); random weights: ~3,000 or more. */
const PERPLEXITY_BOUND = 50;

describe('built-in default model', () => {
  it('is shipped inside the package', () => {
    expect(existsSync(DEFAULT_MODEL_FILE)).toBe(true);
    expect(defaultModelPath()).toBe(DEFAULT_MODEL_FILE);
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../../package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('models/default-moe-q8_0.gguf');
  });

  it(`has held-out perplexity below ${PERPLEXITY_BOUND} under the reference forward pass`, { timeout: 120_000 }, async () => {
    const bytes = new Uint8Array(readFileSync(DEFAULT_MODEL_FILE));
    const model = await loadReferenceModel(bytes);
    expect(model.config.arch).toBe('qwen2moe');
    expect([model.config.nLayer, model.config.nExpert, model.config.routing.topK]).toEqual([4, 16, 2]);

    const tokenizer = Tokenizer.fromGguf(await readGguf(sourceFromBytes(bytes)));
    const text = readFileSync(join(FIXTURES, 'heldout-sample.txt'), 'utf8');
    const tokens = [tokenizer.tokenId('<|endoftext|>')!, ...tokenizer.encode(text)].slice(0, TOKENS);
    expect(tokens.length).toBe(TOKENS);
    const logits = model.logits(tokens);
    const perplexity = heldOutPerplexity(logits, tokens);
    console.log(`default model: held-out perplexity ${perplexity.toFixed(2)} over ${tokens.length - 1} predictions`);
    expect(perplexity).toBeLessThan(PERPLEXITY_BOUND);
  });

  it('has committed routing traces that reuse experts far more than random routing', () => {
    const traces = readTraces(readFileSync(join(FIXTURES, 'heldout-routing.jsonl'), 'utf8'));
    expect(traces.length).toBeGreaterThan(0);
    for (const t of traces) expect([t.nLayers, t.nExperts, t.topK]).toEqual([4, 16, 2]);
    // Uniform random top-2 of 16 reuses an expert of the previous token with probability 2/16.
    expect(reuseRate(traces)).toBeGreaterThan(1.5 * (2 / 16));
  });
});
