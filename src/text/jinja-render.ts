/**
 * A bounded Jinja renderer for chat templates, written for this project: it
 * parses once (jinja-lexer.ts, jinja-parser.ts) and renders with Jinja's
 * semantics as Hugging Face and llama.cpp run chat templates: Undefined that
 * prints as '' but fails when used, scopes (a `set` inside a loop or macro
 * stays there; namespace() carries values out), loop.index/first/last/
 * previtem/nextitem/length/cycle, macros with defaults, break/continue.
 *
 * Every render counts steps and the characters it builds or scans against
 * RenderLimits, so a hostile template stops with a 'limit' JinjaError instead
 * of looping forever or filling memory.
 */

import { lex } from './jinja-lexer';
import { parse } from './jinja-parser';
import type { Arguments, Expr, Stmt, Target } from './jinja-parser';
import { applyFilter, applyTest, contains, percentFormat } from './jinja-filters';
import type { FilterContext } from './jinja-filters';
import { getAttr, getItem, globalFunctions, iterate } from './jinja-methods';
import { Budget, Callable, compare, DEFAULT_LIMITS, equals, fail, fromJs, isNumeric, JinjaError, Namespace, sizeOf, str, truthy, tuple, typeName, Undefined } from './jinja-values';
import type { RenderLimits, Value } from './jinja-values';

class Scope {
  readonly vars = new Map<string, Value>();

  constructor(readonly parent?: Scope) {}

  lookup(name: string): Value | undefined {
    for (let scope: Scope | undefined = this; scope; scope = scope.parent) {
      const value = scope.vars.get(name);
      if (value !== undefined) return value;
    }
    return undefined;
  }
}

type Signal = 'break' | 'continue' | undefined;

const NO_PREVIOUS = new Undefined("'loop.previtem' is undefined at the first item");
const NO_NEXT = new Undefined("'loop.nextitem' is undefined at the last item");

/** The `loop` object's attributes, read from its position: one per loop, advanced each iteration (as Jinja's LoopContext is). */
class LoopAttrs extends Map<string, Value> {
  index = 0;
  private readonly cycle = new Callable('cycle', (args) => (args.length > 0 ? args[this.index % args.length] : fail('no items for cycling given')));

  constructor(private readonly items: Value[]) {
    super();
  }

  override has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  override get(name: string): Value | undefined {
    const [i, n] = [this.index, this.items.length];
    switch (name) {
      case 'index': return i + 1;
      case 'index0': return i;
      case 'revindex': return n - i;
      case 'revindex0': return n - i - 1;
      case 'first': return i === 0;
      case 'last': return i === n - 1;
      case 'length': return n;
      case 'depth': return 1;
      case 'depth0': return 0;
      case 'previtem': return i > 0 ? this.items[i - 1] : NO_PREVIOUS;
      case 'nextitem': return i < n - 1 ? this.items[i + 1] : NO_NEXT;
      case 'cycle': return this.cycle;
      default: return undefined;
    }
  }
}

export class JinjaTemplate {
  private readonly program: Stmt[];

  /** Parses `source`; a JinjaError of kind 'syntax' says where it does not. */
  constructor(source: string) {
    this.program = parse(lex(source));
  }

  /** Renders with `variables` (JavaScript values: objects become dicts); throws JinjaError. */
  render(variables: Record<string, unknown>, limits: RenderLimits = DEFAULT_LIMITS): string {
    return new Renderer(new Budget(limits)).run(this.program, variables);
  }
}

class Renderer implements FilterContext {
  private out: string[] = [];
  private line = 0;
  private readonly globals: Map<string, Value>;

  constructor(readonly budget: Budget) {
    this.globals = globalFunctions(budget);
  }

  run(program: Stmt[], variables: Record<string, unknown>): string {
    const scope = new Scope();
    for (const [name, value] of Object.entries(variables)) scope.vars.set(name, fromJs(value));
    try {
      this.exec(program, scope);
    } catch (error) {
      if (error instanceof JinjaError && error.line === undefined) error.line = this.line;
      if (error instanceof RangeError) throw new JinjaError('limit', `the template ran out of stack or memory: ${error.message}`, this.line);
      throw error;
    }
    return this.out.join('');
  }

  filter(name: string, value: Value, args: Value[], kwargs: Map<string, Value>): Value {
    this.budget.charge(sizeOf(value));
    const result = applyFilter(this, name, value, args, kwargs);
    this.budget.charge(sizeOf(result));
    return result;
  }

  test(name: string, value: Value, args: Value[]): boolean {
    return applyTest(name, value, args);
  }

  private write(text: string): void {
    this.budget.charge(text.length);
    this.out.push(text);
  }

  /** The text `body` writes, rendered apart (macros, block set, filter blocks). */
  private capture(body: Stmt[], scope: Scope): string {
    const outer = this.out;
    this.out = [];
    try {
      this.exec(body, scope);
      return this.out.join('');
    } finally {
      this.out = outer;
    }
  }

  private exec(body: Stmt[], scope: Scope): Signal {
    for (const stmt of body) {
      this.budget.step();
      if ('line' in stmt) this.line = stmt.line;
      switch (stmt.type) {
        case 'text':
          this.write(stmt.text);
          break;
        case 'output':
          this.write(str(this.eval(stmt.expr, scope)));
          break;
        case 'if': {
          const branch = stmt.branches.find((b) => truthy(this.eval(b.test, scope)));
          const signal = this.exec(branch ? branch.body : stmt.otherwise, scope);
          if (signal) return signal;
          break;
        }
        case 'for':
          this.loop(stmt, scope);
          break;
        case 'set':
          this.assign(stmt.target, this.eval(stmt.value, scope), scope);
          break;
        case 'setBlock':
          scope.vars.set(stmt.name, this.capture(stmt.body, scope));
          break;
        case 'macro':
          scope.vars.set(stmt.name, this.macro(stmt, scope));
          break;
        case 'filterBlock': {
          let value: Value = this.capture(stmt.body, scope);
          for (const f of stmt.filters) value = this.filter(f.name, value, ...this.args(f.args, scope));
          this.write(str(value));
          break;
        }
        case 'do':
          this.eval(stmt.expr, scope);
          break;
        case 'break':
        case 'continue':
          return stmt.type;
        case 'block': {
          const signal = this.exec(stmt.body, scope);
          if (signal) return signal;
          break;
        }
      }
    }
    return undefined;
  }

  private loop(stmt: Extract<Stmt, { type: 'for' }>, scope: Scope): void {
    const iterable = this.eval(stmt.iter, scope);
    this.budget.charge(sizeOf(iterable));
    let items = iterate(iterable);
    if (stmt.filter) {
      items = items.filter((item) => {
        const inner = new Scope(scope);
        this.assign(stmt.target, item, inner);
        return truthy(this.eval(stmt.filter!, inner));
      });
    }
    items = [...items];
    const n = items.length;
    const attrs = new LoopAttrs(items);
    const loop = new Namespace(attrs, false);
    for (; attrs.index < n; attrs.index++) {
      this.budget.step();
      const inner = new Scope(scope);
      this.assign(stmt.target, items[attrs.index], inner);
      inner.vars.set('loop', loop);
      if (this.exec(stmt.body, inner) === 'break') break;
    }
    if (n === 0) this.exec(stmt.otherwise, scope);
  }

  private assign(target: Target, value: Value, scope: Scope): void {
    if (target.type === 'name') {
      scope.vars.set(target.name, value);
    } else if (target.type === 'attr') {
      const object = scope.lookup(target.object);
      if (!(object instanceof Namespace) || !object.assignable) fail(`cannot assign attribute '${target.name}' on '${target.object}', which is not a namespace()`);
      object.attrs.set(target.name, value);
    } else {
      const values = iterate(value);
      if (values.length !== target.items.length) fail(`cannot unpack ${values.length} values into ${target.items.length} names`);
      target.items.forEach((t, i) => this.assign(t, values[i], scope));
    }
  }

  private macro(stmt: Extract<Stmt, { type: 'macro' }>, defined: Scope): Callable {
    return new Callable(stmt.name, (args, kwargs) => {
      this.budget.nest(++this.budget.depth);
      const callerLine = this.line;
      try {
        const scope = new Scope(defined);
        stmt.params.forEach((param, i) => {
          const value = i < args.length ? args[i] : kwargs.get(param.name);
          const fallback = () => (param.fallback ? this.eval(param.fallback, scope) : new Undefined(`'${param.name}' is undefined`));
          scope.vars.set(param.name, value !== undefined ? value : fallback());
        });
        scope.vars.set('varargs', args.slice(stmt.params.length));
        scope.vars.set('kwargs', new Map([...kwargs].filter(([k]) => !stmt.params.some((p) => p.name === k))));
        const text = this.capture(stmt.body, scope);
        this.line = callerLine;
        return text;
      } finally {
        this.budget.depth--;
      }
    });
  }

  private args(call: Arguments, scope: Scope): [Value[], Map<string, Value>] {
    return [call.args.map((a) => this.eval(a, scope)), new Map(call.kwargs.map(([k, a]) => [k, this.eval(a, scope)]))];
  }

  private eval(expr: Expr, scope: Scope): Value {
    this.budget.step();
    switch (expr.type) {
      case 'literal':
        return expr.value;
      case 'name': {
        const value = scope.lookup(expr.name);
        if (value !== undefined) return value;
        return this.globals.get(expr.name) ?? new Undefined(`'${expr.name}' is undefined`);
      }
      case 'list':
      case 'tuple': {
        this.budget.charge(expr.items.length);
        const items = expr.items.map((item) => this.eval(item, scope));
        return expr.type === 'tuple' ? tuple(items) : items;
      }
      case 'dict':
        return new Map(expr.entries.map(([k, v]) => [this.eval(k, scope), this.eval(v, scope)]));
      case 'attr':
        return getAttr(this.eval(expr.object, scope), expr.name, this.budget);
      case 'item':
        return getItem(this.eval(expr.object, scope), this.eval(expr.key, scope), this.budget);
      case 'slice':
        return this.slice(expr, scope);
      case 'call': {
        const callee = this.eval(expr.callee, scope);
        if (callee instanceof Undefined) fail(callee.hint);
        if (!(callee instanceof Callable)) fail(`'${typeName(callee)}' object is not callable`);
        return callee.call(...this.args(expr, scope));
      }
      case 'filter':
        return this.filter(expr.name, this.eval(expr.value, scope), ...this.args(expr, scope));
      case 'test': {
        const passed = this.test(expr.name, this.eval(expr.value, scope), this.args(expr, scope)[0]);
        return passed !== expr.negated;
      }
      case 'unary': {
        const operand = this.eval(expr.operand, scope);
        if (expr.op === 'not') return !truthy(operand);
        if (!isNumeric(operand)) fail(operand instanceof Undefined ? operand.hint : `bad operand type for unary ${expr.op}: '${typeName(operand)}'`);
        return expr.op === '-' ? -operand : Number(operand);
      }
      case 'binary':
        return this.binary(expr.op, expr.left, expr.right, scope);
      case 'cond':
        if (truthy(this.eval(expr.test, scope))) return this.eval(expr.then, scope);
        return expr.otherwise ? this.eval(expr.otherwise, scope) : new Undefined('the conditional expression had no else');
    }
  }

  private slice(expr: Extract<Expr, { type: 'slice' }>, scope: Scope): Value {
    const object = this.eval(expr.object, scope);
    const bound = (e: Expr | undefined): number | undefined => {
      if (!e) return undefined;
      const v = this.eval(e, scope);
      if (v === null || v instanceof Undefined) return undefined;
      if (!isNumeric(v) || !Number.isInteger(Number(v))) fail(`slice indices must be integers, not ${typeName(v)}`);
      return Number(v);
    };
    const [start, stop, step] = [bound(expr.start), bound(expr.stop), bound(expr.step) ?? 1];
    if (step === 0) fail('slice step cannot be zero');
    if (object instanceof Undefined) fail(object.hint);
    if (typeof object !== 'string' && !Array.isArray(object)) fail(`'${typeName(object)}' object is not subscriptable`);
    const n = object.length;
    const clamp = (i: number, lo: number, hi: number) => Math.min(Math.max(i < 0 ? i + n : i, lo), hi);
    const picked: Value[] = [];
    if (step > 0) {
      for (let i = start === undefined ? 0 : clamp(start, 0, n), end = stop === undefined ? n : clamp(stop, 0, n); i < end; i += step) picked.push(object[i]);
    } else {
      for (let i = start === undefined ? n - 1 : clamp(start, -1, n - 1), end = stop === undefined ? -1 : clamp(stop, -1, n - 1); i > end; i += step) picked.push(object[i]);
    }
    this.budget.charge(picked.length);
    return typeof object === 'string' ? picked.join('') : picked;
  }

  private binary(op: string, leftExpr: Expr, rightExpr: Expr, scope: Scope): Value {
    const left = this.eval(leftExpr, scope);
    if (op === 'and') return truthy(left) ? this.eval(rightExpr, scope) : left;
    if (op === 'or') return truthy(left) ? left : this.eval(rightExpr, scope);
    const right = this.eval(rightExpr, scope);
    if (op === 'in' || op === 'not in') this.budget.charge(sizeOf(right));
    else if (op !== '~') this.budget.charge(Math.min(sizeOf(left), sizeOf(right)));
    switch (op) {
      case '~': {
        const [a, b] = [str(left), str(right)];
        this.budget.charge(Math.min(a.length, b.length));
        return a + b;
      }
      case '==':
        return equals(left, right);
      case '!=':
        return !equals(left, right);
      case '<':
        return compare(left, right, op) < 0;
      case '>':
        return compare(left, right, op) > 0;
      case '<=':
        return compare(left, right, op) <= 0;
      case '>=':
        return compare(left, right, op) >= 0;
      case 'in':
        return contains(right, left);
      case 'not in':
        return !contains(right, left);
    }
    return this.arithmetic(op, left, right);
  }

  private arithmetic(op: string, left: Value, right: Value): Value {
    if (left instanceof Undefined) fail(left.hint);
    if (right instanceof Undefined) fail(right.hint);
    if (isNumeric(left) && isNumeric(right)) {
      const [a, b] = [Number(left), Number(right)];
      if ((op === '/' || op === '//' || op === '%') && b === 0) fail('division by zero');
      switch (op) {
        case '+': return a + b;
        case '-': return a - b;
        case '*': return a * b;
        case '/': return a / b;
        case '//': return Math.floor(a / b);
        case '%': return a - b * Math.floor(a / b);
        case '**': return a ** b;
      }
    }
    if (op === '+' && typeof left === 'string' && typeof right === 'string') {
      // Joining strings makes a rope without copying: only what a later use reads or writes is charged in full.
      this.budget.charge(Math.min(left.length, right.length));
      return left + right;
    }
    if (op === '+' && Array.isArray(left) && Array.isArray(right)) {
      this.budget.charge(left.length + right.length);
      return [...left, ...right];
    }
    if (op === '*' && (typeof left === 'string' || Array.isArray(left) || typeof right === 'string' || Array.isArray(right))) {
      const [seq, times] = typeof left === 'string' || Array.isArray(left) ? [left, right] : [right, left];
      if (typeof times !== 'number' || !Number.isInteger(times)) fail(`can't multiply sequence by non-int of type '${typeName(times)}'`);
      const count = Math.max(0, times);
      this.budget.charge((seq as string | Value[]).length * count);
      return typeof seq === 'string' ? seq.repeat(count) : Array.from({ length: count }, () => seq as Value[]).flat(1);
    }
    if (op === '%' && typeof left === 'string') return percentFormat(left, right, this.budget);
    return fail(`unsupported operand type(s) for ${op}: '${typeName(left)}' and '${typeName(right)}'`);
  }
}
