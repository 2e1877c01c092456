/**
 * Public API of the quant layer: GGML block formats, small-float conversions,
 * CPU reference dequantisation, Q8_0 and Q4_0 quantizers and seeded random
 * block data.
 */

export * from './formats';
export * from './half';
export * from './dequant';
export * from './random';
export * from './quantize';
