/**
 * Values of the chat-template renderer (jinja-render.ts) and the Python
 * behaviour templates were written against: truth, str() and repr(), equality
 * and ordering, JSON as Python's json.dumps writes it, and the budget that stops
 * a hostile template from running forever or building huge strings.
 *
 * Dicts are Maps, so integer keys stay integers and keys keep their order.
 */

/** A name or attribute that does not exist; printing it gives '', most other uses fail with `hint`. */
export class Undefined {
  /** @param hint the error a use of it raises, e.g. "'tools' is undefined" */
  constructor(readonly hint: string) {}
}

/** namespace(...) objects (attributes assignable with `set ns.x = ...`) and the read-only `loop` object. */
export class Namespace {
  constructor(
    readonly attrs: Map<string, Value> = new Map(),
    readonly assignable = true,
  ) {}
}

/** Macros, bound methods and globals such as range(). */
export class Callable {
  constructor(
    readonly name: string,
    readonly call: (positional: Value[], named: Map<string, Value>) => Value,
  ) {}
}

export type Dict = Map<Value, Value>;

const TUPLES = new WeakSet<Value[]>();

/** Marks `items` as a Python tuple (printed as `(a, b)`); tuples are lists otherwise. */
export function tuple(items: Value[]): Value[] {
  TUPLES.add(items);
  return items;
}
export type Value = null | boolean | number | string | Value[] | Dict | Namespace | Callable | Undefined;

/** syntax: the template does not parse; raise: it called raise_exception; limit: it ran past a RenderLimits bound. */
export type JinjaErrorKind = 'syntax' | 'render' | 'raise' | 'limit';

export class JinjaError extends Error {
  override name = 'JinjaError';

  constructor(
    readonly kind: JinjaErrorKind,
    message: string,
    /** The template line the failing tag starts on. */
    public line?: number,
  ) {
    super(message);
  }
}

export function fail(message: string): never {
  throw new JinjaError('render', message);
}

export interface RenderLimits {
  /** Expressions, statements and loop iterations evaluated. */
  maxSteps: number;
  /**
   * Characters (and list items) built or scanned: the output, every filter's
   * and method's input and result, compared and searched strings and lists.
   */
  maxChars: number;
  /** Nested macro calls and nesting of values (str(), tojson, ==). */
  maxDepth: number;
}

export const DEFAULT_LIMITS: RenderLimits = { maxSteps: 20_000_000, maxChars: 64 * 1024 * 1024, maxDepth: 100 };

/** Counts a render's work against its RenderLimits. */
export class Budget {
  private steps = 0;
  private chars = 0;
  depth = 0;

  constructor(readonly limits: RenderLimits) {}

  step(): void {
    if (++this.steps > this.limits.maxSteps) {
      throw new JinjaError('limit', `the template ran more than ${this.limits.maxSteps} steps`);
    }
  }

  /** Charges `size` characters or items built or scanned (before building, where the size is known). */
  charge(size: number): void {
    this.chars += size;
    if (this.chars > this.limits.maxChars) {
      throw new JinjaError('limit', `the template built or scanned more than ${this.limits.maxChars} characters`);
    }
  }

  nest(depth: number): void {
    if (depth > this.limits.maxDepth) throw new JinjaError('limit', `values or macro calls nest more than ${this.limits.maxDepth} deep`);
  }
}

/** The length of a string or list, the size of a dict; 1 for anything else (what scanning it costs). */
export function sizeOf(v: Value): number {
  if (typeof v === 'string' || Array.isArray(v)) return v.length;
  if (v instanceof Map) return v.size;
  return 1;
}

/** Python's truth value. */
export function truthy(v: Value): boolean {
  if (v === null || v instanceof Undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string' || Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  return true;
}

/** Python's type name, for error messages and `is` tests. */
export function typeName(v: Value): string {
  if (v === null) return 'NoneType';
  if (v instanceof Undefined) return 'Undefined';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Namespace) return 'Namespace';
  return 'function';
}

/** Python's str(): what `{{ v }}` prints. */
export function str(v: Value): string {
  if (typeof v === 'string') return v;
  if (v instanceof Undefined) return '';
  return repr(v);
}

/** Python's repr(), as str() of lists and dicts prints their items. */
export function repr(v: Value, depth = 0): string {
  if (depth > 100) fail('a value nests too deeply to print');
  if (v === null) return 'None';
  if (v instanceof Undefined) return '';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return numberText(v);
  if (typeof v === 'string') return quoted(v);
  if (Array.isArray(v)) {
    const items = v.map((x) => repr(x, depth + 1));
    if (!TUPLES.has(v)) return `[${items.join(', ')}]`;
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
  }
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${repr(k, depth + 1)}: ${repr(x, depth + 1)}`).join(', ')}}`;
  if (v instanceof Namespace) return `<Namespace ${[...v.attrs.keys()].join(', ')}>`;
  return `<function ${v.name}>`;
}

function numberText(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  return String(n).replace(/e([+-])(\d)$/, 'e$10$2');
}

function quoted(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + quote;
}

export interface JsonOptions {
  /** Spaces (or the text) per level; undefined writes one line. */
  indent?: string;
  /** [item, key] separators; Python's defaults depend on indent. */
  separators?: [string, string];
  sortKeys?: boolean;
}

/** json.dumps(v, ensure_ascii=False, ...), as Hugging Face's tojson filter calls it. */
export function toJson(v: Value, options: JsonOptions = {}, depth = 0): string {
  if (depth > 100) fail('a value nests too deeply for tojson');
  const [itemSep, keySep] = options.separators ?? [options.indent === undefined ? ', ' : ',', ': '];
  const { indent } = options;
  const open = (level: number) => (indent === undefined ? '' : `\n${indent.repeat(level)}`);
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? numberText(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  if (typeof v === 'string') return jsonString(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    const items = v.map((x) => toJson(x, options, depth + 1));
    return `[${open(depth + 1)}${items.join(itemSep + open(depth + 1))}${open(depth)}]`;
  }
  if (v instanceof Map) {
    if (v.size === 0) return '{}';
    const entries = [...v].map(([k, x]) => [jsonKey(k), x] as const);
    if (options.sortKeys) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const items = entries.map(([k, x]) => jsonString(k) + keySep + toJson(x, options, depth + 1));
    return `{${open(depth + 1)}${items.join(itemSep + open(depth + 1))}${open(depth)}}`;
  }
  return fail(`Object of type ${typeName(v)} is not JSON serializable`);
}

function jsonKey(k: Value): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'boolean' || k === null) return toJson(k);
  return fail(`keys must be str, int, float, bool or None, not ${typeName(k)}`);
}

const JSON_ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function jsonString(s: string): string {
  // eslint-disable-next-line no-control-regex
  return `"${s.replace(/["\\\u0000-\u001f]/g, (ch) => JSON_ESCAPES[ch] ?? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** JSON text to a value (llama.cpp's from_json filter). */
export function fromJson(text: string): Value {
  try {
    return fromJs(JSON.parse(text));
  } catch (cause) {
    return fail(`from_json: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Python's ==: numbers and booleans by value, lists and dicts item by item. */
export function equals(a: Value, b: Value, depth = 0): boolean {
  if (a === b) return true;
  if (depth > 100) fail('values nest too deeply to compare');
  if (isNumeric(a) && isNumeric(b)) return Number(a) === Number(b);
  if (a instanceof Undefined || b instanceof Undefined) return a instanceof Undefined && b instanceof Undefined;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equals(x, b[i], depth + 1));
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false;
    for (const [k, x] of a) if (!b.has(k) || !equals(x, b.get(k)!, depth + 1)) return false;
    return true;
  }
  return false;
}

export function isNumeric(v: Value): v is number | boolean {
  return typeof v === 'number' || typeof v === 'boolean';
}

/** Python's ordering (<): numbers with numbers, strings with strings, lists item by item. */
export function compare(a: Value, b: Value, op: string, depth = 0): number {
  if (depth > 100) fail('values nest too deeply to compare');
  if (isNumeric(a) && isNumeric(b)) return Number(a) - Number(b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (!equals(a[i], b[i])) return compare(a[i], b[i], op, depth + 1);
    }
    return a.length - b.length;
  }
  return fail(`'${op}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

/** A JavaScript value (the caller's variables, JSON) as a template value. */
export function fromJs(x: unknown, depth = 0): Value {
  if (depth > 100) fail('a template variable nests more than 100 levels deep');
  if (x === undefined) return new Undefined('a value is undefined');
  if (x === null || typeof x === 'string' || typeof x === 'boolean' || typeof x === 'number') return x;
  if (x instanceof Undefined || x instanceof Namespace || x instanceof Callable) return x;
  if (typeof x === 'bigint') return Number(x);
  if (Array.isArray(x)) return x.map((item) => fromJs(item, depth + 1));
  if (x instanceof Map) return new Map([...x].map(([k, v]) => [fromJs(k, depth + 1), fromJs(v, depth + 1)]));
  if (x instanceof Date) return x.toISOString();
  if (typeof x === 'function') {
    const fn = x as (...args: unknown[]) => unknown;
    return new Callable(fn.name || 'function', (positional) => fromJs(fn(...positional.map(toJs))));
  }
  if (typeof x === 'object') {
    const dict: Dict = new Map();
    for (const [k, v] of Object.entries(x)) if (v !== undefined) dict.set(k, fromJs(v, depth + 1));
    return dict;
  }
  return String(x);
}

/** A template value as plain JavaScript (for functions the caller passes in). */
export function toJs(v: Value): unknown {
  if (v instanceof Undefined) return undefined;
  if (Array.isArray(v)) return v.map(toJs);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [str(k), toJs(x)]));
  if (v instanceof Namespace) return Object.fromEntries([...v.attrs].map(([k, x]) => [k, toJs(x)]));
  return v;
}
