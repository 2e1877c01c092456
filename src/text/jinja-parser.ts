/**
 * Jinja parser: the lexer's pieces as a tree of statements and expressions,
 * with Jinja's precedence (low to high): `x if c else y`, or, and, not,
 * comparisons and `in`, `+ -`, `~`, `* / // %`, `**`, unary `- +`, then
 * postfix `.attr`, `[i]`, `[a:b:c]`, calls, `|filter` and `is test`.
 *
 * Tags: if/elif/else, for (with `if` filter and else), set (also block set
 * and `ns.attr`), macro, filter, do, break/continue, generation; raw is the lexer's.
 */

import type { Piece, Token } from './jinja-lexer';
import { JinjaError } from './jinja-values';

export type Arguments = { args: Expr[]; kwargs: [string, Expr][] };

export type Expr =
  | { type: 'literal'; value: string | number | boolean | null }
  | { type: 'name'; name: string }
  | { type: 'list' | 'tuple'; items: Expr[] }
  | { type: 'dict'; entries: [Expr, Expr][] }
  | { type: 'attr'; object: Expr; name: string }
  | { type: 'item'; object: Expr; key: Expr }
  | { type: 'slice'; object: Expr; start?: Expr; stop?: Expr; step?: Expr }
  | ({ type: 'call'; callee: Expr } & Arguments)
  | ({ type: 'filter'; value: Expr; name: string } & Arguments)
  | ({ type: 'test'; value: Expr; name: string; negated: boolean } & Arguments)
  | { type: 'unary'; op: 'not' | '-' | '+'; operand: Expr }
  | { type: 'binary'; op: string; left: Expr; right: Expr }
  | { type: 'cond'; test: Expr; then: Expr; otherwise?: Expr };

/** What `set` and `for` assign to. */
export type Target = { type: 'name'; name: string } | { type: 'attr'; object: string; name: string } | { type: 'tuple'; items: Target[] };

export type Stmt =
  | { type: 'text'; text: string }
  | { type: 'output'; expr: Expr; line: number }
  | { type: 'if'; branches: { test: Expr; body: Stmt[] }[]; otherwise: Stmt[]; line: number }
  | { type: 'for'; target: Target; iter: Expr; filter?: Expr; body: Stmt[]; otherwise: Stmt[]; line: number }
  | { type: 'set'; target: Target; value: Expr; line: number }
  | { type: 'setBlock'; name: string; body: Stmt[]; line: number }
  | { type: 'macro'; name: string; params: { name: string; fallback?: Expr }[]; body: Stmt[]; line: number }
  | { type: 'filterBlock'; filters: { name: string; args: Arguments }[]; body: Stmt[]; line: number }
  | { type: 'do'; expr: Expr; line: number }
  | { type: 'break' | 'continue'; line: number }
  | { type: 'block'; body: Stmt[] };

const MAX_NESTING = 200;
const COMPARISONS = new Set(['==', '!=', '<', '>', '<=', '>=']);
const LITERALS: Record<string, boolean | null> = { true: true, false: false, True: true, False: false, none: null, None: null };

export function parse(pieces: Piece[]): Stmt[] {
  const parser = new Parser(pieces);
  const { body, end } = parser.body([]);
  if (end) throw new JinjaError('syntax', `unexpected {% ${end} %}`, parser.line);
  return body;
}

class Parser {
  private index = 0;
  private nesting = 0;
  line = 1;

  constructor(private readonly pieces: Piece[]) {}

  /** Statements up to one of the `ends` tags (returned as `end` with its tokens left to read). */
  body(ends: string[]): { body: Stmt[]; end?: string; tokens?: TokenStream } {
    if (++this.nesting > MAX_NESTING) throw new JinjaError('syntax', `blocks nest more than ${MAX_NESTING} deep`, this.line);
    const body: Stmt[] = [];
    while (this.index < this.pieces.length) {
      const piece = this.pieces[this.index++];
      this.line = piece.line;
      if (piece.kind === 'text') {
        body.push({ type: 'text', text: piece.text });
        continue;
      }
      const tokens = new TokenStream(piece.tokens, piece.line);
      if (piece.kind === 'output') {
        body.push({ type: 'output', expr: tokens.whole((t) => t.expression()), line: piece.line });
        continue;
      }
      const tag = tokens.name();
      if (ends.includes(tag)) {
        this.nesting--;
        return { body, end: tag, tokens };
      }
      body.push(this.statement(tag, tokens, piece.line));
    }
    if (ends.length > 0) throw new JinjaError('syntax', `missing {% ${ends[ends.length - 1]} %}`, this.line);
    this.nesting--;
    return { body };
  }

  private statement(tag: string, tokens: TokenStream, line: number): Stmt {
    switch (tag) {
      case 'if': {
        const branches: { test: Expr; body: Stmt[] }[] = [];
        let test = tokens.whole((t) => t.expression());
        let otherwise: Stmt[] = [];
        for (;;) {
          const part = this.body(['elif', 'else', 'endif']);
          branches.push({ test, body: part.body });
          if (part.end === 'elif') {
            test = part.tokens!.whole((t) => t.expression());
            continue;
          }
          part.tokens!.whole(() => undefined);
          if (part.end === 'else') otherwise = this.closed(['endif']);
          return { type: 'if', branches, otherwise, line };
        }
      }
      case 'for': {
        const target = tokens.target(false);
        tokens.expectName('in');
        const iter = tokens.or();
        const filter = tokens.acceptName('if') ? tokens.expression() : undefined;
        if (tokens.acceptName('recursive')) throw new JinjaError('syntax', 'recursive for loops are not supported', line);
        tokens.whole(() => undefined);
        const part = this.body(['else', 'endfor']);
        part.tokens!.whole(() => undefined);
        const otherwise = part.end === 'else' ? this.closed(['endfor']) : [];
        return { type: 'for', target, iter, filter, body: part.body, otherwise, line };
      }
      case 'set': {
        const target = tokens.target(true);
        if (tokens.acceptOp('=')) return { type: 'set', target, value: tokens.whole((t) => t.tupleOrExpression()), line };
        tokens.whole(() => undefined);
        if (target.type !== 'name') throw new JinjaError('syntax', 'a block set assigns one name', line);
        return { type: 'setBlock', name: target.name, body: this.closed(['endset']), line };
      }
      case 'macro': {
        const name = tokens.name();
        tokens.expectOp('(');
        const params: { name: string; fallback?: Expr }[] = [];
        while (!tokens.acceptOp(')')) {
          if (params.length > 0) tokens.expectOp(',');
          if (tokens.acceptOp(')')) break;
          const param = tokens.name();
          params.push({ name: param, fallback: tokens.acceptOp('=') ? tokens.expression() : undefined });
        }
        tokens.whole(() => undefined);
        return { type: 'macro', name, params, body: this.closed(['endmacro']), line };
      }
      case 'filter': {
        const filters = [];
        do filters.push({ name: tokens.name(), args: tokens.peekOp('(') ? tokens.callArguments() : { args: [], kwargs: [] } });
        while (tokens.acceptOp('|'));
        tokens.whole(() => undefined);
        return { type: 'filterBlock', filters, body: this.closed(['endfilter']), line };
      }
      case 'do':
        return { type: 'do', expr: tokens.whole((t) => t.expression()), line };
      case 'break':
      case 'continue':
        tokens.whole(() => undefined);
        return { type: tag, line };
      case 'generation':
        tokens.whole(() => undefined);
        return { type: 'block', body: this.closed(['endgeneration']) };
      default:
        throw new JinjaError('syntax', `unknown tag '${tag}'`, line);
    }
  }

  /** A body closed by `end` (which may repeat the block's name, as `{% endmacro name %}`). */
  private closed(end: string[]): Stmt[] {
    const part = this.body(end);
    while (!part.tokens!.done()) part.tokens!.next();
    return part.body;
  }
}

class TokenStream {
  private pos = 0;
  private nesting = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly line: number,
  ) {}

  private error(message: string): JinjaError {
    return new JinjaError('syntax', message, this.line);
  }

  done(): boolean {
    return this.pos >= this.tokens.length;
  }

  next(): Token {
    const token = this.tokens[this.pos++];
    if (!token) throw this.error('the tag ends too early');
    return token;
  }

  /** Runs `read`, then requires that it used every token of the tag. */
  whole<T>(read: (stream: TokenStream) => T): T {
    const result = read(this);
    if (!this.done()) throw this.error(`unexpected '${this.tokens[this.pos].value}'`);
    return result;
  }

  peekOp(op: string, offset = 0): boolean {
    const token = this.tokens[this.pos + offset];
    return token?.kind === 'op' && token.value === op;
  }

  peekName(name?: string, offset = 0): boolean {
    const token = this.tokens[this.pos + offset];
    return token?.kind === 'name' && (name === undefined || token.value === name);
  }

  acceptOp(op: string): boolean {
    if (!this.peekOp(op)) return false;
    this.pos++;
    return true;
  }

  acceptName(name: string): boolean {
    if (!this.peekName(name)) return false;
    this.pos++;
    return true;
  }

  expectOp(op: string): void {
    if (!this.acceptOp(op)) throw this.error(`expected '${op}'${this.done() ? '' : `, found '${this.tokens[this.pos].value}'`}`);
  }

  expectName(name: string): void {
    if (!this.acceptName(name)) throw this.error(`expected '${name}'`);
  }

  name(): string {
    const token = this.next();
    if (token.kind !== 'name') throw this.error(`expected a name, found '${token.value}'`);
    return token.value;
  }

  /** `a`, `a, b`, `(a, b)`; with `attributes`, also `ns.attr`. */
  target(attributes: boolean): Target {
    const one = (): Target => {
      if (this.acceptOp('(')) {
        const inner = this.target(attributes);
        this.expectOp(')');
        return inner;
      }
      const name = this.name();
      if (attributes && this.acceptOp('.')) return { type: 'attr', object: name, name: this.name() };
      return { type: 'name', name };
    };
    const first = one();
    if (!this.peekOp(',')) return first;
    const items = [first];
    while (this.acceptOp(',') && !this.peekOp('=') && !this.peekName('in') && !this.peekOp(')')) items.push(one());
    return { type: 'tuple', items };
  }

  /** `a, b` as a tuple (set's right-hand side), or one expression. */
  tupleOrExpression(): Expr {
    const first = this.expression();
    if (!this.peekOp(',')) return first;
    const items = [first];
    while (this.acceptOp(',') && !this.done()) items.push(this.expression());
    return { type: 'tuple', items };
  }

  expression(): Expr {
    if (++this.nesting > MAX_NESTING) throw this.error(`an expression nests more than ${MAX_NESTING} deep`);
    let expr = this.or();
    while (this.acceptName('if')) {
      const test = this.or();
      const otherwise = this.acceptName('else') ? this.expression() : undefined;
      expr = { type: 'cond', test, then: expr, otherwise };
    }
    this.nesting--;
    return expr;
  }

  or(): Expr {
    let left = this.and();
    while (this.acceptName('or')) left = { type: 'binary', op: 'or', left, right: this.and() };
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.acceptName('and')) left = { type: 'binary', op: 'and', left, right: this.not() };
    return left;
  }

  private not(): Expr {
    if (this.acceptName('not')) return { type: 'unary', op: 'not', operand: this.not() };
    return this.comparison();
  }

  private comparison(): Expr {
    let left = this.sum();
    for (;;) {
      const token = this.tokens[this.pos];
      if (token?.kind === 'op' && COMPARISONS.has(token.value)) {
        this.pos++;
        left = { type: 'binary', op: token.value, left, right: this.sum() };
      } else if (this.acceptName('in')) {
        left = { type: 'binary', op: 'in', left, right: this.sum() };
      } else if (this.peekName('not') && this.peekName('in', 1)) {
        this.pos += 2;
        left = { type: 'binary', op: 'not in', left, right: this.sum() };
      } else {
        return left;
      }
    }
  }

  private binaryLevel(ops: string[], operand: () => Expr): Expr {
    let left = operand();
    for (let op = ops.find((o) => this.peekOp(o)); op; op = ops.find((o) => this.peekOp(o))) {
      this.pos++;
      left = { type: 'binary', op, left, right: operand() };
    }
    return left;
  }

  private sum(): Expr {
    return this.binaryLevel(['+', '-'], () => this.concat());
  }

  private concat(): Expr {
    return this.binaryLevel(['~'], () => this.product());
  }

  private product(): Expr {
    return this.binaryLevel(['*', '/', '//', '%'], () => this.power());
  }

  private power(): Expr {
    return this.binaryLevel(['**'], () => this.unary(true));
  }

  private unary(withFilters: boolean): Expr {
    if (++this.nesting > MAX_NESTING) throw this.error(`an expression nests more than ${MAX_NESTING} deep`);
    let expr: Expr;
    if (this.acceptOp('-')) expr = { type: 'unary', op: '-', operand: this.unary(false) };
    else if (this.acceptOp('+')) expr = { type: 'unary', op: '+', operand: this.unary(false) };
    else expr = this.primary();
    expr = this.postfix(expr);
    if (withFilters) expr = this.filtersAndTests(expr);
    this.nesting--;
    return expr;
  }

  private primary(): Expr {
    const token = this.next();
    if (token.kind === 'string') {
      let value = token.value;
      while (this.tokens[this.pos]?.kind === 'string') value += this.next().value as string;
      return { type: 'literal', value };
    }
    if (token.kind === 'number') return { type: 'literal', value: token.value };
    if (token.kind === 'name') return token.value in LITERALS ? { type: 'literal', value: LITERALS[token.value] } : { type: 'name', name: token.value };
    if (token.value === '(') {
      if (this.acceptOp(')')) return { type: 'tuple', items: [] };
      const first = this.expression();
      if (this.acceptOp(')')) return first;
      const items = [first];
      while (this.acceptOp(',') && !this.peekOp(')')) items.push(this.expression());
      this.expectOp(')');
      return { type: 'tuple', items };
    }
    if (token.value === '[') {
      const items: Expr[] = [];
      while (!this.acceptOp(']')) {
        if (items.length > 0) this.expectOp(',');
        if (this.acceptOp(']')) break;
        items.push(this.expression());
      }
      return { type: 'list', items };
    }
    if (token.value === '{') {
      const entries: [Expr, Expr][] = [];
      while (!this.acceptOp('}')) {
        if (entries.length > 0) this.expectOp(',');
        if (this.acceptOp('}')) break;
        const key = this.expression();
        this.expectOp(':');
        entries.push([key, this.expression()]);
      }
      return { type: 'dict', entries };
    }
    throw this.error(`unexpected '${token.value}'`);
  }

  private postfix(expr: Expr): Expr {
    for (;;) {
      if (this.acceptOp('.')) {
        const token = this.next();
        if (token.kind === 'name') expr = { type: 'attr', object: expr, name: token.value };
        else if (token.kind === 'number') expr = { type: 'item', object: expr, key: { type: 'literal', value: token.value } };
        else throw this.error(`expected an attribute name, found '${token.value}'`);
      } else if (this.acceptOp('[')) {
        expr = this.subscript(expr);
      } else if (this.peekOp('(')) {
        expr = { type: 'call', callee: expr, ...this.callArguments() };
      } else {
        return expr;
      }
    }
  }

  private subscript(object: Expr): Expr {
    const part = (): Expr | undefined => (this.peekOp(':') || this.peekOp(']') ? undefined : this.expression());
    const start = part();
    if (!this.acceptOp(':')) {
      this.expectOp(']');
      if (!start) throw this.error('empty subscript');
      return { type: 'item', object, key: start };
    }
    const stop = part();
    const step = this.acceptOp(':') ? part() : undefined;
    this.expectOp(']');
    return { type: 'slice', object, start, stop, step };
  }

  /** `(a, b, key=c)` */
  callArguments(): Arguments {
    this.expectOp('(');
    const args: Expr[] = [];
    const kwargs: [string, Expr][] = [];
    while (!this.acceptOp(')')) {
      if (args.length + kwargs.length > 0) this.expectOp(',');
      if (this.acceptOp(')')) break;
      if (this.peekOp('*') || this.peekOp('**')) throw this.error('*args and **kwargs in calls are not supported');
      if (this.peekName() && this.peekOp('=', 1)) {
        const key = this.name();
        this.pos++;
        kwargs.push([key, this.expression()]);
      } else {
        if (kwargs.length > 0) throw this.error('a positional argument follows a keyword argument');
        args.push(this.expression());
      }
    }
    return { args, kwargs };
  }

  private filtersAndTests(expr: Expr): Expr {
    for (;;) {
      if (this.acceptOp('|')) {
        const name = this.name();
        const { args, kwargs } = this.peekOp('(') ? this.callArguments() : { args: [], kwargs: [] };
        expr = { type: 'filter', value: expr, name, args, kwargs };
      } else if (this.acceptName('is')) {
        const negated = this.acceptName('not');
        const name = this.name();
        let args: Arguments = { args: [], kwargs: [] };
        if (this.peekOp('(')) args = this.callArguments();
        else if (this.startsArgument()) args = { args: [this.postfix(this.primary())], kwargs: [] };
        expr = { type: 'test', value: expr, name, negated, ...args };
      } else if (this.peekOp('(')) {
        expr = { type: 'call', callee: expr, ...this.callArguments() };
      } else {
        return expr;
      }
    }
  }

  /** Whether a test's single argument follows without parentheses (`is divisibleby 3`, `is sameas none`). */
  private startsArgument(): boolean {
    const token = this.tokens[this.pos];
    if (!token) return false;
    if (token.kind === 'name') return !['else', 'or', 'and', 'if', 'is', 'in', 'not'].includes(token.value);
    return token.kind === 'string' || token.kind === 'number' || (token.kind === 'op' && (token.value === '[' || token.value === '{'));
  }
}
