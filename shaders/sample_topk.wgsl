// sample_topk.wgsl: the GPU part of sampling. Over n logits it finds the k
// largest (ties to the lowest id), sorted, with their temperature-scaled
// values, and the log-sum-exp of all n scaled logits, so the CPU reads back
// 2 k + 2 words and finishes top-p / min-p sampling over that short list
// (src/kernels/sampling.ts). Two passes of one pipeline layout, chosen by
// the FINAL override:
//   partial (FINAL = false): workgroup w takes logits [w slice, (w + 1) slice),
//     writes its top k as candidates [w k, w k + k) (id NONE where the slice
//     has fewer) and (max, sum of exp(x - max)) of its scaled logits;
//   final (FINAL = true): one workgroup selects the top k of all candidates,
//     sorts them and merges the per-slice sums into the log-sum-exp.
//
// Selection is exact and deterministic: every entry has a unique 64-bit key
// (order-preserving bits of the raw logit, then the complement of its id, so
// the lower id ranks higher among equal logits), and the k-th largest key is
// found by radix select, 8 bits a round from the top: histogram the entries
// that match the digits fixed so far, walk the bins down to the one holding
// the k-th, fix that digit, and stop early once that bin holds exactly the
// entries still wanted. Entries above the threshold key are gathered, then
// each thread ranks one of them by counting the entries that beat it.
// Scaling by 1 / temperature > 0 preserves order, so raw logits are compared
// and only the outputs are scaled. (-0 ranks just below +0; NaN logits are
// unsupported.)
//
// Bindings (group 0):
//   0  params   uniform              Params (below)
//   1  logits   storage, read        array<f32>  [n]
//   2  scratch  storage, read_write  array<u32>  candidates [n_slices k] as (raw logit bits, id),
//                                                then per-slice (max, sum) bits [n_slices][2]
//   3  result   storage, read_write  array<u32>  [0] count = min(k, n), [1] log-sum-exp bits,
//                                                then rank r at [2 + 2r] (scaled logit bits), [3 + 2r] (id)
//
// Geometry: WG threads per workgroup, a power of two and at least k (each
// thread ranks one selected entry). Partial pass: one workgroup per slice
// (linear index wid.y * num_workgroups.x + wid.x); final pass: one
// workgroup. Thread t reads entries t, t + WG, ... of its input, once per
// radix round (typically 3 or 4 rounds), once to gather and, in the partial
// pass, once for the sums.
//
// Overrides: WG (default 256), FINAL (bool).

override WG: u32 = 256u;
override FINAL: bool = false;

const NONE: u32 = 0xffffffffu;
const NEG: f32 = -3.0e38;
const BINS: u32 = 256u;

struct Params {
  n: u32,
  k: u32,
  slice: u32,
  n_slices: u32,
  inv_temperature: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(3) var<storage, read_write> result: array<u32>;

struct Entry {
  logit: f32,
  id: u32, // NONE: no entry
}

var<workgroup> histogram: array<atomic<u32>, BINS>;
var<workgroup> selected: array<Entry, WG>;
var<workgroup> selected_count: atomic<u32>;
// Radix select state, written by thread 0.
var<workgroup> prefix_hi: u32;
var<workgroup> prefix_lo: u32;
var<workgroup> wanted: u32;
var<workgroup> threshold_round: u32;
var<workgroup> finished: u32;
// Per-thread (max, sum) of scaled logits, reduced in the partial pass.
var<workgroup> part_max: array<f32, WG>;
var<workgroup> part_sum: array<f32, WG>;

// The key's high word: f32 bits mapped so that unsigned order is numeric order.
fn ordered(value: f32) -> u32 {
  let bits = bitcast<u32>(value);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

fn beats(a: Entry, b: Entry) -> bool {
  let ka = ordered(a.logit);
  let kb = ordered(b.logit);
  return ka > kb || (ka == kb && a.id < b.id);
}

// The mask of the key word `word` (0 high, 1 low) covering digits 0..digits-1.
fn digit_mask(word: u32, digits: u32) -> u32 {
  let bits = clamp(i32(digits) * 8 - i32(word) * 32, 0, 32);
  if (bits == 0) {
    return 0u;
  }
  return ~0u << u32(32 - bits);
}

fn digit_of(hi: u32, lo: u32, round: u32) -> u32 {
  if (round < 4u) {
    return (hi >> (24u - 8u * round)) & 0xffu;
  }
  return (lo >> (24u - 8u * (round - 4u))) & 0xffu;
}

fn entry_count() -> u32 {
  if (FINAL) {
    return params.n_slices * params.k;
  }
  return params.slice;
}

// Entry i of this workgroup's input (id NONE past its end).
fn entry(w: u32, i: u32) -> Entry {
  if (FINAL) {
    return Entry(bitcast<f32>(scratch[2u * i]), scratch[2u * i + 1u]);
  }
  let id = w * params.slice + i;
  if (id >= params.n) {
    return Entry(0.0, NONE);
  }
  return Entry(logits[id], id);
}

// Compares the key of `e` with the prefix on its first `digits` digits: -1, 0, 1.
fn compare_prefix(e: Entry, digits: u32, hi: u32, lo: u32) -> i32 {
  let mh = digit_mask(0u, digits);
  let ml = digit_mask(1u, digits);
  let kh = ordered(e.logit) & mh;
  let kl = ~e.id & ml;
  if (kh != (hi & mh)) {
    return select(-1, 1, kh > (hi & mh));
  }
  if (kl != (lo & ml)) {
    return select(-1, 1, kl > (lo & ml));
  }
  return 0;
}

// Thread 0: fixes digit `round` from the histogram, and sets `finished` once
// the entries matching the prefix are exactly those still wanted.
fn choose_digit(round: u32) {
  var remaining = wanted;
  if (round == 0u) {
    var total = 0u;
    for (var b = 0u; b < BINS; b++) {
      total += atomicLoad(&histogram[b]);
    }
    remaining = min(params.k, total);
    if (remaining == 0u) {
      wanted = 0u;
      finished = 1u;
      return;
    }
  }
  var above = 0u;
  var bin = BINS - 1u;
  loop {
    let count = atomicLoad(&histogram[bin]);
    if (above + count >= remaining || bin == 0u) {
      break;
    }
    above += count;
    bin -= 1u;
  }
  remaining -= above;
  if (round < 4u) {
    prefix_hi |= bin << (24u - 8u * round);
  } else {
    prefix_lo |= bin << (24u - 8u * (round - 4u));
  }
  wanted = remaining;
  threshold_round = round;
  finished = select(0u, 1u, atomicLoad(&histogram[bin]) == remaining);
}

// Radix select and gather: leaves the top min(k, entries) of this
// workgroup's input in selected[0 .. selected_count), unordered.
fn select_top_k(w: u32, lid: u32) {
  if (lid == 0u) {
    prefix_hi = 0u;
    prefix_lo = 0u;
    wanted = 0u;
    finished = 0u;
    threshold_round = 0u;
    atomicStore(&selected_count, 0u);
  }
  let count = entry_count();
  for (var round = 0u; round < 8u; round++) {
    for (var b = lid; b < BINS; b += WG) {
      atomicStore(&histogram[b], 0u);
    }
    workgroupBarrier();
    let hi = prefix_hi;
    let lo = prefix_lo;
    for (var i = lid; i < count; i += WG) {
      let e = entry(w, i);
      if (e.id != NONE && compare_prefix(e, round, hi, lo) == 0) {
        atomicAdd(&histogram[digit_of(ordered(e.logit), ~e.id, round)], 1u);
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      choose_digit(round);
    }
    if (workgroupUniformLoad(&finished) != 0u) {
      break;
    }
  }
  // Everything above the threshold, and everything equal to it on the digits
  // fixed (exactly `wanted` entries), is in the top k.
  let hi = prefix_hi;
  let lo = prefix_lo;
  let digits = threshold_round + 1u;
  if (wanted != 0u) {
    for (var i = lid; i < count; i += WG) {
      let e = entry(w, i);
      if (e.id != NONE && compare_prefix(e, digits, hi, lo) >= 0) {
        selected[atomicAdd(&selected_count, 1u)] = e;
      }
    }
  }
  workgroupBarrier();
}

// The rank of selected[i] among the first n selected entries.
fn rank_of(i: u32, n: u32) -> u32 {
  var rank = 0u;
  for (var j = 0u; j < n; j++) {
    if (beats(selected[j], selected[i])) {
      rank++;
    }
  }
  return rank;
}

// Per-thread online (max, sum of exp(x - max)) over the slice's scaled logits, reduced over the workgroup.
fn slice_stats(w: u32, lid: u32) -> vec2<f32> {
  var m = NEG;
  var s = 0.0;
  for (var i = lid; i < params.slice; i += WG) {
    let e = entry(w, i);
    if (e.id == NONE) {
      break;
    }
    let x = e.logit * params.inv_temperature;
    if (x > m) {
      s = s * exp(m - x) + 1.0;
      m = x;
    } else {
      s += exp(x - m);
    }
  }
  part_max[lid] = m;
  part_sum[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let m2 = part_max[lid + stride];
      let merged = max(part_max[lid], m2);
      part_sum[lid] = part_sum[lid] * exp(part_max[lid] - merged) + part_sum[lid + stride] * exp(m2 - merged);
      part_max[lid] = merged;
    }
    workgroupBarrier();
  }
  return vec2<f32>(part_max[0], part_sum[0]);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = wid.y * nwg.x + wid.x;
  if (!FINAL && w >= params.n_slices) {
    return;
  }
  select_top_k(w, lid);
  let n_selected = atomicLoad(&selected_count);
  let stats_base = 2u * params.n_slices * params.k;

  if (!FINAL) {
    let stats = slice_stats(w, lid);
    for (var i = lid; i < params.k; i += WG) {
      var e = Entry(0.0, NONE);
      if (i < n_selected) {
        e = selected[i];
      }
      // Unsorted within the slice: the final pass ranks them.
      scratch[2u * (w * params.k + i)] = bitcast<u32>(e.logit);
      scratch[2u * (w * params.k + i) + 1u] = e.id;
    }
    if (lid == 0u) {
      scratch[stats_base + 2u * w] = bitcast<u32>(stats.x);
      scratch[stats_base + 2u * w + 1u] = bitcast<u32>(stats.y);
    }
    return;
  }

  if (lid < n_selected) {
    let e = selected[lid];
    let rank = rank_of(lid, n_selected);
    result[2u + 2u * rank] = bitcast<u32>(e.logit * params.inv_temperature);
    result[3u + 2u * rank] = e.id;
  }
  if (lid == 0u) {
    var m = NEG;
    for (var s = 0u; s < params.n_slices; s++) {
      m = max(m, bitcast<f32>(scratch[stats_base + 2u * s]));
    }
    var total = 0.0;
    for (var s = 0u; s < params.n_slices; s++) {
      total += bitcast<f32>(scratch[stats_base + 2u * s + 1u]) * exp(bitcast<f32>(scratch[stats_base + 2u * s]) - m);
    }
    result[0] = n_selected;
    result[1] = bitcast<u32>(m + log(total));
  }
}
