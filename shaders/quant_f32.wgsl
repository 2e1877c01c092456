// quant_f32.wgsl: block decoder for F32 weights (see quant_common.wgsl for
// the decoder interface). Not a kernel: kernels #include it through the
// DECODER define.
//
// F32 has no blocks; eight consecutive values are treated as one 32-byte
// block so that every format shares the 8-element group interface:
//   element i of a block = the little-endian f32 at byte 4 i.
//
// Provides: QK = 8, QBYTES = 32,
//   fn dequant8(block_byte, g) -> array<f32, 8>: elements [8g, 8g + 8) of the
//   block starting at byte `block_byte` (any alignment); g is always 0 here.
// Needs: fn wload(word: u32) -> u32 from the including kernel.

#include "quant_common.wgsl"

const QK: u32 = 8u;
const QBYTES: u32 = 32u;

fn dequant8(block_byte: u32, g: u32) -> array<f32, 8> {
  var out: array<f32, 8>;
  for (var i = 0u; i < 8u; i++) {
    out[i] = bitcast<f32>(q_u32(block_byte + 4u * i));
  }
  return out;
}
