// quant_q4_0.wgsl: block decoder for Q4_0 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q4_0 block, 18 bytes, 32 elements (llama.cpp's block_q4_0):
//   bytes 0..1   d, IEEE half
//   bytes 2..17  qs[16], two 4-bit quants per byte
//   element j      = d * ((qs[j] & 0xf) - 8)   for j in 0..15 (low nibbles)
//   element j + 16 = d * ((qs[j] >> 4) - 8)    for j in 0..15 (high nibbles)
// So group g (elements 8g..8g+7) is the nibbles 4 (g / 2) of bytes
// qs[8 (g % 2) ..][0..8].
//
// Provides: QK = 32, QBYTES = 18,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..3.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 32u;
const QBYTES: u32 = 18u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let d = q_half_at(block_byte);
  let qs = q_u32x2(block_byte + 2u + 8u * (g & 1u));
  let shift = 4u * (g >> 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let q = (qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu;
    out[i] = d * f32(i32(q) - 8);
  }
  return out;
}
