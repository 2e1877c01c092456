/**
 * WGSL compilation through the GPU layer: compiler errors become exceptions
 * that name the shader and line, and the preprocessor can switch on `enable
 * f16;`, which compiles exactly when the device was granted shader-f16.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/device';
import { compileShaderModule, preprocessWgsl, ShaderCompileError } from '../../src/gpu/shader';
import { acquireTestGpu } from './support/gpu';

const F16_SHADER = `#if F16
enable f16;
#endif
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main() {
#if F16
  out[0] = f32(f16(1.5));
#else
  out[0] = 1.5;
#endif
}`;

describe('compileShaderModule', () => {
  let gpu: GpuContext;
  beforeAll(async () => {
    gpu = await acquireTestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  it('throws ShaderCompileError naming the shader and the line of the error', async () => {
    const code = 'fn ok() {}\n\nfn broken() -> u32 { return undefined_name; }\n';
    const error = await compileShaderModule(gpu.device, 'broken.wgsl', code).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ShaderCompileError);
    expect((error as ShaderCompileError).message).toMatch(/broken\.wgsl:3:\d+: .*undefined_name/);
  });

  it('compiles the f32 variant of a shader everywhere', async () => {
    const code = preprocessWgsl(F16_SHADER, { F16: false }, 'f16-probe');
    await expect(compileShaderModule(gpu.device, 'f16-probe', code)).resolves.toBeDefined();
  });

  it('compiles the f16 variant exactly when the device has shader-f16', async () => {
    const code = preprocessWgsl(F16_SHADER, { F16: true }, 'f16-probe');
    const compiled = compileShaderModule(gpu.device, 'f16-probe', code);
    if (gpu.features.has('shader-f16')) await expect(compiled).resolves.toBeDefined();
    else await expect(compiled).rejects.toBeInstanceOf(ShaderCompileError);
  });
});
