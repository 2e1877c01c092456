/**
 * Attribute and item access the Jinja way (`x.name` tries the attribute, then
 * the item; `x['name']` the other way round; a miss is Undefined), the Python
 * methods templates call on strings, lists and dicts (`.strip()`, `.split()`,
 * `.startswith()`, `.format()`, `.items()`, `.get()`, `.append()`...) and the
 * global functions range(), namespace() and dict().
 */

import { Budget, Callable, equals, fail, Namespace, sizeOf, str, tuple, typeName, Undefined } from './jinja-values';
import type { Dict, Value } from './jinja-values';

type Method<T> = (self: T, args: Value[], kwargs: Map<string, Value>, budget: Budget) => Value;

/** The positional and keyword arguments of a call, by parameter name (missing ones undefined). */
export function bind(fn: string, args: Value[], kwargs: Map<string, Value>, names: string[]): (Value | undefined)[] {
  if (args.length > names.length) fail(`${fn}() takes at most ${names.length} argument(s) (${args.length} given)`);
  for (const key of kwargs.keys()) if (!names.includes(key)) fail(`${fn}() got an unexpected keyword argument '${key}'`);
  return names.map((name, i) => (i < args.length ? args[i] : kwargs.get(name)));
}

function given(v: Value | undefined): v is Value {
  return v !== undefined && v !== null && !(v instanceof Undefined);
}

function int(v: Value | undefined, what: string): number {
  if (typeof v === 'boolean') return Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${what} must be an integer, not ${v === undefined ? 'nothing' : typeName(v)}`);
  return v;
}

function text(v: Value | undefined, what: string): string {
  if (typeof v !== 'string') fail(`${what} must be a string, not ${v === undefined ? 'nothing' : typeName(v)}`);
  return v;
}

export const WHITESPACE = ' \t\n\r\v\f\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u0085\u001c\u001d\u001e\u001f';

/** Python's strip family: `chars` (default whitespace) removed from the chosen ends. */
export function strip(s: string, chars: Value | undefined, left: boolean, right: boolean): string {
  const set = given(chars) ? text(chars, 'strip chars') : WHITESPACE;
  let start = 0;
  let end = s.length;
  if (left) while (start < end && set.includes(s[start])) start++;
  if (right) while (end > start && set.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

function split(s: string, sepValue: Value | undefined, maxValue: Value | undefined, budget: Budget): string[] {
  const max = given(maxValue) ? int(maxValue, 'maxsplit') : -1;
  let parts: string[];
  if (!given(sepValue)) {
    parts = [];
    let rest = s.replace(/^\s+/, '');
    while (rest && (max < 0 || parts.length < max)) {
      const gap = /\s+/.exec(rest);
      if (!gap) break;
      parts.push(rest.slice(0, gap.index));
      rest = rest.slice(gap.index + gap[0].length);
    }
    if (rest) parts.push(rest);
  } else {
    const sep = text(sepValue, 'separator');
    if (sep === '') fail('empty separator');
    parts = s.split(sep);
    if (max >= 0 && parts.length > max + 1) parts = [...parts.slice(0, max), parts.slice(max).join(sep)];
  }
  budget.charge(parts.length);
  return parts;
}

function rsplit(s: string, sepValue: Value | undefined, maxValue: Value | undefined, budget: Budget): string[] {
  const max = given(maxValue) ? int(maxValue, 'maxsplit') : -1;
  if (max < 0) return split(s, sepValue, undefined, budget);
  if (!given(sepValue)) {
    const reverse = (t: string) => [...t].reverse().join('');
    return split(reverse(s), null, max, budget).map(reverse).reverse();
  }
  const sep = text(sepValue, 'separator');
  const parts = split(s, sep, undefined, budget);
  return parts.length > max + 1 ? [parts.slice(0, parts.length - max).join(sep), ...parts.slice(parts.length - max)] : parts;
}

/** Python's str.replace, '' matching between every character as Python does. */
export function replace(s: string, old: string, replacement: string, countValue: Value | undefined, budget: Budget): string {
  const count = given(countValue) ? int(countValue, 'count') : -1;
  const parts = old === '' ? ['', ...s, ''] : s.split(old);
  const cut = count >= 0 && parts.length > count + 1 ? count + 1 : parts.length;
  const head = parts.slice(0, cut);
  const tail = parts.slice(cut).join(old);
  budget.charge(s.length + (cut - 1) * replacement.length);
  if (old === '') return head.join(replacement) + (cut < parts.length ? tail : '');
  return head.join(replacement) + (cut < parts.length ? old + tail : '');
}

function affix(self: string, args: Value[], atStart: boolean): boolean {
  const [prefix, startValue, endValue] = args;
  const start = given(startValue) ? int(startValue, 'start') : 0;
  const end = given(endValue) ? int(endValue, 'end') : self.length;
  const within = self.slice(start < 0 ? Math.max(0, self.length + start) : start, end < 0 ? self.length + end : end);
  const options = Array.isArray(prefix) ? prefix : [prefix];
  return options.some((p) => (atStart ? within.startsWith(text(p, 'prefix')) : within.endsWith(text(p, 'suffix'))));
}

/** Python's str.format: `{}`, `{0}`, `{name}`, `{{` and `}}`, `!r`/`!s` conversions (no format specs). */
function format(template: string, args: Value[], kwargs: Map<string, Value>, budget: Budget): string {
  const pieces: string[] = [];
  let auto = 0;
  const re = /\{\{|\}\}|\{([^{}!:]*)(?:!([rs]))?(?::([^{}]*))?\}/g;
  let last = 0;
  for (let m = re.exec(template); m; m = re.exec(template)) {
    pieces.push(template.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[0] === '{{' || m[0] === '}}') {
      pieces.push(m[0][0]);
      continue;
    }
    if (m[3]) fail(`format specs ('${m[3]}') are not supported in str.format`);
    const field = m[1];
    const value = field === '' ? args[auto++] : /^\d+$/.test(field) ? args[Number(field)] : kwargs.get(field);
    if (value === undefined) fail(`str.format has no argument for '{${field}}'`);
    pieces.push(m[2] === 'r' ? reprOf(value) : str(value));
  }
  pieces.push(template.slice(last));
  budget.charge(pieces.reduce((n, p) => n + p.length, 0));
  return pieces.join('');
}

function reprOf(v: Value): string {
  return typeof v === 'string' ? `'${v}'` : str(v);
}

/** Python's str.title: the first letter of each run of letters upper-cased, the rest lower-cased. */
export function title(s: string): string {
  return s.replace(/\p{L}+/gu, (word) => word[0].toUpperCase() + word.slice(1).toLowerCase());
}

export function capitalize(s: string): string {
  return s.slice(0, 1).toUpperCase() + s.slice(1).toLowerCase();
}

function find(self: string, args: Value[], fromRight: boolean): number {
  const sub = text(args[0], 'substring');
  const start = given(args[1]) ? int(args[1], 'start') : 0;
  const end = given(args[2]) ? int(args[2], 'end') : self.length;
  const within = self.slice(0, end < 0 ? self.length + end : end);
  const from = start < 0 ? Math.max(0, self.length + start) : start;
  const at = fromRight ? within.lastIndexOf(sub) : within.indexOf(sub, from);
  return at >= from ? at : -1;
}

const STRING_METHODS: Record<string, Method<string>> = {
  strip: (s, [chars]) => strip(s, chars, true, true),
  lstrip: (s, [chars]) => strip(s, chars, true, false),
  rstrip: (s, [chars]) => strip(s, chars, false, true),
  split: (s, args, kwargs, budget) => split(s, ...(bind('split', args, kwargs, ['sep', 'maxsplit']) as [Value, Value]), budget),
  rsplit: (s, args, kwargs, budget) => rsplit(s, ...(bind('rsplit', args, kwargs, ['sep', 'maxsplit']) as [Value, Value]), budget),
  splitlines: (s) => s.split(/\r\n|[\n\r\v\f\u001c\u001d\u001e\u0085\u2028\u2029]/).filter((line, i, all) => i < all.length - 1 || line !== ''),
  startswith: (s, args) => affix(s, args, true),
  endswith: (s, args) => affix(s, args, false),
  replace: (s, [old, replacement, count], _kwargs, budget) => replace(s, text(old, 'old'), text(replacement, 'new'), count, budget),
  upper: (s) => s.toUpperCase(),
  lower: (s) => s.toLowerCase(),
  title: (s) => title(s),
  capitalize: (s) => capitalize(s),
  format: (s, args, kwargs, budget) => format(s, args, kwargs, budget),
  find: (s, args) => find(s, args, false),
  rfind: (s, args) => find(s, args, true),
  index: (s, args) => {
    const at = find(s, args, false);
    return at >= 0 ? at : fail('substring not found');
  },
  count: (s, [sub]) => (text(sub, 'substring') === '' ? s.length + 1 : s.split(sub as string).length - 1),
  join: (s, [items], _kwargs, budget) => {
    const parts = iterate(items ?? null).map((item) => text(item, 'joined item'));
    budget.charge(parts.reduce((n, p) => n + p.length + s.length, 0));
    return parts.join(s);
  },
  removeprefix: (s, [prefix]) => (s.startsWith(text(prefix, 'prefix')) ? s.slice((prefix as string).length) : s),
  removesuffix: (s, [suffix]) => (text(suffix, 'suffix') !== '' && s.endsWith(suffix as string) ? s.slice(0, -(suffix as string).length) : s),
  isdigit: (s) => /^\p{Nd}+$/u.test(s),
  isnumeric: (s) => /^\p{N}+$/u.test(s),
  isalpha: (s) => /^\p{L}+$/u.test(s),
  isalnum: (s) => /^[\p{L}\p{N}]+$/u.test(s),
  isspace: (s) => s.length > 0 && [...s].every((ch) => WHITESPACE.includes(ch)),
  isupper: (s) => /\p{Lu}/u.test(s) && !/\p{Ll}/u.test(s),
  islower: (s) => /\p{Ll}/u.test(s) && !/\p{Lu}/u.test(s),
};

const LIST_METHODS: Record<string, Method<Value[]>> = {
  append: (list, [item], _kwargs, budget) => {
    budget.charge(1);
    list.push(item ?? null);
    return null;
  },
  extend: (list, [items], _kwargs, budget) => {
    const added = iterate(items ?? null);
    budget.charge(added.length);
    list.push(...added);
    return null;
  },
  pop: (list, [index]) => {
    if (list.length === 0) fail('pop from empty list');
    const i = given(index) ? int(index, 'index') : -1;
    const at = i < 0 ? list.length + i : i;
    if (at < 0 || at >= list.length) fail('pop index out of range');
    return list.splice(at, 1)[0];
  },
  insert: (list, [index, item], _kwargs, budget) => {
    budget.charge(1);
    const i = int(index, 'index');
    list.splice(i < 0 ? Math.max(0, list.length + i) : i, 0, item ?? null);
    return null;
  },
  remove: (list, [item]) => {
    const at = list.findIndex((x) => equals(x, item ?? null));
    if (at < 0) fail('list.remove(x): x not in list');
    list.splice(at, 1);
    return null;
  },
  index: (list, [item]) => {
    const at = list.findIndex((x) => equals(x, item ?? null));
    return at >= 0 ? at : fail(`${str(item ?? null)} is not in list`);
  },
  count: (list, [item]) => list.filter((x) => equals(x, item ?? null)).length,
  reverse: (list) => {
    list.reverse();
    return null;
  },
  copy: (list, _args, _kwargs, budget) => {
    budget.charge(list.length);
    return [...list];
  },
};

const DICT_METHODS: Record<string, Method<Dict>> = {
  get: (dict, [key, fallback]) => (dict.has(key ?? null) ? dict.get(key ?? null)! : (fallback ?? null)),
  items: (dict, _args, _kwargs, budget) => {
    budget.charge(dict.size);
    return [...dict].map(([k, v]) => tuple([k, v]));
  },
  keys: (dict, _args, _kwargs, budget) => {
    budget.charge(dict.size);
    return [...dict.keys()];
  },
  values: (dict, _args, _kwargs, budget) => {
    budget.charge(dict.size);
    return [...dict.values()];
  },
  update: (dict, [other], kwargs, budget) => {
    const entries = other instanceof Map ? [...other] : [...kwargs];
    budget.charge(entries.length);
    for (const [k, v] of entries) dict.set(k, v);
    return null;
  },
  pop: (dict, [key, fallback]) => {
    const k = key ?? null;
    if (!dict.has(k)) return fallback !== undefined ? fallback : fail(`KeyError: ${str(k)}`);
    const value = dict.get(k)!;
    dict.delete(k);
    return value;
  },
  setdefault: (dict, [key, fallback]) => {
    const k = key ?? null;
    if (!dict.has(k)) dict.set(k, fallback ?? null);
    return dict.get(k)!;
  },
  copy: (dict, _args, _kwargs, budget) => {
    budget.charge(dict.size);
    return new Map(dict);
  },
};

function method<T>(self: T, name: string, table: Record<string, Method<T>>, budget: Budget): Callable | undefined {
  if (!Object.hasOwn(table, name)) return undefined;
  return new Callable(name, (args, kwargs) => {
    budget.charge(sizeOf(self as Value));
    const result = table[name](self, args, kwargs, budget);
    budget.charge(sizeOf(result));
    return result;
  });
}

/** `value.name`: the attribute (a method), else the item; Undefined when neither exists. */
export function getAttr(value: Value, name: string, budget: Budget): Value {
  if (value instanceof Undefined) fail(value.hint);
  if (typeof value === 'string') return method(value, name, STRING_METHODS, budget) ?? missing(value, name);
  if (Array.isArray(value)) return method(value, name, LIST_METHODS, budget) ?? missing(value, name);
  if (value instanceof Map) return method(value, name, DICT_METHODS, budget) ?? (value.has(name) ? value.get(name)! : missing(value, name));
  if (value instanceof Namespace) return value.attrs.has(name) ? value.attrs.get(name)! : missing(value, name);
  return missing(value, name);
}

/** `value[key]`: the item, else (for a string key) the attribute; Undefined when neither exists. */
export function getItem(value: Value, key: Value, budget: Budget): Value {
  if (value instanceof Undefined) fail(value.hint);
  if (value instanceof Map && value.has(key)) return value.get(key)!;
  if ((Array.isArray(value) || typeof value === 'string') && (typeof key === 'number' || typeof key === 'boolean')) {
    const i = Number(key);
    const at = i < 0 ? value.length + i : i;
    return Number.isInteger(at) && at >= 0 && at < value.length ? value[at] : new Undefined(`${typeName(value)} index ${i} out of range`);
  }
  if (typeof key === 'string') return getAttr(value, key, budget);
  return new Undefined(`'${typeName(value)} object' has no item ${str(key)}`);
}

function missing(value: Value, name: string): Undefined {
  return new Undefined(`'${typeName(value)} object' has no attribute '${name}'`);
}

/** The items a `for` loop or a filter walks: list items, string characters, dict keys; nothing for Undefined. */
export function iterate(value: Value): Value[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return [...value];
  if (value instanceof Map) return [...value.keys()];
  if (value instanceof Undefined) return [];
  return fail(`'${typeName(value)}' object is not iterable`);
}

/** range(), namespace() and dict(). */
export function globalFunctions(budget: Budget): Map<string, Value> {
  return new Map<string, Value>([
    [
      'range',
      new Callable('range', (args) => {
        const [start, stop, step] = args.length === 1 ? [0, int(args[0], 'range stop'), 1] : [int(args[0], 'range start'), int(args[1], 'range stop'), args.length > 2 ? int(args[2], 'range step') : 1];
        if (step === 0) fail('range() arg 3 must not be zero');
        const count = Math.max(0, Math.ceil((stop - start) / step));
        budget.charge(count);
        return Array.from({ length: count }, (_, i) => start + i * step);
      }),
    ],
    [
      'namespace',
      new Callable('namespace', (args, kwargs) => {
        const attrs = new Map<string, Value>();
        for (const arg of args) if (arg instanceof Map) for (const [k, v] of arg) attrs.set(str(k), v);
        for (const [k, v] of kwargs) attrs.set(k, v);
        return new Namespace(attrs);
      }),
    ],
    [
      'dict',
      new Callable('dict', (args, kwargs) => {
        const dict: Dict = new Map();
        for (const arg of args) {
          if (arg instanceof Map) for (const [k, v] of arg) dict.set(k, v);
          else for (const pair of iterate(arg)) if (Array.isArray(pair) && pair.length === 2) dict.set(pair[0], pair[1]);
        }
        for (const [k, v] of kwargs) dict.set(k, v);
        return dict;
      }),
    ],
  ]);
}
