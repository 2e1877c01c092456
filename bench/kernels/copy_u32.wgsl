// copy_u32.wgsl: the benchmark's compute roofline: a trivial kernel that
// copies words, dst[i] = src[i] for i in 0..words, so its speed is what a
// compute dispatch reading and writing memory at full coalescing reaches.
//
// Bindings (group 0):
//   0  params  uniform              Params { words: u32 }
//   1  src     storage, read        array<u32>  [words]
//   2  dst     storage, read_write  array<u32>  [words]; must not alias src
//
// Geometry: one word per thread, WG threads per workgroup; the grid may be
// 2-D past maxComputeWorkgroupsPerDimension: thread i is
// (wid.y * num_workgroups.x + wid.x) * WG + lid.x, and threads past `words`
// return.
//
// Overrides: WG, threads per workgroup (default 256).

override WG: u32 = 256u;

struct Params {
  words: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let i = (wid.y * groups.x + wid.x) * WG + lid.x;
  if (i >= params.words) {
    return;
  }
  dst[i] = src[i];
}
