// quant_q5_1.wgsl: block decoder for Q5_1 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q5_1 block, 24 bytes, 32 elements (llama.cpp's block_q5_1):
//   bytes 0..1   d, IEEE half
//   bytes 2..3   m, IEEE half
//   bytes 4..7   qh, little-endian u32: bit j is the fifth bit of element j
//   bytes 8..23  qs[16], low 4 bits in Q4_0's nibble order
//   element j = d * (nibble | (qh bit j) << 4) + m   (exact product, one rounding)
//
// Provides: QK = 32, QBYTES = 24,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..3.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 32u;
const QBYTES: u32 = 24u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let dm = q_u32(block_byte);
  let d = q_half(dm);
  let m = q_half(dm >> 16u);
  let fifth_bits = q_u32(block_byte + 4u) >> (8u * g);
  let qs = q_u32x2(block_byte + 8u + 8u * (g & 1u));
  let shift = 4u * (g >> 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let low = (qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu;
    let q = low | (((fifth_bits >> i) & 1u) << 4u);
    out[i] = d * f32(q) + m;
  }
  return out;
}
