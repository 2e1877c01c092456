// expert_ffn_combine.wgsl: last step of the grouped (prefill) expert FFN:
// the weighted sum of each token's expert outputs, added to the residual,
//
//   y[t, r] += sum_j w_j d[t k + j, r]      j = 0..k-1 in order
//
// skipping pairs routed to null experts (id >= n_real_experts); d comes from
// expert_ffn_down in GROUPED mode. The order and arithmetic are those of
// expert_ffn_down's decode mode, so both give the same bits.
//
// Bindings (group 0): see expert_ffn_common.wgsl (0 params, 2 routing), and
//   1  input   storage, read        array<f32>  d [n_pairs, H]
//   3  output  storage, read_write  array<f32>  y [tokens, H], added to
//
// Geometry: one thread per element of y, WG threads per workgroup; the
// element is (wid.y * num_workgroups.x + wid.x) * WG + lid; threads past
// tokens * H return.

#include "expert_ffn_common.wgsl"

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let element = (wid.y * nwg.x + wid.x) * WG + lid;
  let k = params.top_k;
  if (element >= (params.n_pairs / k) * params.hidden) {
    return;
  }
  let token = element / params.hidden;
  let row = element % params.hidden;
  var total = 0.0;
  for (var j = 0u; j < k; j++) {
    let pair = token * k + j;
    if (routed_expert(pair) < params.n_real_experts) {
      total += routed_weight(pair) * input[pair * params.hidden + row];
    }
  }
  output[element] += total;
}
