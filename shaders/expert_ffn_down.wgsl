// expert_ffn_down.wgsl: second half of the gated expert FFN, the down
// projection of each routed pair's h (expert_ffn_gate_up's output):
//
//   d[p, r] = D[r] . h[p] + bd[r]          r in [0, H), D [H, F] row-major
//
// in the DECODER's block format, bd the expert's f32 bias (params.has_biases).
// Two shapes of work:
//   decode (MODE_PAIR_LIST, MODE_EXPERT_TABLE): one workgroup per (token,
//     row block); it computes d for the token's k pairs and adds the
//     weighted sum, in order j = 0..k-1, straight into the residual:
//       y[t, r] += sum_j w_j d[t k + j, r]     (skipping null/NO_SLAB pairs)
//   MODE_GROUPED (prefill): one workgroup per (group, row block): a tile of
//     pairs of one expert, each weight row decoded once; writes d[p, r]
//     (zeros for a NO_SLAB group) to `output` [n_pairs, H] for
//     expert_ffn_combine.
// Both compute d[p, r] the same way (same lanes, same tree) and the weighted
// sum in the same order, so prefill and decode agree bit for bit.
//
// Bindings (group 0): see expert_ffn_common.wgsl (0 params, 2 routing) and
// expert_slabs.wgsl (3 slots, 5.. slabs), and
//   1  input   storage, read        array<f32>  h [n_pairs, F]
//   4  output  storage, read_write  array<f32>  decode: y [tokens, H], added to;
//                                               MODE_GROUPED: d [n_pairs, H]
//
// Geometry: WG threads in WG / TPR rows of TPR lanes; workgroup
// (wid.y * num_workgroups.x + wid.x) = (token or group) * row_blocks + row
// block. A workgroup handles `sets` groups in turn (k single-pair groups for
// decode, one group of up to TILE pairs for MODE_GROUPED); lane l sums the
// 8-element groups l, l + TPR, ... of each dot product, then one tree over
// the lanes in workgroup memory reduces all sets * TILE sums at once.
//
// Overrides: WG, TPR (see expert_ffn_common.wgsl); PARTIALS >= max(k, TILE),
//            the sums kept per thread in workgroup memory.
// Defines:   DECODER (string), the down format's decoder file; PAIR_TILE,
//            pairs per group (1 outside MODE_GROUPED); HAS_SLAB_1 .. HAS_SLAB_7.

#include DECODER
#include "expert_ffn_common.wgsl"
#include "expert_slabs.wgsl"

override PARTIALS: u32 = 16u;

const TILE: u32 = PAIR_TILE;

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

var<workgroup> partial: array<f32, WG * PARTIALS>;

fn dot8(w: array<f32, 8>, first: u32) -> f32 {
  var sum = 0.0;
  for (var i = 0u; i < 8u; i++) {
    sum += w[i] * input[first + i];
  }
  return sum;
}

fn with_bias(group: ExpertGroup, dot: f32, row: u32) -> f32 {
  if (has_biases()) {
    slab_index = group.slab;
    return dot + slab_f32(group.base + params.down_bias_offset + 4u * row);
  }
  return dot;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows_per_group = WG / TPR;
  let row_blocks = (params.hidden + rows_per_group - 1u) / rows_per_group;
  let linear = wid.y * nwg.x + wid.x;
  let unit = linear / row_blocks;  // the group (MODE_GROUPED) or the token
  let row = (linear % row_blocks) * rows_per_group + lid / TPR;
  let lane = lid % TPR;
  let k = params.top_k;
  let sets = select(k, 1u, grouped());
  let row_live = row < params.hidden && (grouped() || unit * k < params.n_pairs);

  for (var s = 0u; s < sets; s++) {
    let group = expert_group(select(unit * k + s, unit, grouped()));
    // Zeroed explicitly: lavapipe kept the previous iteration's sums for a bare `var sums: ...;`.
    var sums = array<f32, TILE>();
    if (row_live && group.slab != NO_SLAB) {
      slab_index = group.slab;
      let row_byte = group.base + params.down_offset + row * (params.ffn / QK) * QBYTES;
      var h_base: array<u32, TILE>;
      for (var i = 0u; i < TILE; i++) {
        if (i < group.count) {
          h_base[i] = group_pair(group, i) * params.ffn;
        }
      }
      let groups_per_block = QK / 8u;
      for (var c = lane; c < params.ffn / 8u; c += TPR) {
        let w = dequant8(row_byte + (c / groups_per_block) * QBYTES, c % groups_per_block);
        for (var i = 0u; i < TILE; i++) {
          if (i < group.count) {
            sums[i] += dot8(w, h_base[i] + 8u * c);
          }
        }
      }
    }
    for (var i = 0u; i < TILE; i++) {
      partial[(s * TILE + i) * WG + lid] = sums[i];
    }
  }

  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      for (var v = 0u; v < sets * TILE; v++) {
        partial[v * WG + lid] += partial[v * WG + lid + stride];
      }
    }
    workgroupBarrier();
  }
  if (lane != 0u || !row_live) {
    return;
  }

  if (grouped()) {
    let group = expert_group(unit);
    for (var i = 0u; i < TILE; i++) {
      if (i < group.count) {
        var d = 0.0;
        if (group.slab != NO_SLAB) {
          d = with_bias(group, partial[i * WG + lid], row);
        }
        output[group_pair(group, i) * params.hidden + row] = d;
      }
    }
    return;
  }
  var total = 0.0;
  for (var j = 0u; j < k; j++) {
    let group = expert_group(unit * k + j);
    if (group.slab != NO_SLAB) {
      total += routed_weight(unit * k + j) * with_bias(group, partial[j * WG + lid], row);
    }
  }
  output[unit * params.hidden + row] += total;
}
