// expert_ffn_gate_up.wgsl: first half of the gated expert FFN. For every
// routed pair p (token t, its j-th expert) of the work it is given:
//
//   h[p, r] = act(G[r] . x[t] + bg[r], U[r] . x[t] + bu[r])     r in [0, F)
//
// with G, U [F, H] the expert's gate and up matrices (row-major, in the
// DECODER's block format, read from its slot) and bg, bu its f32 biases
// (params.has_biases). Activations (params.activation): SiLU,
// g / (1 + exp(-g)) * u; GELU (tanh approximation) * u; gpt-oss's SwiGLU:
// g' = min(g, limit), u' = clamp(u, -limit, limit),
// g' / (1 + exp(-alpha g')) * (u' + 1). Pairs of null experts or NO_SLAB
// slots are not written.
//
// Bindings (group 0): see expert_ffn_common.wgsl (0 params, 2 routing) and
// expert_slabs.wgsl (3 slots, 5.. slabs), and
//   1  input  storage, read        array<f32>  x [tokens, H]
//   4  h      storage, read_write  array<f32>  [n_pairs, F]
//
// Geometry: one workgroup per (group, block of WG / TPR / 2 rows r): a group
// is one pair (decode) or up to TILE pairs of one expert (MODE_GROUPED), so
// each weight row is decoded once for all the tile's tokens. The WG / TPR
// "virtual rows" of a workgroup alternate gate row r, up row r, gate row
// r + 1, ... (one decoder call site: the decoder is inlined once, which
// halves compile time on software adapters). Workgroup (wid.y *
// num_workgroups.x + wid.x) = group * row_blocks + row block. In a virtual
// row, lane l of TPR sums the 8-element groups l, l + TPR, ... of the dot
// product (in element order within each), then a tree over the lanes in
// workgroup memory; the gate row's lane 0 applies the activation.
//
// Overrides: WG, TPR (see expert_ffn_common.wgsl; WG / TPR >= 2).
// Defines:   DECODER (string), the gate/up format's decoder file; PAIR_TILE,
//            pairs per group (1 outside MODE_GROUPED); HAS_SLAB_1 .. HAS_SLAB_7.

#include DECODER
#include "expert_ffn_common.wgsl"
#include "expert_slabs.wgsl"

const TILE: u32 = PAIR_TILE;
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_COEF_A: f32 = 0.044715;

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read_write> h: array<f32>;

// Per thread: one partial dot product per pair of the tile.
var<workgroup> partial: array<f32, WG * TILE>;

fn dot8(w: array<f32, 8>, first: u32) -> f32 {
  var sum = 0.0;
  for (var i = 0u; i < 8u; i++) {
    sum += w[i] * input[first + i];
  }
  return sum;
}

fn activate(gate: f32, up: f32) -> f32 {
  switch params.activation {
    case ACTIVATION_GELU: {
      // tanh's argument is clamped: some tanh implementations overflow to NaN
      // past |x| ~ 44, and tanh(10) is already 1 in f32.
      let inner = clamp(SQRT_2_OVER_PI * gate * (1.0 + GELU_COEF_A * gate * gate), -10.0, 10.0);
      return 0.5 * gate * (1.0 + tanh(inner)) * up;
    }
    case ACTIVATION_SWIGLU_OAI: {
      let g = min(gate, params.oai_limit);
      let u = clamp(up, -params.oai_limit, params.oai_limit);
      return g / (1.0 + exp(-params.oai_alpha * g)) * (u + 1.0);
    }
    default: {
      return gate / (1.0 + exp(-gate)) * up;
    }
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows_per_group = WG / TPR / 2u;
  let row_blocks = (params.ffn + rows_per_group - 1u) / rows_per_group;
  let linear = wid.y * nwg.x + wid.x;
  let group = expert_group(linear / row_blocks);
  let virtual_row = lid / TPR;
  let is_up = (virtual_row & 1u) == 1u;
  let row = (linear % row_blocks) * rows_per_group + virtual_row / 2u;
  let lane = lid % TPR;
  let live = group.slab != NO_SLAB && row < params.ffn;

  var sums = array<f32, TILE>();
  if (live) {
    slab_index = group.slab;
    let row_bytes = (params.hidden / QK) * QBYTES;
    let row_byte = group.base + select(params.gate_offset, params.up_offset, is_up) + row * row_bytes;
    var x_base: array<u32, TILE>;
    for (var i = 0u; i < TILE; i++) {
      if (i < group.count) {
        x_base[i] = (group_pair(group, i) / params.top_k) * params.hidden;
      }
    }
    let groups_per_block = QK / 8u;
    for (var c = lane; c < params.hidden / 8u; c += TPR) {
      let w = dequant8(row_byte + (c / groups_per_block) * QBYTES, c % groups_per_block);
      for (var i = 0u; i < TILE; i++) {
        if (i < group.count) {
          sums[i] += dot8(w, x_base[i] + 8u * c);
        }
      }
    }
  }

  for (var i = 0u; i < TILE; i++) {
    partial[i * WG + lid] = sums[i];
  }
  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      for (var i = 0u; i < TILE; i++) {
        partial[i * WG + lid] += partial[i * WG + lid + stride];
      }
    }
    workgroupBarrier();
  }

  if (!live || lane != 0u || is_up) {
    return;
  }
  for (var i = 0u; i < TILE; i++) {
    if (i < group.count) {
      // The up row's sums sit one virtual row (TPR threads) further on.
      var gate = partial[i * WG + lid];
      var up = partial[i * WG + lid + TPR];
      if (has_biases()) {
        gate += slab_f32(group.base + params.gate_bias_offset + 4u * row);
        up += slab_f32(group.base + params.up_bias_offset + 4u * row);
      }
      h[group_pair(group, i) * params.ffn + row] = activate(gate, up);
    }
  }
}
