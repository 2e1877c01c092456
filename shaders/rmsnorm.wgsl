// rmsnorm.wgsl: RMS normalisation of each row of a matrix, optionally scaled
// by a per-column weight:
//
//   y[r, i] = x[r, i] / sqrt(mean_i(x[r, i]^2) + eps) * w[i]
//
// Bindings (group 0):
//   0  params  uniform              Params { rows, cols, eps: f32, x_stride, y_stride, y_offset }
//   1  x       storage, read        array<f32>  row r at r x_stride, cols long
//   2  y       storage, read_write  array<f32>  row r at y_offset + r y_stride; must not alias x
// (x_stride = y_stride = cols and y_offset = 0 for a plain matrix; a latent
// attention cache normalises the first columns of wider rows into the
// cache's rows.)
//   3  w       storage, read        array<f32>  [cols]; only when HAS_WEIGHT
//
// Geometry: one workgroup per row, WG threads each. The grid may be 2-D when
// rows exceed maxComputeWorkgroupsPerDimension: the row is
// wid.y * num_workgroups.x + wid.x, and workgroups past the last row return.
// Thread t sums the squares of columns t, t + WG, t + 2 WG, ... (so any cols
// works, multiple of WG or not), then a tree reduction in workgroup memory
// gives the row's sum.
//
// Overrides: WG, threads per workgroup, a power of two (default 64).
// Defines:   HAS_WEIGHT (bool), whether binding 3 exists and scales the output.

override WG: u32 = 64u;

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  x_stride: u32,
  y_stride: u32,
  y_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
#if HAS_WEIGHT
@group(0) @binding(3) var<storage, read> w: array<f32>;
#endif

var<workgroup> partial_sums: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.y * nwg.x + wid.x;
  // Uniform across the workgroup, so the barriers below stay in uniform control flow.
  if (row >= params.rows) {
    return;
  }
  let base = row * params.x_stride;
  let out = params.y_offset + row * params.y_stride;

  var sum_sq = 0.0;
  for (var i = lid; i < params.cols; i += WG) {
    let v = x[base + i];
    sum_sq += v * v;
  }
  partial_sums[lid] = sum_sq;
  workgroupBarrier();

  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial_sums[lid] += partial_sums[lid + stride];
    }
    workgroupBarrier();
  }

  let scale = 1.0 / sqrt(partial_sums[0] / f32(params.cols) + params.eps);
  for (var i = lid; i < params.cols; i += WG) {
#if HAS_WEIGHT
    y[out + i] = x[base + i] * scale * w[i];
#else
    y[out + i] = x[base + i] * scale;
#endif
  }
}
