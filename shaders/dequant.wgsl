// dequant.wgsl: blocks of any weight format, at any byte offset, to f32 (or
// to f16 where the device has shader-f16), through the format's decoder.
//
//   dst[dst_offset + e] = element e of the blocks starting at src_offset_bytes
//
// Bindings (group 0):
//   0  params  uniform              Params { n_groups: u32, src_offset_bytes: u32, dst_offset: u32 }
//                                   n_groups = n_blocks * QK / 8
//   1  src     storage, read        array<u32>  the raw bytes as little-endian words; block b
//                                               starts at byte src_offset_bytes + QBYTES b
//   2  dst     storage, read_write  array<f32> (array<f16> with OUTPUT_F16)
//                                   [dst_offset + 8 n_groups], elements in order
//
// Geometry: one thread per group of 8 consecutive elements (one dequant8
// call), WG threads per workgroup. Group index = (wid.y * num_workgroups.x +
// wid.x) * WG + lid; threads past n_groups return.
//
// Overrides: WG, threads per workgroup (default 64).
// Defines:   DECODER (string), the decoder file, e.g. "quant_q4_k.wgsl";
//            OUTPUT_F16 (bool), write f16 (needs shader-f16). The f32 to f16
//            conversion rounds to nearest even on the devices tested.

#if OUTPUT_F16
enable f16;
#endif

#include DECODER

override WG: u32 = 64u;

struct Params {
  n_groups: u32,
  src_offset_bytes: u32,
  dst_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
#if OUTPUT_F16
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;
#else
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#endif

fn wload(word: u32) -> u32 {
  return src[word];
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let group = (wid.y * nwg.x + wid.x) * WG + lid;
  if (group >= params.n_groups) {
    return;
  }
  let groups_per_block = QK / 8u;
  let block_byte = params.src_offset_bytes + (group / groups_per_block) * QBYTES;
  let values = dequant8(block_byte, group % groups_per_block);
  let first = params.dst_offset + 8u * group;
  for (var i = 0u; i < 8u; i++) {
#if OUTPUT_F16
    dst[first + i] = f16(values[i]);
#else
    dst[first + i] = values[i];
#endif
  }
}
