// quant_tq2_0.wgsl: block decoder for TQ2_0 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// TQ2_0 super-block, 66 bytes, 256 elements (llama.cpp's block_tq2_0):
//   bytes 0..63   qs[64]: element e is bit pair (e / 32) % 4 of
//                 qs[32 (e / 128) + e % 32], q in 0..3
//   bytes 64..65  d, IEEE half
//   element = (q - 1) * d, exact.
//
// Provides: QK = 256, QBYTES = 66,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 66u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let d = q_half_at(block_byte + 64u);
  let qs = q_u32x2(block_byte + 32u * (g >> 4u) + 8u * (g & 3u));
  let shift = 2u * ((g >> 2u) & 3u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = f32(i32((qs[i / 4u] >> (8u * (i % 4u) + shift)) & 3u) - 1) * d;
  }
  return out;
}
