// quant_q8_0.wgsl: block decoder for Q8_0 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q8_0 block, 34 bytes, 32 elements (llama.cpp's block_q8_0):
//   bytes 0..1   d, IEEE half
//   bytes 2..33  qs[32], int8
//   element j = d * qs[j]   (exact in f32: 11 + 8 significant bits)
//
// Provides: QK = 32, QBYTES = 34,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..3.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 32u;
const QBYTES: u32 = 34u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let d = q_half_at(block_byte);
  let qs = q_u32x2(block_byte + 2u + 8u * g);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = d * f32(q_i8_of(qs[i / 4u], i % 4u));
  }
  return out;
}
