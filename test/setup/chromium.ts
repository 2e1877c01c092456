/**
 * How tests launch Debian's Chromium with WebGPU on a machine without a GPU
 * (SwiftShader). --enable-unsafe-webgpu is what makes requestAdapter()
 * succeed; --disable-software-rasterizer must never be added (no adapter
 * then), and an own --enable-features would replace Playwright's list.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
];
