// argmax.wgsl: the index of the largest of n f32 values (greedy sampling over
// the logits), ties going to the lowest index. Two passes of one pipeline
// layout, chosen by the FINAL override:
//   partial (FINAL = false): workgroup w reduces values [w slice, (w + 1) slice)
//                            to its best (value, index) in partials[w];
//   final   (FINAL = true):  one workgroup reduces the n_partials partials and
//                            writes the index to result[0].
// NaN values compare false with everything; where one is present the result
// is unspecified.
//
// Bindings (group 0):
//   0  params    uniform              Params { n: u32, slice: u32, n_partials: u32 }
//   1  values    storage, read        array<f32>  [n]
//   2  partials  storage, read_write  array<Best> [n_partials], Best = (value f32, index u32)
//   3  result    storage, read_write  array<u32>  [1]; written by the final pass
//
// Geometry: WG threads per workgroup (a power of two). Partial pass: one
// workgroup per slice (linear index wid.y * num_workgroups.x + wid.x), thread
// t reads elements t, t + WG, ... of its slice; final pass: one workgroup,
// thread t reads partials t, t + WG, ... Then a tree reduction in workgroup
// memory.
//
// Overrides: WG (default 256), FINAL (bool).

override WG: u32 = 256u;
override FINAL: bool = false;

// Marks "no element yet"; loses to every real candidate.
const NONE: u32 = 0xffffffffu;

struct Best {
  value: f32,
  index: u32,
}

struct Params {
  n: u32,
  slice: u32,
  n_partials: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<Best>;
@group(0) @binding(3) var<storage, read_write> result: array<u32>;

var<workgroup> best_of: array<Best, WG>;

// Whether a beats b: a larger value, or an equal one at a lower index.
fn beats(a: Best, b: Best) -> bool {
  if (a.index == NONE) {
    return false;
  }
  return b.index == NONE || a.value > b.value || (a.value == b.value && a.index < b.index);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let w = wid.y * nwg.x + wid.x;
  if (!FINAL && w >= params.n_partials) {
    return;
  }
  var best = Best(0.0, NONE);
  if (FINAL) {
    for (var i = lid; i < params.n_partials; i += WG) {
      let candidate = partials[i];
      if (beats(candidate, best)) {
        best = candidate;
      }
    }
  } else {
    let end = min(params.n, (w + 1u) * params.slice);
    // Increasing indices, so a strict > keeps the lowest index among ties.
    for (var i = w * params.slice + lid; i < end; i += WG) {
      let candidate = Best(values[i], i);
      if (beats(candidate, best)) {
        best = candidate;
      }
    }
  }
  best_of[lid] = best;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride && beats(best_of[lid + stride], best_of[lid])) {
      best_of[lid] = best_of[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    if (FINAL) {
      result[0] = best_of[0].index;
    } else {
      partials[w] = best_of[0];
    }
  }
}
