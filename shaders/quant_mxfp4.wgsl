// quant_mxfp4.wgsl: block decoder for MXFP4 (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// MXFP4 block, 17 bytes, 32 elements (llama.cpp's block_mxfp4):
//   byte 0       e, an E8M0 shared exponent
//   bytes 1..16  qs[16], 4-bit E2M1 codes in Q4_0's nibble order
//   element = E2M1(code) * 2^(e - 127), computed as in ggml from the DOUBLED
//   E2M1 value (an integer) times 2^(e - 128); exact unless the result is an
//   f32 subnormal.
//
// Provides: QK = 32, QBYTES = 17,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..3.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 32u;
const QBYTES: u32 = 17u;

// E2M1 values indexed by code, doubled: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and negatives.
const Q_E2M1_DOUBLED = array<f32, 16>(
  0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0,
  0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0,
);

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let scale = q_e8m0_half(q_u8(block_byte));
  let qs = q_u32x2(block_byte + 1u + 8u * (g & 1u));
  let shift = 4u * (g >> 1u);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let code = (qs[i / 4u] >> (8u * (i % 4u) + shift)) & 0xfu;
    out[i] = Q_E2M1_DOUBLED[code] * scale;
  }
  return out;
}
