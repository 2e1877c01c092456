// quant_bf16.wgsl: block decoder for BF16 weights (see quant_common.wgsl for
// the decoder interface). Not a kernel: kernels #include it through the
// DECODER define.
//
// BF16 has no blocks; eight consecutive values are treated as one 16-byte
// block so that every format shares the 8-element group interface:
//   element i of a block = the little-endian bfloat16 at byte 2 i (the top
//   16 bits of an f32, so decoding is exact).
//
// Provides: QK = 8, QBYTES = 16,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment); g is always 0 here.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 8u;
const QBYTES: u32 = 16u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  var out: array<f32, 8>;
  for (var i = 0u; i < 4u; i++) {
    let pair = q_u32(block_byte + 4u * i);
    out[2u * i] = q_bf16(pair);
    out[2u * i + 1u] = q_bf16(pair >> 16u);
  }
  return out;
}
