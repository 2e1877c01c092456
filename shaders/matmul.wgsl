// matmul.wgsl: matrix product with the weights read in their stored block
// format (prefill), for n tokens at once:
//
//   Y[t, r] (+)= scale * sum_c W[r, c] * X[t, c]    for t in 0..tokens, r in 0..rows
//
// W [rows, cols] is row-major as GGUF stores it: row r starts at byte
// w_offset_bytes + r * (cols / QK) * QBYTES of the weight binding, decoded 8
// elements at a time by the DECODER's dequant8. Each workgroup decodes every
// weight group of its rows ONCE per tile of TILE tokens and uses it for all
// of them. Products are accumulated in f32. With accumulate != 0 the result
// is added to Y (a residual add) instead of replacing it; scale (1 for a
// plain product) multiplies the sum first (granite's residual and logit scales).
//
// Bindings (group 0):
//   0  params  uniform              Params { rows, cols, tokens, w_offset_bytes, x_offset,
//                                   y_offset, accumulate, row_groups: u32, scale: f32, y_stride: u32 };
//                                   cols a multiple of QK, x_offset a multiple of 4,
//                                   row_groups = ceil(rows / ROWS), y_stride >= rows
//   1  w       storage, read        array<u32>        raw weight bytes, little-endian words
//   2  x       storage, read        array<vec4<f32>>  X [tokens, cols] f32, row-major, from x_offset
//   3  y       storage, read_write  array<f32>        Y [tokens, rows] f32, row-major, from y_offset,
//                                                     token t's row at y_offset + t y_stride (y_stride = rows
//                                                     for a dense Y; more for a column slice of a wider Y)
//
// Geometry: workgroups of WG threads, each computing ROWS consecutive rows
// for a tile of TILE consecutive tokens, with TPR = WG / ROWS threads per row.
// The workgroup index i = wid.y * num_workgroups.x + wid.x (the grid may be
// 2-D) picks row group i % row_groups and token tile i / row_groups;
// workgroups past the last tile return. The columns are walked in chunks of
// TPR * 8: the workgroup first copies X[tile tokens, chunk] into workgroup
// memory (zeros past the last token), then thread `lane` of a row decodes the
// chunk's 8-element group `lane` and multiplies it into TILE running sums.
// At the end the TPR partial sums of each (token, row) are added in order
// by one thread.
//
// Workgroup memory: TILE * TPR * 32 bytes (X chunk) + TILE * WG * 4 bytes.
// Overrides: WG (threads per workgroup, default 64), ROWS (rows per workgroup,
//            default 4); WG must be a multiple of ROWS.
// Defines:   DECODER (string), the weights' decoder file, e.g. "quant_q4_k.wgsl";
//            TILE_TOKENS (number), tokens per tile (a private array's size,
//            which must be a compile-time constant, so not an override).

#include DECODER

override WG: u32 = 64u;
override ROWS: u32 = 4u;
const TILE: u32 = TILE_TOKENS;
const GROUPS_PER_BLOCK: u32 = QK / 8u;

struct Params {
  rows: u32,
  cols: u32,
  tokens: u32,
  w_offset_bytes: u32,
  x_offset: u32,
  y_offset: u32,
  accumulate: u32,
  row_groups: u32,
  scale: f32,
  y_stride: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// X[t0 + t, c0 + 4 v .. c0 + 4 v + 4] at [t * 2 TPR + v]: one column chunk of the tile.
var<workgroup> x_chunk: array<vec4<f32>, TILE * (WG / ROWS) * 2u>;
// Thread lid's running sum for token t at [t * WG + lid].
var<workgroup> partial_sums: array<f32, TILE * WG>;

fn wload(word: u32) -> u32 {
  return w[word];
}

// Copies X[t0 .. t0 + TILE, c0 .. c0 + 8 TPR] into x_chunk, zeros outside X.
fn load_x_chunk(lid: u32, t0: u32, n_tokens: u32, c0: u32) {
  let chunk_vec4s = (WG / ROWS) * 2u;
  let row_vec4s = params.cols / 4u;
  for (var i = lid; i < TILE * chunk_vec4s; i += WG) {
    let t = i / chunk_vec4s;
    let col_vec4 = c0 / 4u + i % chunk_vec4s;
    var value = vec4<f32>(0.0);
    if (t < n_tokens && col_vec4 < row_vec4s) {
      value = x[params.x_offset / 4u + (t0 + t) * row_vec4s + col_vec4];
    }
    x_chunk[i] = value;
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tpr = WG / ROWS;
  let lane = lid % tpr;
  let index = wid.y * nwg.x + wid.x;
  let row_group = index % params.row_groups;
  let t0 = (index / params.row_groups) * TILE;
  // Uniform across the workgroup, so the barriers below stay in uniform control flow.
  if (t0 >= params.tokens) {
    return;
  }
  let n_tokens = min(TILE, params.tokens - t0);
  let row = row_group * ROWS + lid / tpr;
  let row_byte = params.w_offset_bytes + row * (params.cols / QK) * QBYTES;
  let n_groups = params.cols / 8u;
  let chunk_vec4s = tpr * 2u;

  var sums: array<f32, TILE>;
  for (var c0 = 0u; c0 < params.cols; c0 += tpr * 8u) {
    load_x_chunk(lid, t0, n_tokens, c0);
    workgroupBarrier();
    let group = c0 / 8u + lane;
    if (row < params.rows && group < n_groups) {
      let v = dequant8(row_byte + (group / GROUPS_PER_BLOCK) * QBYTES, group % GROUPS_PER_BLOCK);
      let low = vec4<f32>(v[0], v[1], v[2], v[3]);
      let high = vec4<f32>(v[4], v[5], v[6], v[7]);
      for (var t = 0u; t < TILE; t++) {
        let xi = t * chunk_vec4s + 2u * lane;
        sums[t] += dot(low, x_chunk[xi]) + dot(high, x_chunk[xi + 1u]);
      }
    }
    workgroupBarrier();
  }

  for (var t = 0u; t < TILE; t++) {
    partial_sums[t * WG + lid] = sums[t];
  }
  workgroupBarrier();
  for (var o = lid; o < ROWS * TILE; o += WG) {
    let local_row = o / TILE;
    let t = o % TILE;
    let out_row = row_group * ROWS + local_row;
    if (out_row < params.rows && t < n_tokens) {
      var sum = 0.0;
      for (var j = 0u; j < tpr; j++) {
        sum += partial_sums[t * WG + local_row * tpr + j];
      }
      let out = params.y_offset + (t0 + t) * params.y_stride + out_row;
      if (params.accumulate != 0u) {
        y[out] += sum * params.scale;
      } else {
        y[out] = sum * params.scale;
      }
    }
  }
}
