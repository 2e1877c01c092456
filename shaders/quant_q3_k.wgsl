// quant_q3_k.wgsl: block decoder for Q3_K (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q3_K super-block, 110 bytes, 256 elements (llama.cpp's block_q3_K):
//   bytes 0..31    hmask[32]: bit e / 32 of hmask[e % 32] is element e's
//                  third bit; a CLEAR bit subtracts 4
//   bytes 32..95   qs[64]: low 2 bits, laid out as Q2_K's
//   bytes 96..107  scales[12]: sixteen 6-bit scales (stored + 32); scale j has
//                  its low 4 bits in the low (j < 8) or high nibble of byte
//                  j % 8, its top 2 bits in bit pair j / 4 of byte 8 + j % 4
//   bytes 108..109 d, IEEE half
//   element e = (d * scale) * q, q in -4..3, sub-block e / 16 (exact)
//
// Provides: QK = 256, QBYTES = 110,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 110u;

// Signed scale of sub-block j (0..15) from the 12 packed bytes at `byte`.
fn q_q3k_scale(byte: u32, j: u32) -> i32 {
  let low = (q_u8(byte + (j & 7u)) >> (4u * (j >> 3u))) & 0xfu;
  let high = (q_u8(byte + 8u + (j & 3u)) >> (2u * (j >> 2u))) & 3u;
  return i32(low | (high << 4u)) - 32;
}

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let dl = q_half_at(block_byte + 108u) * f32(q_q3k_scale(block_byte + 96u, g >> 1u));
  let lows = q_u32x2(block_byte + 32u + 32u * (g >> 4u) + 8u * (g & 3u));
  let low_shift = 2u * ((g >> 2u) & 3u);
  let highs = q_u32x2(block_byte + 8u * (g & 3u));
  let high_shift = g >> 2u;
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let bit = 8u * (i % 4u);
    let low = (lows[i / 4u] >> (bit + low_shift)) & 3u;
    let high_set = (highs[i / 4u] >> (bit + high_shift)) & 1u;
    out[i] = dl * f32(i32(low) - select(4, 0, high_set == 1u));
  }
  return out;
}
