/**
 * Jinja's filters (`x | name(args)`) and tests (`x is name`) that chat
 * templates use, with Jinja's semantics: `default` replaces Undefined only
 * unless told `boolean=true`, `length` of Undefined is 0, `items` and
 * `dictsort` give (key, value) pairs, `unique` and `sort` ignore case by
 * default, and `tojson` is Hugging Face's (json.dumps, non-ASCII kept).
 * llama.cpp's `from_json` is here too.
 */

import { bind, capitalize, getAttr, getItem, iterate, replace, strip, title } from './jinja-methods';
import { Budget, compare, equals, fail, fromJson, isNumeric, Namespace, Callable, str, toJson, truthy, tuple, typeName, Undefined } from './jinja-values';
import type { Value } from './jinja-values';

/** What filters need from the renderer: its budget, and other filters and tests by name (map, select...). */
export interface FilterContext {
  budget: Budget;
  filter(name: string, value: Value, args: Value[], kwargs: Map<string, Value>): Value;
  test(name: string, value: Value, args: Value[]): boolean;
}

type Filter = (ctx: FilterContext, value: Value, args: Value[], kwargs: Map<string, Value>) => Value;

function given(v: Value | undefined): v is Value {
  return v !== undefined && v !== null && !(v instanceof Undefined);
}

function length(value: Value): number {
  if (typeof value === 'string' || Array.isArray(value)) return value.length;
  if (value instanceof Map) return value.size;
  if (value instanceof Undefined) return 0;
  return fail(`object of type '${typeName(value)}' has no len()`);
}

/** An attribute path as map(attribute=...) and sort(attribute=...) take it: 'a.b', '0'. */
function attribute(value: Value, path: Value | undefined, budget: Budget): Value {
  if (!given(path)) return value;
  let v = value;
  for (const part of str(path).split('.')) v = getItem(v, /^\d+$/.test(part) ? Number(part) : part, budget);
  return v;
}

function sortKey(value: Value, caseSensitive: boolean): Value {
  return !caseSensitive && typeof value === 'string' ? value.toLowerCase() : value;
}

function sorted(ctx: FilterContext, items: Value[], key: (item: Value) => Value, reverse: boolean): Value[] {
  ctx.budget.charge(items.length);
  const out = [...items].sort((a, b) => compare(key(a), key(b), '<'));
  return reverse ? out.reverse() : out;
}

/** select/reject(test, args) and selectattr/rejectattr(attribute, test, args); like map, nothing from a false value (none). */
function selecting(byAttribute: boolean, keep: boolean): Filter {
  return (ctx, value, args) => {
    const path = byAttribute ? args[0] : undefined;
    const [testName, ...testArgs] = byAttribute ? args.slice(1) : args;
    const items = truthy(value) ? iterate(value) : [];
    ctx.budget.charge(items.length);
    return items.filter((item) => {
      const subject = byAttribute ? attribute(item, path, ctx.budget) : item;
      const passed = testName === undefined ? truthy(subject) : ctx.test(str(testName), subject, testArgs);
      return passed === keep;
    });
  };
}

function indentLines(s: string, widthValue: Value | undefined, first: boolean, blank: boolean, budget: Budget): string {
  const pad = typeof widthValue === 'string' ? widthValue : ' '.repeat(given(widthValue) ? Number(widthValue) : 4);
  const lines = (s + '\n').split('\n').slice(0, -1);
  budget.charge(s.length + lines.length * pad.length);
  let out = lines.shift() ?? '';
  if (lines.length > 0) out += '\n' + lines.map((line) => (line || blank ? pad + line : line)).join('\n');
  return first ? pad + out : out;
}

/** Python's round(): to the nearest by the exact binary value (2.675 -> 2.67), exact halves to even (2.5 -> 2). */
function roundHalfEven(x: number, digits: number): number {
  if (!Number.isFinite(x) || !Number.isInteger(digits) || digits < 0 || digits > 60) return x;
  const exact = Math.abs(x).toFixed(digits + 40);
  const cut = exact.indexOf('.') + (digits > 0 ? 1 + digits : 0);
  if (!/^\.?50*$/.test(exact.slice(cut))) return Number(x.toFixed(digits));
  const down = exact.slice(0, cut);
  return Number(down[down.length - 1]) % 2 === 0 ? Math.sign(x) * Number(down) : Number(x.toFixed(digits));
}

function orZero(v: Value | undefined): Value {
  return v === undefined ? 0 : v;
}

function toInt(value: Value, fallback: Value | undefined, base: number): Value {
  if (typeof value === 'boolean') return Number(value);
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : orZero(fallback);
  if (typeof value === 'string') {
    const s = value.trim().replace(/_/g, '');
    if (base === 10 && /^[+-]?\d+$/.test(s)) return parseInt(s, 10);
    if (base !== 10 && s !== '' && !Number.isNaN(parseInt(s, base))) return parseInt(s, base);
    const f = Number(s);
    if (s !== '' && Number.isFinite(f)) return Math.trunc(f);
  }
  return orZero(fallback);
}

function toFloat(value: Value, fallback: Value | undefined): Value {
  if (isNumeric(value)) return Number(value);
  if (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  return orZero(fallback);
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };

/** printf-style formatting: `'%s: %d' % (a, b)` and `'%s' | format(a)`. */
export function percentFormat(template: string, argsValue: Value, budget: Budget): string {
  const args = Array.isArray(argsValue) ? argsValue : [argsValue];
  let next = 0;
  const out = template.replace(/%([-+ 0#]*\d*(?:\.\d+)?)([sdifrx%])/g, (_, flags: string, conv: string) => {
    if (conv === '%') return '%';
    if (next >= args.length) fail('not enough arguments for format string');
    const v = args[next++];
    if (conv === 's') return str(v);
    if (conv === 'r') return typeof v === 'string' ? `'${v}'` : str(v);
    if (!isNumeric(v)) fail(`%${conv} format: a number is required, not ${typeName(v)}`);
    const n = Number(v);
    const precision = /\.(\d+)/.exec(flags);
    if (conv === 'f') return n.toFixed(precision ? Number(precision[1]) : 6);
    if (conv === 'x') return Math.trunc(n).toString(16);
    return String(Math.trunc(n));
  });
  budget.charge(out.length);
  return out;
}

const FILTERS: Record<string, Filter> = {
  abs: (_ctx, v) => (isNumeric(v) ? Math.abs(Number(v)) : fail(`bad operand type for abs(): '${typeName(v)}'`)),
  attr: (ctx, v, [name]) => getAttr(v, str(name ?? null), ctx.budget),
  capitalize: (_ctx, v) => capitalize(str(v)),
  count: (_ctx, v) => length(v),
  default: (_ctx, v, args, kwargs) => {
    const [fallback, boolean] = bind('default', args, kwargs, ['default_value', 'boolean']);
    return v instanceof Undefined || (truthy(boolean ?? false) && !truthy(v)) ? (fallback === undefined ? '' : fallback) : v;
  },
  dictsort: (ctx, v, args, kwargs) => {
    const [caseSensitive, by, reverse] = bind('dictsort', args, kwargs, ['case_sensitive', 'by', 'reverse']);
    if (!(v instanceof Map)) fail(`dictsort expects a dict, not ${typeName(v)}`);
    const index = by === 'value' ? 1 : 0;
    const pairs: Value[] = [...v].map(([k, x]) => tuple([k, x]));
    return sorted(ctx, pairs, (pair) => sortKey((pair as Value[])[index], truthy(caseSensitive ?? false)), truthy(reverse ?? false));
  },
  escape: (_ctx, v) => str(v).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]),
  first: (_ctx, v) => {
    const items = v instanceof Undefined ? [] : iterate(v);
    return items.length > 0 ? items[0] : new Undefined('first of an empty sequence');
  },
  float: (_ctx, v, [fallback]) => toFloat(v, fallback),
  format: (ctx, v, args) => percentFormat(str(v), args, ctx.budget),
  from_json: (_ctx, v) => fromJson(str(v)),
  indent: (ctx, v, args, kwargs) => {
    const [width, first, blank] = bind('indent', args, kwargs, ['width', 'first', 'blank']);
    return indentLines(str(v), width, truthy(first ?? false), truthy(blank ?? false), ctx.budget);
  },
  int: (_ctx, v, args, kwargs) => {
    const [fallback, base] = bind('int', args, kwargs, ['default', 'base']);
    return toInt(v, fallback, given(base) ? Number(base) : 10);
  },
  items: (_ctx, v) => {
    if (v instanceof Undefined) return [];
    if (!(v instanceof Map)) fail(`items expects a dict, not ${typeName(v)}`);
    return [...v].map(([k, x]) => tuple([k, x]));
  },
  join: (ctx, v, args, kwargs) => {
    const [separator, path] = bind('join', args, kwargs, ['d', 'attribute']);
    const parts = iterate(v).map((item) => str(attribute(item, path, ctx.budget)));
    const sep = given(separator) ? str(separator) : '';
    ctx.budget.charge(parts.reduce((n, p) => n + p.length + sep.length, 0));
    return parts.join(sep);
  },
  last: (_ctx, v) => {
    const items = v instanceof Undefined ? [] : iterate(v);
    return items.length > 0 ? items[items.length - 1] : new Undefined('last of an empty sequence');
  },
  length: (_ctx, v) => length(v),
  list: (ctx, v) => {
    const items = iterate(v);
    ctx.budget.charge(items.length);
    return [...items];
  },
  lower: (_ctx, v) => str(v).toLowerCase(),
  map: (ctx, v, args, kwargs) => {
    const items = truthy(v) ? iterate(v) : [];
    ctx.budget.charge(items.length);
    if (kwargs.has('attribute')) {
      const fallback = kwargs.get('default');
      return items.map((item) => {
        const x = attribute(item, kwargs.get('attribute'), ctx.budget);
        return x instanceof Undefined && fallback !== undefined ? fallback : x;
      });
    }
    const [name, ...rest] = args;
    if (name === undefined) fail('map needs a filter name or attribute=');
    return items.map((item) => ctx.filter(str(name), item, rest, kwargs));
  },
  max: (ctx, v, args, kwargs) => extreme(ctx, v, args, kwargs, 'max'),
  min: (ctx, v, args, kwargs) => extreme(ctx, v, args, kwargs, 'min'),
  reject: selecting(false, false),
  rejectattr: selecting(true, false),
  replace: (ctx, v, [old, replacement, count]) => replace(str(v), str(old ?? ''), str(replacement ?? ''), count, ctx.budget),
  reverse: (ctx, v) => {
    if (typeof v === 'string') return [...v].reverse().join('');
    const items = iterate(v);
    ctx.budget.charge(items.length);
    return [...items].reverse();
  },
  round: (_ctx, v, args, kwargs) => {
    const [precision, method] = bind('round', args, kwargs, ['precision', 'method']);
    const digits = given(precision) ? Number(precision) : 0;
    const x = Number(isNumeric(v) ? v : fail(`round expects a number, not ${typeName(v)}`));
    if (method === 'ceil' || method === 'floor') return Math[method](x * 10 ** digits) / 10 ** digits;
    return roundHalfEven(x, digits);
  },
  safe: (_ctx, v) => v,
  select: selecting(false, true),
  selectattr: selecting(true, true),
  sort: (ctx, v, args, kwargs) => {
    const [reverse, caseSensitive, path] = bind('sort', args, kwargs, ['reverse', 'case_sensitive', 'attribute']);
    return sorted(ctx, iterate(v), (item) => sortKey(attribute(item, path, ctx.budget), truthy(caseSensitive ?? false)), truthy(reverse ?? false));
  },
  string: (_ctx, v) => str(v),
  sum: (ctx, v, args, kwargs) => {
    const [path, start] = bind('sum', args, kwargs, ['attribute', 'start']);
    return iterate(v).reduce<number>((total, item) => {
      const x = attribute(item, path, ctx.budget);
      return total + (isNumeric(x) ? Number(x) : fail(`sum: unsupported operand '${typeName(x)}'`));
    }, given(start) ? Number(start) : 0);
  },
  title: (_ctx, v) => title(str(v)),
  tojson: (ctx, v, args, kwargs) => {
    const [indent, ensureAscii, separators, sortKeys] = bind('tojson', args, kwargs, ['indent', 'ensure_ascii', 'separators', 'sort_keys']);
    const seps = Array.isArray(separators) && separators.length === 2 ? ([str(separators[0]), str(separators[1])] as [string, string]) : undefined;
    let json = toJson(v, { indent: given(indent) ? (typeof indent === 'string' ? indent : ' '.repeat(Number(indent))) : undefined, separators: seps, sortKeys: truthy(sortKeys ?? false) });
    if (truthy(ensureAscii ?? false)) json = json.replace(/[^\x00-\x7f]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
    ctx.budget.charge(json.length);
    return json;
  },
  trim: (_ctx, v, [chars]) => strip(str(v), chars, true, true),
  unique: (ctx, v, args, kwargs) => {
    const [caseSensitive, path] = bind('unique', args, kwargs, ['case_sensitive', 'attribute']);
    const seenPlain = new Set<Value>();
    const seenOther: Value[] = [];
    const out: Value[] = [];
    for (const item of iterate(v)) {
      const key = sortKey(attribute(item, path, ctx.budget), truthy(caseSensitive ?? false));
      if (key === null || typeof key !== 'object') {
        if (seenPlain.has(key)) continue;
        seenPlain.add(key);
      } else {
        ctx.budget.charge(seenOther.length);
        if (seenOther.some((s) => equals(s, key))) continue;
        seenOther.push(key);
      }
      out.push(item);
    }
    return out;
  },
  upper: (_ctx, v) => str(v).toUpperCase(),
  wordcount: (_ctx, v) => (str(v).match(/\w+/gu) ?? []).length,
};
FILTERS.d = FILTERS.default;
FILTERS.e = FILTERS.escape;

function extreme(ctx: FilterContext, v: Value, args: Value[], kwargs: Map<string, Value>, which: 'min' | 'max'): Value {
  const [caseSensitive, path] = bind(which, args, kwargs, ['case_sensitive', 'attribute']);
  const items = iterate(v);
  if (items.length === 0) return new Undefined(`${which} of an empty sequence`);
  const key = (item: Value) => sortKey(attribute(item, path, ctx.budget), truthy(caseSensitive ?? false));
  return items.reduce((best, item) => {
    const order = compare(key(item), key(best), '<');
    return (which === 'min' ? order < 0 : order > 0) ? item : best;
  });
}

export function applyFilter(ctx: FilterContext, name: string, value: Value, args: Value[], kwargs: Map<string, Value>): Value {
  if (!Object.hasOwn(FILTERS, name)) fail(`no filter named '${name}'`);
  return FILTERS[name](ctx, value, args, kwargs);
}

type Test = (value: Value, args: Value[]) => boolean;

const isInteger = (v: Value) => typeof v === 'number' && Number.isInteger(v);
const ordered = (check: (order: number) => boolean, op: string): Test => (v, [other]) => check(compare(v, other ?? null, op));

const TESTS: Record<string, Test> = {
  boolean: (v) => typeof v === 'boolean',
  callable: (v) => v instanceof Callable,
  defined: (v) => !(v instanceof Undefined),
  divisibleby: (v, [n]) => Number(v) % Number(n) === 0,
  eq: (v, [other]) => equals(v, other ?? null),
  escaped: () => false,
  even: (v) => isInteger(v) && (v as number) % 2 === 0,
  false: (v) => v === false,
  float: (v) => typeof v === 'number' && !Number.isInteger(v),
  ge: ordered((o) => o >= 0, '>='),
  gt: ordered((o) => o > 0, '>'),
  in: (v, [container]) => contains(container ?? null, v),
  integer: (v) => isInteger(v),
  iterable: (v) => typeof v === 'string' || Array.isArray(v) || v instanceof Map || v instanceof Undefined,
  le: ordered((o) => o <= 0, '<='),
  lower: (v) => typeof v === 'string' && v === v.toLowerCase(),
  lt: ordered((o) => o < 0, '<'),
  mapping: (v) => v instanceof Map,
  ne: (v, [other]) => !equals(v, other ?? null),
  none: (v) => v === null,
  number: (v) => isNumeric(v),
  odd: (v) => isInteger(v) && Math.abs(v as number) % 2 === 1,
  sameas: (v, [other]) => v === other || (v === null && other === null),
  sequence: (v) => typeof v === 'string' || Array.isArray(v) || v instanceof Map || v instanceof Undefined,
  string: (v) => typeof v === 'string',
  true: (v) => v === true,
  undefined: (v) => v instanceof Undefined,
  upper: (v) => typeof v === 'string' && v === v.toUpperCase(),
};
Object.assign(TESTS, {
  equalto: TESTS.eq, '==': TESTS.eq, '!=': TESTS.ne, '<': TESTS.lt, '<=': TESTS.le, '>': TESTS.gt, '>=': TESTS.ge,
  lessthan: TESTS.lt, greaterthan: TESTS.gt,
});

export function applyTest(name: string, value: Value, args: Value[]): boolean {
  if (!Object.hasOwn(TESTS, name)) fail(`no test named '${name}'`);
  return TESTS[name](value, args);
}

/** Python's `needle in container`. */
export function contains(container: Value, needle: Value): boolean {
  if (typeof container === 'string') {
    if (typeof needle !== 'string') fail(`'in <string>' requires string as left operand, not ${typeName(needle)}`);
    return container.includes(needle);
  }
  if (Array.isArray(container)) return container.some((item) => equals(item, needle));
  if (container instanceof Map) return container.has(needle) || [...container.keys()].some((k) => equals(k, needle));
  if (container instanceof Undefined) return false;
  if (container instanceof Namespace) return container.attrs.has(str(needle));
  return fail(`argument of type '${typeName(container)}' is not iterable`);
}
