// quant_q2_k.wgsl: block decoder for Q2_K (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q2_K super-block, 84 bytes, 256 elements (llama.cpp's block_q2_K):
//   bytes 0..15   scales[16]: low nibble scale, high nibble min, of the
//                 16-element sub-block e / 16
//   bytes 16..79  qs[64]: element e is bit pair (e / 32) % 4 of
//                 qs[32 (e / 128) + e % 32]
//   bytes 80..81  d, IEEE half;  bytes 82..83  dmin, IEEE half
//   element e = (d * scale) * q - (dmin * min); both products exact, so the
//   one rounding is the subtraction's, as on the CPU.
//
// Provides: QK = 256, QBYTES = 84,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 84u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let dd = q_u32(block_byte + 80u);
  let sc = q_u8(block_byte + (g >> 1u));
  let dl = q_half(dd) * f32(sc & 0xfu);
  let ml = q_half(dd >> 16u) * f32(sc >> 4u);
  let qs = q_u32x2(block_byte + 16u + 32u * (g >> 4u) + 8u * (g & 3u));
  let shift = 2u * ((g >> 2u) & 3u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let q = (qs[i / 4u] >> (8u * (i % 4u) + shift)) & 3u;
    out[i] = dl * f32(q) - ml;
  }
  return out;
}
