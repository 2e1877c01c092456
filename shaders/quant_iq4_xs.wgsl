// quant_iq4_xs.wgsl: block decoder for IQ4_XS (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// IQ4_XS super-block, 136 bytes, 256 elements (llama.cpp's block_iq4_xs):
//   bytes 0..1    d, IEEE half
//   bytes 2..3    scales_h u16: bit pair s is the top 2 bits of sub-block s's
//                 6-bit scale
//   bytes 4..7    scales_l[4]: nibble s % 2 of scales_l[s / 2] is its low
//                 4 bits
//   bytes 8..135  qs[128]: sub-block s = e / 32 is coded as an IQ4_NL block's
//                 codes in qs[16s..16s + 16]
//   element = d * (scale - 32) * kvalues_iq4nl[code] (Q_KVALUES_IQ4NL in
//   quant_iq_common.wgsl), exact.
//
// Provides: QK = 256, QBYTES = 136,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_iq_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 136u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let s = g >> 2u;
  let low = (q_u8(block_byte + 4u + (s >> 1u)) >> (4u * (s & 1u))) & 0xfu;
  let high = (q_u16(block_byte + 2u) >> (2u * s)) & 3u;
  let dl = q_half_at(block_byte) * f32(i32(low | (high << 4u)) - 32);
  let qs = q_u32x2(block_byte + 8u + 16u * s + 8u * (g & 1u));
  let shift = 4u * ((g >> 1u) & 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = dl * Q_KVALUES_IQ4NL[(qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu];
  }
  return out;
}
