// quant_common.wgsl: readers shared by the block-format decoders
// (quant_<format>.wgsl). Not a kernel: it is #include'd by the decoders.
//
// The decoder interface. A kernel that reads weights writes `#include DECODER`
// (the define naming e.g. "quant_q4_k.wgsl") and defines
//   fn wload(word: u32) -> u32
// returning little-endian 32-bit word number `word` of the weight bytes (so a
// kernel may read one buffer, or pick among slab buffers, without the
// decoder knowing). Every decoder then provides
//   const QK: u32       elements per block (8 for f32/f16/bf16, whose
//                       decoders treat 8 consecutive values as a block)
//   const QBYTES: u32   bytes per block
//   fn dequant8(block_byte: u32, g: u32) -> array<f32, 8>
//                       elements [8g, 8g + 8) of the block starting at byte
//                       `block_byte` (any alignment), g in [0, QK / 8),
//                       equal bit for bit to src/quant's CPU dequantisation.
// A row-major matrix [rows][cols] (cols a multiple of QK) has row r at byte
// base + r * (cols / QK) * QBYTES. Only one decoder can be included per shader.
//
// Byte addresses below are byte indices into wload's little-endian byte
// stream, at any alignment. A read never touches a word past the one holding
// the last byte it needs.
//
// Names declared here and in the decoders start with `q_` (besides the
// decoder interface QK, QBYTES and dequant8), so kernels must not use that
// prefix for their own declarations.
//
// Float decoding is exact, from the bits, subnormals included: the built-in
// unpack2x16float may flush f16 subnormals to zero, which would break bit
// equality with the CPU reference.

// The little-endian u32 that starts at byte `byte`, at any alignment.
fn q_u32(byte: u32) -> u32 {
  let word = byte >> 2u;
  let shift = (byte & 3u) * 8u;
  let low = wload(word);
  if (shift == 0u) {
    return low;
  }
  // A shift by 32 is not a no-op in WGSL, hence the aligned case above.
  return (low >> shift) | (wload(word + 1u) << (32u - shift));
}

fn q_u8(byte: u32) -> u32 {
  return (wload(byte >> 2u) >> ((byte & 3u) * 8u)) & 0xffu;
}

// The little-endian u16 at byte `byte`; one word read unless it straddles two.
fn q_u16(byte: u32) -> u32 {
  if ((byte & 3u) == 3u) {
    return q_u8(byte) | (q_u8(byte + 1u) << 8u);
  }
  return (wload(byte >> 2u) >> ((byte & 3u) * 8u)) & 0xffffu;
}

// Byte k (0..3) of `word`, unsigned.
fn q_byte_of(word: u32, k: u32) -> u32 {
  return (word >> (8u * k)) & 0xffu;
}

// Byte k (0..3) of `word`, sign-extended as an int8.
fn q_i8_of(word: u32, k: u32) -> i32 {
  return bitcast<i32>(word << (24u - 8u * k)) >> 24u;
}

// The eight bytes starting at byte `byte` (any alignment), as two words:
// byte i of the eight is q_byte_of(words[i / 4], i % 4).
fn q_u32x2(byte: u32) -> vec2<u32> {
  return vec2<u32>(q_u32(byte), q_u32(byte + 4u));
}

// IEEE binary16 bits (low 16 bits of `bits`) to f32, exactly.
fn q_half(bits: u32) -> f32 {
  let sign = (bits & 0x8000u) << 16u;
  let exponent = (bits >> 10u) & 0x1fu;
  let mantissa = bits & 0x3ffu;
  if (exponent == 0u) {
    // Subnormal or zero: mantissa * 2^-24, a normal f32 (or zero).
    let magnitude = f32(mantissa) * 5.9604644775390625e-8;
    return select(magnitude, -magnitude, sign != 0u);
  }
  if (exponent == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
  }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

// The f16 stored at byte `byte` (any alignment).
fn q_half_at(byte: u32) -> f32 {
  return q_half(q_u16(byte));
}

// bfloat16 bits (low 16 bits of `bits`) to f32: the top half of an f32.
fn q_bf16(bits: u32) -> f32 {
  return bitcast<f32>((bits & 0xffffu) << 16u);
}

// An E8M0 byte to HALF its value, 2^(e - 128), as MXFP4 decoding uses it.
// e = 0 and 1 give f32 subnormals (2^-128, 2^-127), built from their bits.
fn q_e8m0_half(e: u32) -> f32 {
  if (e < 2u) {
    return bitcast<f32>(0x00200000u << e);
  }
  return bitcast<f32>((e - 1u) << 23u);
}

// The 6-bit scale (x) and min (y) of sub-block j (0..7) from the 12 packed
// bytes at `byte` shared by Q4_K and Q5_K: sub-blocks 0..3 keep scale and min
// in the low 6 bits of bytes j and j + 4; sub-blocks 4..7 take their low 4
// bits from the nibbles of byte j + 4 and their top 2 bits from the spare top
// bits of bytes j - 4 (scale) and j (min).
fn q_k_scale_min(byte: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(q_u8(byte + j) & 63u, q_u8(byte + j + 4u) & 63u);
  }
  let packed = q_u8(byte + j + 4u);
  let scale = (packed & 0xfu) | ((q_u8(byte + j - 4u) >> 6u) << 4u);
  let min = (packed >> 4u) | ((q_u8(byte + j) >> 6u) << 4u);
  return vec2<u32>(scale, min);
}
