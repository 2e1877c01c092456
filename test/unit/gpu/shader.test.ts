/** The WGSL preprocessor: #if/#else/#endif on boolean defines, and define substitution. */

import { describe, expect, it } from 'vitest';
import { preprocessWgsl, ShaderPreprocessError } from '../../../src/gpu/shader';

const lines = (...text: string[]) => text.join('\n');

describe('preprocessWgsl', () => {
  it('returns source without directives or defines unchanged', () => {
    const source = lines('fn main() {', '  let x = 1u;', '}');
    expect(preprocessWgsl(source)).toBe(source);
  });

  it('keeps the #if branch when the define is true and the #else branch when false', () => {
    const source = lines('#if F16', 'enable f16;', '#else', '// f32 only', '#endif', 'fn main() {}');
    expect(preprocessWgsl(source, { F16: true })).toBe(lines('', 'enable f16;', '', '', '', 'fn main() {}'));
    expect(preprocessWgsl(source, { F16: false })).toBe(lines('', '', '', '// f32 only', '', 'fn main() {}'));
  });

  it('negates a condition written #if !NAME', () => {
    expect(preprocessWgsl(lines('#if !BIAS', 'no bias', '#endif'), { BIAS: false })).toBe(lines('', 'no bias', ''));
    expect(preprocessWgsl(lines('#if !BIAS', 'no bias', '#endif'), { BIAS: true })).toBe(lines('', '', ''));
  });

  it('nests blocks: an inner branch is kept only when every enclosing one is', () => {
    const source = lines('#if A', 'a', '#if B', 'ab', '#else', 'a!b', '#endif', '#endif');
    const kept = (A: boolean, B: boolean) =>
      preprocessWgsl(source, { A, B })
        .split('\n')
        .filter((l) => l !== '');
    expect(kept(true, true)).toEqual(['a', 'ab']);
    expect(kept(true, false)).toEqual(['a', 'a!b']);
    expect(kept(false, true)).toEqual([]);
    expect(kept(false, false)).toEqual([]);
  });

  it('keeps line numbers: dropped lines become empty lines', () => {
    const source = lines('#if X', 'one', 'two', '#endif', 'three');
    const output = preprocessWgsl(source, { X: false });
    expect(output.split('\n')).toHaveLength(5);
    expect(output.split('\n')[4]).toBe('three');
  });

  it('accepts directives indented and with trailing spaces', () => {
    expect(preprocessWgsl(lines('  #if X  ', 'kept', '  #endif'), { X: true })).toBe(lines('', 'kept', ''));
  });

  it('replaces whole-word define names with their values in kept lines', () => {
    const source = lines('const BLOCK: u32 = BLOCK_SIZE;', 'let BLOCK_SIZE_BYTES = 2;', 'var<workgroup> s: array<f32, BLOCK_SIZE>;');
    expect(preprocessWgsl(source, { BLOCK_SIZE: 32, BLOCK: '16u' })).toBe(
      lines('const 16u: u32 = 32;', 'let BLOCK_SIZE_BYTES = 2;', 'var<workgroup> s: array<f32, 32>;'),
    );
  });

  it('substitutes booleans as true/false and prefers the longest matching name', () => {
    expect(preprocessWgsl('let a = USE; let b = USE_BIAS;', { USE: true, USE_BIAS: false })).toBe(
      'let a = true; let b = false;',
    );
  });

  it('does not substitute inside dropped lines', () => {
    expect(preprocessWgsl(lines('#if ON', 'N', '#endif', 'N'), { ON: false, N: 7 })).toBe(lines('', '', '', '7'));
  });

  describe('errors, each naming the shader and line', () => {
    const failure = (source: string, defines = {}) => {
      try {
        preprocessWgsl(source, defines, 'test.wgsl');
      } catch (error) {
        return error as ShaderPreprocessError;
      }
      throw new Error('expected preprocessWgsl to throw');
    };

    it('#if on an undefined name (a typo must not pick a branch silently)', () => {
      const error = failure(lines('x', '#if HAS_WIEGHT', '#endif'), { HAS_WEIGHT: true });
      expect(error).toBeInstanceOf(ShaderPreprocessError);
      expect(error.line).toBe(2);
      expect(error.message).toBe('test.wgsl:2: #if HAS_WIEGHT needs a boolean define, but it is not defined');
    });

    it('#if on a non-boolean define', () => {
      expect(failure(lines('#if WG', '#endif'), { WG: 64 }).message).toMatch(/needs a boolean define, but it is 64/);
    });

    it('#if with an expression', () => {
      expect(failure(lines('#if A && B', '#endif'), { A: true, B: true }).message).toMatch(/expects NAME or !NAME/);
    });

    it('unbalanced blocks and stray #else', () => {
      expect(failure(lines('#if A', 'x'), { A: true }).message).toBe('test.wgsl:1: #if without #endif');
      expect(failure(lines('x', '#endif')).message).toBe('test.wgsl:2: #endif without #if');
      expect(failure(lines('#else')).message).toBe('test.wgsl:1: #else without #if');
      expect(failure(lines('#if A', '#else', '#else', '#endif'), { A: true }).message).toMatch(/:3: second #else/);
    });

    it('unknown directives, including #define', () => {
      expect(failure('#define X 1').message).toBe('test.wgsl:1: unknown directive #define');
    });

    it('define names that are not UPPER_SNAKE_CASE, and non-finite numbers', () => {
      expect(failure('x', { main: 1 }).message).toMatch(/"main" is not UPPER_SNAKE_CASE/);
      expect(failure('x', { N: Number.NaN }).message).toMatch(/N is not a finite number/);
    });
  });
});

describe('preprocessWgsl #include', () => {
  const files: Record<string, string> = {
    'bytes.wgsl': lines('fn read_byte() {}'),
    'q4.wgsl': lines('#include "bytes.wgsl"', 'fn q4() { let s = SCALE; }'),
    'q8.wgsl': lines('#include "bytes.wgsl"', 'fn q8() {}'),
  };
  const resolve = (name: string) => files[name];

  it('inserts the preprocessed text of the named file after a marker line', () => {
    const out = preprocessWgsl(lines('#include "q4.wgsl"', 'fn main() {}'), { SCALE: 2 }, 'main.wgsl', resolve);
    expect(out).toBe(lines('// #include "q4.wgsl"', '// #include "bytes.wgsl"', 'fn read_byte() {}', 'fn q4() { let s = 2; }', 'fn main() {}'));
  });

  it('includes each file once, however many files include it', () => {
    const out = preprocessWgsl(lines('#include "q4.wgsl"', '#include "q8.wgsl"'), { SCALE: 1 }, 'main.wgsl', resolve);
    expect(out.match(/fn read_byte/g)).toHaveLength(1);
    expect(out).toContain('fn q8()');
  });

  it('includes the file named by a string define', () => {
    const out = preprocessWgsl('#include DECODER', { DECODER: 'q8.wgsl' }, 'main.wgsl', resolve);
    expect(out).toContain('fn q8()');
    expect(() => preprocessWgsl('#include DECODER', { DECODER: 3 }, 'main.wgsl', resolve)).toThrow(/#include expects/);
  });

  it('ignores an #include inside a dropped branch', () => {
    const out = preprocessWgsl(lines('#if K', '#include "missing.wgsl"', '#endif'), { K: false }, 'main.wgsl', resolve);
    expect(out).toBe(lines('', '', ''));
  });

  it('names the including file and line when the file does not exist or the syntax is wrong', () => {
    expect(() => preprocessWgsl(lines('', '#include "missing.wgsl"'), {}, 'main.wgsl', resolve)).toThrow(/main\.wgsl:2: #include "missing\.wgsl"/);
    expect(() => preprocessWgsl('#include missing.wgsl', {}, 'main.wgsl', resolve)).toThrow(ShaderPreprocessError);
  });
});
