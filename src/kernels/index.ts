/** GPU kernels: one wrapper per WGSL file in shaders/. */

export * from './dequant';
export * from './rmsnorm';
