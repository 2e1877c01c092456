// quant_q4_1.wgsl: block decoder for Q4_1 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q4_1 block, 20 bytes, 32 elements (llama.cpp's block_q4_1):
//   bytes 0..1   d, IEEE half
//   bytes 2..3   m, IEEE half
//   bytes 4..19  qs[16], nibbles in Q4_0's order
//   element = d * q + m, q in 0..15 (the product is exact, so the single
//   rounding of the sum matches the CPU with or without a fused multiply-add)
//
// Provides: QK = 32, QBYTES = 20,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..3.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 32u;
const QBYTES: u32 = 20u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let dm = q_u32(block_byte);
  let d = q_half(dm);
  let m = q_half(dm >> 16u);
  let qs = q_u32x2(block_byte + 4u + 8u * (g & 1u));
  let shift = 4u * (g >> 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let q = (qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu;
    out[i] = d * f32(q) + m;
  }
  return out;
}
