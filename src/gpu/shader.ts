/**
 * WGSL loading and specialisation.
 *
 * Kernels import their `.wgsl` file as a string (`import code from
 * '../../shaders/x.wgsl?raw'`, resolved by Vite in builds and in Vitest), run it
 * through `preprocessWgsl` when they need a variant that WGSL `override`
 * constants cannot express, and compile it with `compileShaderModule`, which
 * turns compiler errors into exceptions naming the file and line.
 *
 * Prefer `override` for numbers (workgroup size, block size): it costs no text
 * processing and keeps one module. Use the preprocessor only to add or remove
 * declarations, e.g. an `enable f16;` line or a binding that a variant lacks.
 *
 * Preprocessor language, line based (a directive is a whole line):
 *   #include "f"  insert the preprocessed text of shaders/f (a shared snippet,
 *                 e.g. a block format's decoder); each file is included once
 *                 per shader, so snippets may include what they need;
 *   #include NAME the same, for the file named by the string define NAME
 *                 (a kernel picks its weights' decoder this way);
 *   #if NAME      keep the lines up to the matching #else/#endif when the
 *   #if !NAME     boolean define NAME is true (or, with !, false);
 *   #else         then keep the other branch;
 *   #endif        blocks nest.
 * Defines are passed from TypeScript as { NAME: value }. Names are UPPER_SNAKE
 * so that they cannot collide with WGSL identifiers; every whole-word
 * occurrence of a name in the kept lines is replaced by its value (booleans
 * become `true`/`false`). An `#if` on a name that is not a boolean define is an
 * error, so a typo cannot silently select a branch. Dropped lines become empty
 * lines, so without includes compiler messages keep the .wgsl file's line
 * numbers; an included file is preceded by a `// #include "f"` marker line.
 */

export type ShaderDefineValue = boolean | number | string;
export type ShaderDefines = Readonly<Record<string, ShaderDefineValue>>;

const DEFINE_NAME = /^[A-Z][A-Z0-9_]*$/;
const DIRECTIVE = /^\s*#(\w+)\s*(.*?)\s*$/;

export class ShaderPreprocessError extends Error {
  override readonly name = 'ShaderPreprocessError';
  constructor(
    readonly shaderName: string,
    /** 1-based line of the offending directive, or 0 for an error about the defines. */
    readonly line: number,
    message: string,
  ) {
    super(`${shaderName}${line > 0 ? `:${line}` : ''}: ${message}`);
  }
}

interface OpenBlock {
  line: number;
  /** Whether the branch being read is kept, given its condition alone. */
  condition: boolean;
  sawElse: boolean;
}

/** Finds the text of an included file by name (e.g. "quant_q4_k.wgsl"). */
export type IncludeResolver = (fileName: string) => string | undefined;

/** Applies `#include`, `#if/#else/#endif` and define substitution to `source`; see the module comment. */
export function preprocessWgsl(
  source: string,
  defines: ShaderDefines = {},
  shaderName = 'shader',
  resolveInclude: IncludeResolver = () => undefined,
): string {
  validateDefines(defines, shaderName);
  return expand(source, defines, shaderName, resolveInclude, new Set([shaderName]));
}

function expand(
  source: string,
  defines: ShaderDefines,
  shaderName: string,
  resolveInclude: IncludeResolver,
  included: Set<string>,
): string {
  const substitute = substitution(defines);
  const open: OpenBlock[] = [];
  const output = source.split('\n').map((text, index) => {
    const line = index + 1;
    const directive = DIRECTIVE.exec(text);
    if (!directive) return open.every((b) => b.condition) ? substitute(text) : '';
    const [, keyword, argument] = directive;
    if (keyword === 'include') {
      if (!open.every((b) => b.condition)) return '';
      const name = includeName(argument, defines);
      if (!name) {
        throw new ShaderPreprocessError(shaderName, line, `#include expects "file.wgsl" or a string define naming one, got ${argument}`);
      }
      if (included.has(name)) return '';
      const text = resolveInclude(name);
      if (text === undefined) throw new ShaderPreprocessError(shaderName, line, `#include "${name}": no such shader file`);
      included.add(name);
      return `// #include "${name}"\n` + expand(text, defines, name, resolveInclude, included);
    }
    if (keyword === 'if') {
      open.push({ line, condition: evaluateCondition(argument, defines, shaderName, line), sawElse: false });
    } else if (keyword === 'else' || keyword === 'endif') {
      const block = open.at(-1);
      if (!block) throw new ShaderPreprocessError(shaderName, line, `#${keyword} without #if`);
      if (argument) throw new ShaderPreprocessError(shaderName, line, `#${keyword} takes no argument`);
      if (keyword === 'endif') open.pop();
      else if (block.sawElse) throw new ShaderPreprocessError(shaderName, line, 'second #else for one #if');
      else Object.assign(block, { condition: !block.condition, sawElse: true });
    } else {
      throw new ShaderPreprocessError(shaderName, line, `unknown directive #${keyword}`);
    }
    return '';
  });
  const unclosed = open.at(-1);
  if (unclosed) throw new ShaderPreprocessError(shaderName, unclosed.line, '#if without #endif');
  return output.join('\n');
}

/** `"file.wgsl"`, or NAME where the define NAME is a file name (to pick a block format's decoder). */
function includeName(argument: string, defines: ShaderDefines): string | undefined {
  const quoted = /^"([\w.-]+)"$/.exec(argument)?.[1];
  if (quoted) return quoted;
  const value = DEFINE_NAME.test(argument) ? defines[argument] : undefined;
  return typeof value === 'string' && /^[\w.-]+$/.test(value) ? value : undefined;
}

function validateDefines(defines: ShaderDefines, shaderName: string): void {
  for (const [name, value] of Object.entries(defines)) {
    if (!DEFINE_NAME.test(name)) {
      throw new ShaderPreprocessError(shaderName, 0, `define name "${name}" is not UPPER_SNAKE_CASE`);
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new ShaderPreprocessError(shaderName, 0, `define ${name} is not a finite number: ${value}`);
    }
  }
}

function evaluateCondition(argument: string, defines: ShaderDefines, shaderName: string, line: number): boolean {
  const match = /^(!?)\s*([A-Za-z_]\w*)$/.exec(argument);
  if (!match) throw new ShaderPreprocessError(shaderName, line, `#if expects NAME or !NAME, got "${argument}"`);
  const [, negation, name] = match;
  const value = defines[name];
  if (typeof value !== 'boolean') {
    const found = value === undefined ? 'it is not defined' : `it is ${JSON.stringify(value)}`;
    throw new ShaderPreprocessError(shaderName, line, `#if ${name} needs a boolean define, but ${found}`);
  }
  return negation ? !value : value;
}

/** A function replacing every whole-word define name in a line by its value. */
function substitution(defines: ShaderDefines): (text: string) => string {
  const names = Object.keys(defines);
  if (names.length === 0) return (text) => text;
  // Longest first so that a name is never cut short by one of its prefixes.
  const pattern = new RegExp(`\\b(${names.sort((a, b) => b.length - a.length).join('|')})\\b`, 'g');
  return (text) => text.replace(pattern, (name) => String(defines[name]));
}

export class ShaderCompileError extends Error {
  override readonly name = 'ShaderCompileError';
  constructor(
    readonly shaderName: string,
    readonly messages: readonly string[],
  ) {
    super(`WGSL compilation of ${shaderName} failed:\n${messages.join('\n')}`);
  }
}

/**
 * Creates a shader module and waits for the compiler's verdict, throwing a
 * ShaderCompileError with `name:line:column: message` and the source line
 * for every error (warnings are ignored).
 */
export async function compileShaderModule(device: GPUDevice, shaderName: string, code: string): Promise<GPUShaderModule> {
  const module = device.createShaderModule({ label: shaderName, code });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    const lines = code.split('\n');
    throw new ShaderCompileError(
      shaderName,
      errors.map((m) => {
        const where = `${shaderName}:${m.lineNum}:${m.linePos}`;
        const sourceLine = m.lineNum > 0 ? `\n    ${lines[m.lineNum - 1]?.trim() ?? ''}` : '';
        return `${where}: ${m.message}${sourceLine}`;
      }),
    );
  }
  return module;
}
