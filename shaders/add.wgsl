// add.wgsl: element-wise residual add of f32 vectors of any length.
//
//   y[i] = a[i] + scale * b[i]     (out of place)
//   y[i] = y[i] + scale * b[i]     (IN_PLACE: y is read and written)
//
// With scale = 1 the result is exactly a + b (1 * b is exact). WebGPU does
// not allow one buffer bound both read-only and writable, hence the in-place
// variant rather than y aliasing a.
//
// Bindings (group 0):
//   0  params  uniform              Params { n: u32, scale: f32 }
//   1  y       storage, read_write  array<f32>  [n]
//   2  b       storage, read        array<f32>  [n]
//   3  a       storage, read        array<f32>  [n]; only without IN_PLACE
//
// Geometry: one thread per element, WG threads per workgroup; the element is
// (wid.y * num_workgroups.x + wid.x) * WG + lid; threads past n return.
//
// Overrides: WG, threads per workgroup (default 64).
// Defines:   IN_PLACE (bool).

override WG: u32 = 64u;

struct Params {
  n: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
#if !IN_PLACE
@group(0) @binding(3) var<storage, read> a: array<f32>;
#endif

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= params.n) {
    return;
  }
#if IN_PLACE
  y[i] = y[i] + params.scale * b[i];
#else
  y[i] = a[i] + params.scale * b[i];
#endif
}
