// matvec.wgsl: matrix-vector product with the weights read in their stored
// block format (decode step):
//
//   y[y_offset + r] (+)= scale * sum_c W[r, c] * x[x_offset + c]    for r in 0..rows
//
// W [rows, cols] is row-major as GGUF stores it: row r starts at byte
// w_offset_bytes + r * (cols / QK) * QBYTES of the weight binding, and is
// decoded 8 elements at a time by the DECODER's dequant8; no dequantized copy
// is made. Products are accumulated in f32. With accumulate != 0 the result
// is added to y (a residual add) instead of replacing it; scale (1 for a
// plain product) multiplies the sum first (granite's residual and logit scales).
//
// Batched over heads and tokens (multi-head latent attention's per-head
// absorption), the same product runs for each token t and head h with
//   W_h at w_offset_bytes + h w_head_stride_bytes,
//   x at x_offset + t x_token_stride + h x_head_stride,
//   y at y_offset + t y_token_stride + h y_head_stride;
// n_heads = n_tokens = 1 is a plain product.
//
// Bindings (group 0):
//   0  params  uniform              Params { rows, cols, w_offset_bytes, x_offset, y_offset,
//                                   accumulate: u32, scale: f32, n_row_blocks, n_heads, n_tokens,
//                                   w_head_stride_bytes, x_head_stride, x_token_stride,
//                                   y_head_stride, y_token_stride }; cols a multiple of QK,
//                                   x offsets and strides multiples of 4
//   1  w       storage, read        array<u32>        raw weight bytes, little-endian words
//   2  x       storage, read        array<vec4<f32>>  [x_offset + cols] f32
//   3  y       storage, read_write  array<f32>        [y_offset + rows]
//
// Geometry: workgroups of WG threads, each computing ROWS consecutive rows
// with TPR = WG / ROWS threads per row. Thread `lane` of a row takes the
// row's 8-element groups lane, lane + TPR, ... (neighbouring threads read
// neighbouring weight bytes), sums its dot products, and a tree reduction in
// workgroup memory adds the TPR partial sums. The workgroup index is
// wid.y * num_workgroups.x + wid.x (the grid may be 2-D) = (token n_heads +
// head) n_row_blocks + row block; rows past the end are skipped, but their
// threads still take part in the barriers.
//
// Overrides: WG (threads per workgroup, default 64), ROWS (rows per
//            workgroup, default 2); WG / ROWS must be a power of two.
// Defines:   DECODER (string), the weights' decoder file, e.g. "quant_q4_k.wgsl".

#include DECODER

override WG: u32 = 64u;
override ROWS: u32 = 2u;
const GROUPS_PER_BLOCK: u32 = QK / 8u;

struct Params {
  rows: u32,
  cols: u32,
  w_offset_bytes: u32,
  x_offset: u32,
  y_offset: u32,
  accumulate: u32,
  scale: f32,
  n_row_blocks: u32,
  n_heads: u32,
  n_tokens: u32,
  w_head_stride_bytes: u32,
  x_head_stride: u32,
  x_token_stride: u32,
  y_head_stride: u32,
  y_token_stride: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

var<workgroup> partial_sums: array<f32, WG>;

fn wload(word: u32) -> u32 {
  return w[word];
}

// Dot product of the row's 8-element group `group` with the matching x values (x from element x_base).
fn group_dot(row_byte: u32, group: u32, x_base: u32) -> f32 {
  let v = dequant8(row_byte + (group / GROUPS_PER_BLOCK) * QBYTES, group % GROUPS_PER_BLOCK);
  let xi = x_base / 4u + 2u * group;
  return dot(vec4<f32>(v[0], v[1], v[2], v[3]), x[xi]) + dot(vec4<f32>(v[4], v[5], v[6], v[7]), x[xi + 1u]);
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tpr = WG / ROWS;
  let lane = lid % tpr;
  let linear = wid.y * nwg.x + wid.x;
  let head = (linear / params.n_row_blocks) % params.n_heads;
  let token = linear / (params.n_row_blocks * params.n_heads);
  // Uniform across the workgroup, so the barriers below stay in uniform control flow.
  if (token >= params.n_tokens) {
    return;
  }
  let row = (linear % params.n_row_blocks) * ROWS + lid / tpr;
  let x_base = params.x_offset + token * params.x_token_stride + head * params.x_head_stride;

  var sum = 0.0;
  if (row < params.rows) {
    let row_byte = params.w_offset_bytes + head * params.w_head_stride_bytes + row * (params.cols / QK) * QBYTES;
    let n_groups = params.cols / 8u;
    for (var group = lane; group < n_groups; group += tpr) {
      sum += group_dot(row_byte, group, x_base);
    }
  }
  partial_sums[lid] = sum;
  workgroupBarrier();
  for (var stride = tpr / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      partial_sums[lid] += partial_sums[lid + stride];
    }
    workgroupBarrier();
  }

  if (lane == 0u && row < params.rows) {
    let out = params.y_offset + token * params.y_token_stride + head * params.y_head_stride + row;
    let value = partial_sums[lid] * params.scale;
    if (params.accumulate != 0u) {
      y[out] += value;
    } else {
      y[out] = value;
    }
  }
}
