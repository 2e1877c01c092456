/** GPU kernels: one wrapper per WGSL file in shaders/. */

export * from './dequant';
export * from './matmul';
export * from './matvec';
export * from './quant-decoders';
export * from './rmsnorm';
