/**
 * Multi-head latent attention (deepseek2) in the CPU reference, in the
 * absorbed form llama.cpp computes: the cache holds one row per position,
 * [c | k_pe] with c the RMS-normed compressed KV (L) and k_pe the RoPE'd
 * shared key (r); each head's query is taken into the latent space and its
 * output back out of it. Written out per head with plain loops, sums in f64.
 *
 *   q          = Wq xb, or Wq_b rmsnorm(Wq_a xb)                 (heads, n + r)
 *   q_abs[h]   = Wk_b[h] q_nope[h]                                (L)
 *   s_j        = scale (q_abs[h] . c_j + rope(q_pe[h]) . k_pe_j),  j = 0..pos
 *   o_lat[h]   = sum_j softmax(s)_j c_j                           (L)
 *   proj       = Wo [Wv_b[h] o_lat[h] for each h]                 (hidden)
 */

import type { RunState, ForwardModel } from './forward-model';
import { project } from './forward-model';
import { rmsNormInPlace } from './forward-ops';
import { applyRope } from './forward-rope';
import type { LatentAttentionWeights } from './forward-weights';

export function latentAttention(m: ForwardModel, s: RunState, l: number, a: LatentAttentionWeights, pos: number, rope: Float32Array): void {
  const c = m.config;
  const latent = c.latent;
  if (!latent) throw new Error('latent attention weights in a model without latent sizes');
  const { hidden: H, nHead, rmsEps } = c;
  const { kvLoraRank: L, ropeDim: r, nopeDim: n, valueDim: dv, qLoraRank } = latent;
  const dk = n + r;

  // Query heads (n + r each), directly or through the low-rank bottleneck.
  const q = new Float32Array(nHead * dk);
  if (a.wq) project(m, q, a.wq, s.xb, nHead * dk, H);
  else {
    const qa = new Float32Array(qLoraRank);
    project(m, qa, a.wqA!, s.xb, qLoraRank, H);
    rmsNormInPlace(qa, a.qANorm!, qLoraRank, 1, rmsEps);
    project(m, q, a.wqB!, qa, nHead * dk, qLoraRank);
  }

  // This position's cache row: [rmsnorm(c) | rope(k_pe)].
  const kv = new Float32Array(L + r);
  project(m, kv, a.wkvA, s.xb, L + r, H);
  const row = kv.slice();
  rmsNormInPlace(row.subarray(0, L), a.kvANorm, L, 1, rmsEps);
  applyRope(row.subarray(L), 1, r, rope, m.rope.kind);
  s.keyCache[l][pos] = row;

  const attIn = new Float32Array(nHead * dv);
  const qAbs = new Float32Array(L);
  const oLat = new Float32Array(L);
  const o = new Float32Array(dv);
  const scores = new Float64Array(pos + 1);
  for (let h = 0; h < nHead; h++) {
    const qPe = q.slice(h * dk + n, (h + 1) * dk);
    applyRope(qPe, 1, r, rope, m.rope.kind);
    project(m, qAbs, a.wkB, q.subarray(h * dk, h * dk + n), L, n, h * L * n);

    let max = -Infinity;
    for (let j = 0; j <= pos; j++) {
      const key = s.keyCache[l][j];
      let dot = 0;
      for (let i = 0; i < L; i++) dot += qAbs[i] * key[i];
      for (let i = 0; i < r; i++) dot += qPe[i] * key[L + i];
      scores[j] = c.scales.attention * dot;
      max = Math.max(max, scores[j]);
    }
    let denominator = 0;
    for (let j = 0; j <= pos; j++) denominator += Math.exp(scores[j] - max);
    for (let i = 0; i < L; i++) {
      let sum = 0;
      for (let j = 0; j <= pos; j++) sum += Math.exp(scores[j] - max) * s.keyCache[l][j][i];
      oLat[i] = sum / denominator;
    }

    project(m, o, a.wvB, oLat, dv, L, h * dv * L);
    attIn.set(o, h * dv);
  }
  project(m, s.proj, a.wo, attIn, H, nHead * dv);
}
