/**
 * The registry maps `general.architecture` to a config reader; any other
 * architecture is refused with a typed error that names it.
 */
import { describe, expect, it } from 'vitest';
import { readGguf } from '../../../src/gguf/reader';
import { sourceFromBytes } from '../../../src/gguf/source';
import { kvString, kvU32, writeGguf } from '../../../src/gguf/writer';
import { ModelConfigError } from '../../../src/models/config';
import {
  SUPPORTED_ARCHITECTURES, UnsupportedArchitectureError, isSupportedArchitecture, modelConfigFromGguf,
} from '../../../src/models/registry';
import { loadReferenceModel } from '../../../src/ref/forward';
import { TINY_ARCHS } from '../../../src/tiny/archs';
import { makeTinyModel } from '../../../src/tiny/make-tiny';

const unknownArchFile = (arch: string): Uint8Array =>
  writeGguf({ metadata: [kvString('general.architecture', arch), kvU32(`${arch}.block_count`, 2)], tensors: [] });

describe('architecture registry', () => {
  it('supports exactly the architectures generated test models cover', () => {
    expect([...SUPPORTED_ARCHITECTURES].sort()).toEqual([...TINY_ARCHS].sort());
    for (const arch of TINY_ARCHS) expect(isSupportedArchitecture(arch)).toBe(true);
    expect(isSupportedArchitecture('toString')).toBe(false); // not fooled by Object.prototype
  });

  it('refuses an unknown architecture with UnsupportedArchitectureError naming it', async () => {
    const file = await readGguf(sourceFromBytes(unknownArchFile('mamba')));
    let error: unknown;
    try {
      modelConfigFromGguf(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnsupportedArchitectureError);
    expect(error).toBeInstanceOf(ModelConfigError);
    const e = error as UnsupportedArchitectureError;
    expect(e.code).toBe('UNSUPPORTED_ARCH');
    expect(e.architecture).toBe('mamba');
    expect(e.name).toBe('UnsupportedArchitectureError');
    expect(e.message).toContain("'mamba'");
    for (const arch of SUPPORTED_ARCHITECTURES) expect(e.message).toContain(arch);
  });

  it('loading a GGUF of an unknown architecture into the reference forward pass rejects the same way', async () => {
    await expect(loadReferenceModel(unknownArchFile('grok'))).rejects.toMatchObject({
      name: 'UnsupportedArchitectureError',
      code: 'UNSUPPORTED_ARCH',
      architecture: 'grok',
    });
  });

  it('reads the config of every supported architecture', async () => {
    for (const arch of TINY_ARCHS) {
      const file = await readGguf(sourceFromBytes(makeTinyModel({ arch })));
      expect(modelConfigFromGguf(file).arch).toBe(arch);
    }
  });
});
