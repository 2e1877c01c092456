// quant_q8_k.wgsl: block decoder for Q8_K (see quant_common.wgsl for the
// decoder interface). Not a kernel: kernels #include it through the DECODER
// define.
//
// Q8_K super-block, 292 bytes, 256 elements (llama.cpp's block_q8_K):
//   bytes 0..3     d, little-endian f32
//   bytes 4..259   qs[256], int8
//   bytes 260..291 bsums[16], int16 sums of 16 quants (for dot products; unused)
//   element e = d * qs[e]   (rounded once, as the CPU's store to f32 rounds it)
//
// Provides: QK = 256, QBYTES = 292,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment), g in 0..31.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 256u;
const QBYTES: u32 = 292u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  let d = bitcast<f32>(q_u32(block_byte));
  let qs = q_u32x2(block_byte + 4u + 8u * g);
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = d * f32(q_i8_of(qs[i / 4u], i % 4u));
  }
  return out;
}
