// dequant_q4_0.wgsl: Q4_0 blocks to f32.
//
// Q4_0 block, 18 bytes, 32 elements (llama.cpp's block_q4_0):
//   bytes 0..1   d, the scale, IEEE half, little-endian
//   bytes 2..17  qs[16], two 4-bit quants per byte
//   element j      = d * ((qs[j] & 0xf) - 8)   for j in 0..15 (low nibbles)
//   element j + 16 = d * ((qs[j] >> 4) - 8)    for j in 0..15 (high nibbles)
//
// Bindings (group 0):
//   0  params  uniform              Params { n_blocks: u32, src_offset_bytes: u32, dst_offset: u32 }
//   1  src     storage, read        array<u32>  the raw bytes, little-endian words; block b starts
//                                               at byte src_offset_bytes + 18 b
//   2  dst     storage, read_write  array<f32>  [dst_offset + 32 n_blocks]; element e of the
//                                               input goes to dst[dst_offset + e]
//
// Blocks are 18 bytes, so they are not 4-byte aligned: every byte is read
// through the u32 word holding it (shift and mask), at any byte offset.
// The scale is decoded from its bits in full (subnormals included), so the
// result is exact: a half times an integer of magnitude <= 8 fits in f32.
//
// Geometry: one thread per output element, WG threads per workgroup; the
// element is (wid.y * num_workgroups.x + wid.x) * WG + lid, and threads past
// 32 n_blocks return.
//
// Overrides: WG, threads per workgroup (default 64).

override WG: u32 = 64u;

const BLOCK_ELEMENTS: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;
const QS_OFFSET: u32 = 2u;

struct Params {
  n_blocks: u32,
  src_offset_bytes: u32,
  dst_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn read_byte(byte_index: u32) -> u32 {
  return (src[byte_index / 4u] >> ((byte_index % 4u) * 8u)) & 0xffu;
}

fn read_u16(byte_index: u32) -> u32 {
  return read_byte(byte_index) | (read_byte(byte_index + 1u) << 8u);
}

// IEEE half bits to f32, exactly (unpack2x16float may flush subnormals).
fn half_to_f32(bits: u32) -> f32 {
  let sign = (bits & 0x8000u) << 16u;
  let exponent = (bits >> 10u) & 0x1fu;
  let mantissa = bits & 0x3ffu;
  if (exponent == 0u) {
    let magnitude = f32(mantissa) * 5.9604644775390625e-8; // mantissa * 2^-24
    return select(magnitude, -magnitude, sign != 0u);
  }
  if (exponent == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
  }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let element = (wid.y * nwg.x + wid.x) * WG + lid;
  if (element >= params.n_blocks * BLOCK_ELEMENTS) {
    return;
  }
  let block_start = params.src_offset_bytes + (element / BLOCK_ELEMENTS) * BLOCK_BYTES;
  let d = half_to_f32(read_u16(block_start));
  let j = element % BLOCK_ELEMENTS;
  let packed = read_byte(block_start + QS_OFFSET + j % 16u);
  let nibble = select(packed & 0xfu, packed >> 4u, j >= 16u);
  dst[params.dst_offset + element] = d * f32(i32(nibble) - 8);
}
