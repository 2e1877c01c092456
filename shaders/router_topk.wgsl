// router_topk.wgsl: MoE routing from router logits: scoring, top-k selection
// and routing weights, for each token (src/ref/router.ts is the reference and
// spells out the semantics).
//
//   probabilities p[e]   SCORING 0 softmax over all experts, 1 sigmoid,
//                        2 the raw logit (softmax over the selected, below)
//   selection score      p[e] + selection_bias[e] with HAS_SELECTION_BIAS,
//                        else the logit (same order as p, no rounding ties)
//   top-k                k passes; the highest unselected score wins, equal
//                        scores go to the lower expert id; ids best first
//   weights              p[id_j]; SCORING 2: softmax over the k selected logits;
//                        NORMALIZE: divided by max(sum, 6.103515625e-5)
//   skipping (off by     on those weights w (before the scale below), the
//   default)             heaviest expert is always kept; top_p < 1 keeps the
//                        fewest experts, heaviest first (equal weights: lower
//                        slot), whose w sum (in f32, in that order) reaches
//                        top_p times the sum of all k w (in slot order);
//                        min_weight > 0 drops experts with w < min_weight.
//                        A dropped expert's pair becomes id MASKED_ID, weight
//                        0; the kept weights are not renormalised
//   scale                every weight times params.weight_scale
//
// Output, per token t, 2k words at routing[2k t]: the k expert ids (u32),
// then the k weights (f32 bits), best first. Ids past the model's real
// experts (null experts) are selected like any other; the expert FFN skips
// them, and masked pairs too (MASKED_ID is past every expert). With
// min_weight 0 and top_p 1 nothing is dropped and the output is bit for bit
// what it is without the skipping step.
//
// Bindings (group 0):
//   0  params          uniform              Params { tokens, n_experts, top_k, weight_scale: f32,
//                                                    min_weight: f32, top_p: f32 }
//   1  logits          storage, read        array<f32>  [tokens, n_experts]
//   2  routing         storage, read_write  array<u32>  [tokens, 2 top_k]
//   3  selection_bias  storage, read        array<f32>  [n_experts]; only with HAS_SELECTION_BIAS
//
// Geometry: one thread per token, WG threads per workgroup; the token is
// (wid.y * num_workgroups.x + wid.x) * WG + lid, and threads past `tokens`
// return. Each thread reads its row of logits k + 2 times (k <= MAX_TOP_K).
//
// Overrides: WG (threads per workgroup), SCORING (0, 1, 2 as above),
//            NORMALIZE (bool).
// Defines:   HAS_SELECTION_BIAS (bool), whether binding 3 exists.

override WG: u32 = 64u;
override SCORING: u32 = 0u;
override NORMALIZE: bool = false;

const MAX_TOP_K: u32 = 16u;
const SCORING_SOFTMAX: u32 = 0u;
const SCORING_SIGMOID: u32 = 1u;
const SCORING_SOFTMAX_SELECTED: u32 = 2u;
const MIN_WEIGHT_SUM: f32 = 6.103515625e-5;
const MASKED_ID: u32 = 0xffffffffu;

struct Params {
  tokens: u32,
  n_experts: u32,
  top_k: u32,
  weight_scale: f32,
  min_weight: f32,
  top_p: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> routing: array<u32>;
#if HAS_SELECTION_BIAS
@group(0) @binding(3) var<storage, read> selection_bias: array<f32>;
#endif

// Softmax statistics of one token's logits: the max and sum_e exp(l - max).
struct SoftmaxStats {
  max: f32,
  sum: f32,
}

fn softmax_stats(base: u32) -> SoftmaxStats {
  var m = logits[base];
  for (var e = 1u; e < params.n_experts; e++) {
    m = max(m, logits[base + e]);
  }
  var sum = 0.0;
  for (var e = 0u; e < params.n_experts; e++) {
    sum += exp(logits[base + e] - m);
  }
  return SoftmaxStats(m, sum);
}

fn probability(logit: f32, stats: SoftmaxStats) -> f32 {
  switch SCORING {
    case SCORING_SOFTMAX: {
      return exp(logit - stats.max) / stats.sum;
    }
    case SCORING_SIGMOID: {
      return 1.0 / (1.0 + exp(-logit));
    }
    default: {
      return logit;
    }
  }
}

fn selection_score(base: u32, e: u32, stats: SoftmaxStats) -> f32 {
#if HAS_SELECTION_BIAS
  return probability(logits[base + e], stats) + selection_bias[e];
#else
  return logits[base + e];
#endif
}

// Whether score a ranks above b: higher, or a number where b is NaN.
fn beats(a: f32, b: f32) -> bool {
  return a > b || (b != b && a == a);
}

// The heaviest of the k weights not yet kept (equal weights: the lower slot).
fn heaviest_unkept(weights: ptr<function, array<f32, MAX_TOP_K>>, kept: ptr<function, array<bool, MAX_TOP_K>>, k: u32) -> u32 {
  var best = MAX_TOP_K;
  for (var j = 0u; j < k; j++) {
    if (!(*kept)[j] && (best == MAX_TOP_K || beats((*weights)[j], (*weights)[best]))) {
      best = j;
    }
  }
  return best;
}

// Which of the k pairs the skipping step keeps (see the header).
fn kept_pairs(weights: ptr<function, array<f32, MAX_TOP_K>>, k: u32) -> array<bool, MAX_TOP_K> {
  var kept: array<bool, MAX_TOP_K>;
  if (params.top_p < 1.0) {
    var total = 0.0;
    for (var j = 0u; j < k; j++) {
      total += (*weights)[j];
    }
    let wanted = params.top_p * total;
    var mass = 0.0;
    for (var n = 0u; n < k && !(n > 0u && mass >= wanted); n++) {
      let j = heaviest_unkept(weights, &kept, k);
      kept[j] = true;
      mass += (*weights)[j];
    }
  } else {
    for (var j = 0u; j < k; j++) {
      kept[j] = true;
    }
  }
  if (params.min_weight > 0.0) {
    var none: array<bool, MAX_TOP_K>;
    let heaviest = heaviest_unkept(weights, &none, k);
    for (var j = 0u; j < k; j++) {
      kept[j] = kept[j] && (j == heaviest || !((*weights)[j] < params.min_weight));
    }
  }
  return kept;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let token = (wid.y * nwg.x + wid.x) * WG + lid;
  if (token >= params.tokens) {
    return;
  }
  let base = token * params.n_experts;
  let k = params.top_k;
  var stats = SoftmaxStats(0.0, 1.0);
  if (SCORING == SCORING_SOFTMAX) {
    stats = softmax_stats(base);
  }

  var ids: array<u32, MAX_TOP_K>;
  for (var j = 0u; j < k; j++) {
    var best = 0u;
    var best_score = 0.0;
    var found = false;
    for (var e = 0u; e < params.n_experts; e++) {
      var taken = false;
      for (var i = 0u; i < j; i++) {
        taken = taken || ids[i] == e;
      }
      if (taken) {
        continue;
      }
      let score = selection_score(base, e, stats);
      if (!found || beats(score, best_score)) {
        best = e;
        best_score = score;
        found = true;
      }
    }
    ids[j] = best;
  }

  var weights: array<f32, MAX_TOP_K>;
  if (SCORING == SCORING_SOFTMAX_SELECTED) {
    var m = logits[base + ids[0]];
    for (var j = 1u; j < k; j++) {
      m = max(m, logits[base + ids[j]]);
    }
    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
      weights[j] = exp(logits[base + ids[j]] - m);
      sum += weights[j];
    }
    for (var j = 0u; j < k; j++) {
      weights[j] = weights[j] / sum;
    }
  } else {
    for (var j = 0u; j < k; j++) {
      weights[j] = probability(logits[base + ids[j]], stats);
    }
  }
  if (NORMALIZE) {
    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
      sum += weights[j];
    }
    let divisor = max(sum, MIN_WEIGHT_SUM);
    for (var j = 0u; j < k; j++) {
      weights[j] = weights[j] / divisor;
    }
  }

  let kept = kept_pairs(&weights, k);

  let out = token * 2u * k;
  for (var j = 0u; j < k; j++) {
    routing[out + j] = select(MASKED_ID, ids[j], kept[j]);
    routing[out + k + j] = bitcast<u32>(select(0.0, weights[j] * params.weight_scale, kept[j]));
  }
}
