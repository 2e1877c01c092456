// quant_iq4_nl.wgsl: block decoder for IQ4_NL (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ4_NL block, 18 bytes, 32 elements (llama.cpp's block_iq4_nl):
//   bytes 0..1   d, IEEE half
//   bytes 2..17  qs[16], 4-bit codes in Q4_0's nibble order (element j < 16
//                the low nibble of qs[j], element j + 16 its high nibble)
//   element = d * kvalues_iq4nl[code] (Q_KVALUES_IQ4NL in
//   quant_iq_common.wgsl), exact.
//
// Provides: QK = 32, QBYTES = 18,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..3.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"

const QK: u32 = 32u;
const QBYTES: u32 = 18u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let d = q_half_at(block_byte);
  let qs = q_u32x2(block_byte + 2u + 8u * (g & 1u));
  let shift = 4u * (g >> 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = d * Q_KVALUES_IQ4NL[(qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu];
  }
  return out;
}
