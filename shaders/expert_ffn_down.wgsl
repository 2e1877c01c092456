// expert_ffn_down.wgsl: second half of the gated expert FFN, the down
// projection of each routed pair's h (expert_ffn_gate_up's output):
//
//   d[p, r] = D[r] . h[p] + bd[r]          r in [0, H), D [H, F] row-major
//
// in the DECODER's block format, bd the expert's f32 bias (HAS_BIASES).
// Two modes:
//   decode (not GROUPED): one workgroup per (token, row block); for each of
//     the token's k pairs in order j = 0..k-1 it computes d[p, r] and adds
//     the weighted sum straight into the residual:
//       y[t, r] += sum_j w_j d[t k + j, r]     (skipping null/NO_SLAB pairs)
//   GROUPED (prefill): one workgroup per (group, row block): a tile of pairs
//     of one expert, each weight row decoded once; writes d[p, r] (zeros for
//     a NO_SLAB group) to `output` [n_pairs, H] for expert_ffn_combine.
// Both compute d[p, r] the same way (same lanes, same tree) and the weighted
// sum in the same order, so prefill and decode agree bit for bit.
//
// Bindings (group 0): see expert_ffn_common.wgsl (0 params, 2 routing) and
// expert_slabs.wgsl (3 slots, 5.. slabs), and
//   1  input   storage, read        array<f32>  h [n_pairs, F]
//   4  output  storage, read_write  array<f32>  decode: y [tokens, H], added to;
//                                               GROUPED: d [n_pairs, H]
//
// Geometry: WG threads in WG / TPR rows of TPR lanes; workgroup
// (wid.y * num_workgroups.x + wid.x) = (token or group) * row_blocks + row
// block. Lane l sums the 8-element groups l, l + TPR, ... of a row's dot
// product, then a tree over the lanes in workgroup memory, for all k pairs
// (decode) or the tile's pairs (GROUPED) at once.
//
// Overrides: those of expert_ffn_common.wgsl; PARTIALS (top_k for decode,
//            PAIR_TILE for GROUPED): sums kept per thread.
// Defines:   DECODER (string), the down format's decoder file; PAIR_TILE;
//            HAS_SLAB_1 .. HAS_SLAB_7.

#include DECODER
#include "expert_ffn_common.wgsl"
#include "expert_slabs.wgsl"

override PARTIALS: u32 = 8u;

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

// This lane's share of D[row] . h[pair] for the expert in `group`'s slot.
fn lane_dot(group: ExpertGroup, pair: u32, row: u32, lane: u32) -> f32 {
  slab_index = group.slab;
  let row_byte = group.base + params.down_offset + row * (params.ffn / QK) * QBYTES;
  let groups_per_block = QK / 8u;
  var sum = 0.0;
  for (var c = lane; c < params.ffn / 8u; c += TPR) {
    let w = dequant8(row_byte + (c / groups_per_block) * QBYTES, c % groups_per_block);
    sum += dot8(w, pair * params.ffn + 8u * c);
  }
  return sum;
}

// Sums partial[v * WG + lid] over the TPR lanes of each row, for v < count.
fn reduce_lanes(lid: u32, lane: u32, count: u32) {
  workgroupBarrier();
  for (var stride = TPR / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      for (var v = 0u; v < count; v++) {
        partial[v * WG + lid] += partial[v * WG + lid + stride];
      }
    }
    workgroupBarrier();
  }
}

fn with_bias(group: ExpertGroup, dot: f32, row: u32) -> f32 {
  if (HAS_BIASES) {
    slab_index = group.slab;
    return dot + slab_f32(group.base + params.down_bias_offset + 4u * row);
  }
  return dot;
}

// GROUPED: d for each pair of the workgroup's group, written to `output`.
fn project_group(linear: u32, row_blocks: u32, row: u32, lid: u32, lane: u32) {
  let group = expert_group(linear / row_blocks);
  let live = group.slab != NO_SLAB && row < params.hidden;
  var sums: array<f32, TILE>;
  if (live) {
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
    partial[i * WG + lid] = sums[i];
  }
  reduce_lanes(lid, lane, TILE);
  if (lane != 0u || row >= params.hidden) {
    return;
  }
  for (var i = 0u; i < TILE; i++) {
    if (i < group.count) {
      var d = 0.0;
      if (live) {
        d = with_bias(group, partial[i * WG + lid], row);
      }
      output[group_pair(group, i) * params.hidden + row] = d;
    }
  }
}

// Decode: the weighted sum over the token's k pairs, added to y.
fn project_token(linear: u32, row_blocks: u32, row: u32, lid: u32, lane: u32) {
  let k = params.top_k;
  let token = linear / row_blocks;
  let token_live = token * k < params.n_pairs && row < params.hidden;
  for (var j = 0u; j < k; j++) {
    let group = expert_group(token * k + j);
    var sum = 0.0;
    if (token_live && group.slab != NO_SLAB) {
      sum = lane_dot(group, token * k + j, row, lane);
    }
    partial[j * WG + lid] = sum;
  }
  reduce_lanes(lid, lane, k);
  if (lane != 0u || !token_live) {
    return;
  }
  var total = 0.0;
  for (var j = 0u; j < k; j++) {
    let group = expert_group(token * k + j);
    if (group.slab != NO_SLAB) {
      total += routed_weight(token * k + j) * with_bias(group, partial[j * WG + lid], row);
    }
  }
  output[token * params.hidden + row] += total;
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
  let row = (linear % row_blocks) * rows_per_group + lid / TPR;
  let lane = lid % TPR;
  if (GROUPED) {
    project_group(linear, row_blocks, row, lid, lane);
  } else {
    project_token(linear, row_blocks, row, lid, lane);
  }
}
