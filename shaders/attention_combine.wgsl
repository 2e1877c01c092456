// attention_combine.wgsl: merges the split-K partial results of
// attention.wgsl (SPLIT) into the attention output.
//
// For each query row, split s holds an unnormalised output o_s, the max m_s
// of the scores it saw and the sum l_s of exp(score - m_s) (an empty split
// has m_s = -3e38, l_s = 0, o_s = 0, and so weighs nothing):
//   M = max_s m_s,  out = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s
//
// Bindings (group 0):
//   0  params    uniform              Params { n_rows: u32, n_splits: u32 }
//   1  partials  storage, read        array<f32>  o as [n_splits][n_rows][HEAD_DIM], then
//                                                 (m, l) as [n_splits][n_rows][2]
//   2  out       storage, read_write  array<f32>  [n_rows][HEAD_DIM] (row = token n_heads + head)
//
// Geometry: one workgroup per row (linear index wid.y * num_workgroups.x +
// wid.x; past the last row it returns), WG threads striding over the
// dimensions; every thread recomputes M and the denominator (n_splits is small).
//
// Overrides: WG (default 64), HEAD_DIM.

override WG: u32 = 64u;
override HEAD_DIM: u32 = 128u;

struct Params {
  n_rows: u32,
  n_splits: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.n_rows) {
    return;
  }
  let stats_base = params.n_splits * params.n_rows * HEAD_DIM;
  var m = partials[stats_base + row * 2u];
  for (var s = 1u; s < params.n_splits; s++) {
    m = max(m, partials[stats_base + (s * params.n_rows + row) * 2u]);
  }
  var denominator = 0.0;
  for (var s = 0u; s < params.n_splits; s++) {
    let stats = stats_base + (s * params.n_rows + row) * 2u;
    denominator += exp(partials[stats] - m) * partials[stats + 1u];
  }
  for (var d = lid; d < HEAD_DIM; d += WG) {
    var o = 0.0;
    for (var s = 0u; s < params.n_splits; s++) {
      let weight = exp(partials[stats_base + (s * params.n_rows + row) * 2u] - m);
      o += weight * partials[(s * params.n_rows + row) * HEAD_DIM + d];
    }
    out[row * HEAD_DIM + d] = o / denominator;
  }
}
