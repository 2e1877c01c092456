/** The shader registry: every shaders/*.wgsl file is bundled and preprocesses cleanly. */
import { describe, expect, it } from 'vitest';
import { loadShader, shaderFile, shaderFileNames } from '../../../src/gpu/shader-files';

describe('shader files', () => {
  it('finds the kernels of shaders/ by file name', () => {
    expect(shaderFileNames()).toContain('rmsnorm.wgsl');
    expect(shaderFile('rmsnorm.wgsl')).toMatch(/@compute/);
    expect(shaderFile('no-such.wgsl')).toBeUndefined();
  });

  it('starts every shader file with a header comment', () => {
    for (const name of shaderFileNames()) expect(shaderFile(name)!.trimStart().startsWith('//'), name).toBe(true);
  });

  it('rejects an unknown file by name', () => {
    expect(() => loadShader('no-such.wgsl')).toThrow(/shaders\/no-such\.wgsl/);
  });
});
