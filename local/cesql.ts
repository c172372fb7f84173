// A CloudEvents SQL (CESQL v1) subset for Trigger `cesql` filters. No npm
// implementation exists, so this is a small recursive-descent parser.
//
// Supported: string ('…' or "…", doubled quote escapes), integer and boolean
// (TRUE/FALSE) literals; attribute identifiers (context attributes and
// extensions); parentheses; NOT, AND, OR, XOR; =, !=, <>, <, <=, >, >=;
// [NOT] LIKE with % and _ (backslash escapes); [NOT] IN (list); EXISTS attr;
// unary minus, + - * / %; functions LOWER, UPPER, LENGTH, CONCAT, TRIM, ABS,
// BOOL, INT, STRING. Keywords and function names are case-insensitive.
// Semantics: every CloudEvent attribute is a string; comparisons with an
// integer or boolean operand cast the other side to that type (as CESQL's
// implicit casts do); a missing attribute or a failed cast is an evaluation
// error, and Knative treats an erroring expression as not matching.

type CesqlValue = string | number | boolean;

type Node =
  | { kind: 'literal'; value: CesqlValue }
  | { kind: 'attr'; name: string }
  | { kind: 'exists'; name: string }
  | { kind: 'unary'; op: 'NOT' | '-'; operand: Node }
  | { kind: 'binary'; op: string; left: Node; right: Node }
  | { kind: 'like'; negated: boolean; subject: Node; pattern: string }
  | { kind: 'in'; negated: boolean; subject: Node; list: Node[] }
  | { kind: 'call'; name: string; args: Node[] };

export class CesqlError extends Error {}

export interface CesqlExpression {
  readonly source: string;
  /** True when the expression evaluates to TRUE; false when FALSE or on an evaluation error. */
  matches(attributes: Readonly<Record<string, string>>): boolean;
  /** Evaluates, throwing CesqlError on an evaluation error (missing attribute, bad cast). */
  evaluate(attributes: Readonly<Record<string, string>>): CesqlValue;
}

export function parseCesql(source: string): CesqlExpression {
  const ast = new Parser(source).parseAll();
  return {
    source,
    evaluate: (attributes) => evaluate(ast, attributes),
    matches(attributes) {
      try {
        return toBoolean(evaluate(ast, attributes)) === true;
      } catch (err) {
        if (err instanceof CesqlError) return false;
        throw err;
      }
    },
  };
}

// ---- lexer ----

type Token = { t: 'str'; v: string; pos: number } | { t: 'int'; v: number; pos: number } | { t: 'id'; v: string; pos: number } | { t: 'op'; v: string; pos: number } | { t: 'eof'; pos: number };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let v = '';
      let j = i + 1;
      for (;;) {
        if (j >= src.length) throw new CesqlError(`unterminated string literal at ${i} in ${JSON.stringify(src)}`);
        if (src[j] === c) {
          if (src[j + 1] === c) {
            v += c;
            j += 2;
            continue;
          }
          break;
        }
        v += src[j];
        j++;
      }
      out.push({ t: 'str', v, pos: i });
      i = j + 1;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i;
      while (j < src.length && /[0-9]/.test(src[j]!)) j++;
      out.push({ t: 'int', v: Number(src.slice(i, j)), pos: i });
      i = j;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      out.push({ t: 'id', v: src.slice(i, j), pos: i });
      i = j;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '!=' || two === '<>' || two === '<=' || two === '>=') {
      out.push({ t: 'op', v: two, pos: i });
      i += 2;
      continue;
    }
    if ('=<>()+-*/%,'.includes(c)) {
      out.push({ t: 'op', v: c, pos: i });
      i++;
      continue;
    }
    throw new CesqlError(`unexpected character ${JSON.stringify(c)} at ${i} in ${JSON.stringify(src)}`);
  }
  out.push({ t: 'eof', pos: src.length });
  return out;
}

// ---- parser ----

const FUNCTIONS: Record<string, { min: number; max: number }> = {
  LOWER: { min: 1, max: 1 },
  UPPER: { min: 1, max: 1 },
  TRIM: { min: 1, max: 1 },
  LENGTH: { min: 1, max: 1 },
  ABS: { min: 1, max: 1 },
  BOOL: { min: 1, max: 1 },
  INT: { min: 1, max: 1 },
  STRING: { min: 1, max: 1 },
  CONCAT: { min: 0, max: Infinity },
};

class Parser {
  private readonly tokens: Token[];
  private i = 0;

  constructor(private readonly src: string) {
    this.tokens = tokenize(src);
  }

  parseAll(): Node {
    const node = this.parseOr();
    const t = this.peek();
    if (t.t !== 'eof') throw this.error(t, 'unexpected token');
    return node;
  }

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    return this.tokens[this.i++]!;
  }

  private isKeyword(word: string, offset = 0): boolean {
    const t = this.tokens[this.i + offset];
    return t !== undefined && t.t === 'id' && t.v.toUpperCase() === word;
  }

  private isOp(op: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === op;
  }

  private expectOp(op: string): void {
    const t = this.next();
    if (t.t !== 'op' || t.v !== op) throw this.error(t, `expected "${op}"`);
  }

  private error(t: Token, message: string): CesqlError {
    const shown = t.t === 'eof' ? 'end of expression' : JSON.stringify(String(t.v));
    return new CesqlError(`${message} at ${t.pos} (${shown}) in ${JSON.stringify(this.src)}`);
  }

  private parseOr(): Node {
    let left = this.parseXor();
    while (this.isKeyword('OR')) {
      this.next();
      left = { kind: 'binary', op: 'OR', left, right: this.parseXor() };
    }
    return left;
  }

  private parseXor(): Node {
    let left = this.parseAnd();
    while (this.isKeyword('XOR')) {
      this.next();
      left = { kind: 'binary', op: 'XOR', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): Node {
    let left = this.parseNot();
    while (this.isKeyword('AND')) {
      this.next();
      left = { kind: 'binary', op: 'AND', left, right: this.parseNot() };
    }
    return left;
  }

  private parseNot(): Node {
    if (this.isKeyword('NOT')) {
      this.next();
      return { kind: 'unary', op: 'NOT', operand: this.parseNot() };
    }
    return this.parseComparison();
  }

  private parseComparison(): Node {
    const left = this.parseAdditive();
    const t = this.peek();
    if (t.t === 'op' && ['=', '!=', '<>', '<', '<=', '>', '>='].includes(t.v)) {
      this.next();
      return { kind: 'binary', op: t.v === '<>' ? '!=' : t.v, left, right: this.parseAdditive() };
    }
    let negated = false;
    if (this.isKeyword('NOT') && (this.isKeyword('LIKE', 1) || this.isKeyword('IN', 1))) {
      this.next();
      negated = true;
    }
    if (this.isKeyword('LIKE')) {
      this.next();
      const p = this.next();
      if (p.t !== 'str') throw this.error(p, 'LIKE needs a string literal pattern');
      return { kind: 'like', negated, subject: left, pattern: p.v };
    }
    if (this.isKeyword('IN')) {
      this.next();
      this.expectOp('(');
      const list: Node[] = [this.parseOr()];
      while (this.isOp(',')) {
        this.next();
        list.push(this.parseOr());
      }
      this.expectOp(')');
      return { kind: 'in', negated, subject: left, list };
    }
    if (negated) throw this.error(this.peek(), 'expected LIKE or IN after NOT');
    return left;
  }

  private parseAdditive(): Node {
    let left = this.parseMultiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.next() as { v: string }).v;
      left = { kind: 'binary', op, left, right: this.parseMultiplicative() };
    }
    return left;
  }

  private parseMultiplicative(): Node {
    let left = this.parseUnary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = (this.next() as { v: string }).v;
      left = { kind: 'binary', op, left, right: this.parseUnary() };
    }
    return left;
  }

  private parseUnary(): Node {
    if (this.isOp('-')) {
      this.next();
      return { kind: 'unary', op: '-', operand: this.parseUnary() };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Node {
    const t = this.next();
    if (t.t === 'str' || t.t === 'int') return { kind: 'literal', value: t.v };
    if (t.t === 'op' && t.v === '(') {
      const inner = this.parseOr();
      this.expectOp(')');
      return inner;
    }
    if (t.t === 'id') {
      const upper = t.v.toUpperCase();
      if (upper === 'TRUE' || upper === 'FALSE') return { kind: 'literal', value: upper === 'TRUE' };
      if (upper === 'EXISTS') {
        const name = this.next();
        if (name.t !== 'id') throw this.error(name, 'EXISTS needs an attribute name');
        return { kind: 'exists', name: name.v.toLowerCase() };
      }
      if (this.isOp('(')) {
        const fn = FUNCTIONS[upper];
        if (!fn) throw this.error(t, 'unknown function (supported: ' + Object.keys(FUNCTIONS).join(', ') + ')');
        this.next();
        const args: Node[] = [];
        if (!this.isOp(')')) {
          args.push(this.parseOr());
          while (this.isOp(',')) {
            this.next();
            args.push(this.parseOr());
          }
        }
        this.expectOp(')');
        if (args.length < fn.min || args.length > fn.max) throw this.error(t, `wrong number of arguments (${args.length}) for ${upper}`);
        return { kind: 'call', name: upper, args };
      }
      return { kind: 'attr', name: t.v.toLowerCase() };
    }
    throw this.error(t, 'expected a value');
  }
}

// ---- evaluation ----

function evaluate(node: Node, attrs: Readonly<Record<string, string>>): CesqlValue {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'attr': {
      const v = attrs[node.name];
      if (v === undefined) throw new CesqlError(`attribute ${node.name} is missing`);
      return v;
    }
    case 'exists':
      return attrs[node.name] !== undefined;
    case 'unary':
      return node.op === 'NOT' ? !toBoolean(evaluate(node.operand, attrs)) : -toInteger(evaluate(node.operand, attrs));
    case 'like': {
      const matched = likeToRegExp(node.pattern).test(toText(evaluate(node.subject, attrs)));
      return node.negated ? !matched : matched;
    }
    case 'in': {
      const subject = evaluate(node.subject, attrs);
      const found = node.list.some((item) => equals(subject, evaluate(item, attrs)));
      return node.negated ? !found : found;
    }
    case 'call':
      return call(
        node.name,
        node.args.map((a) => evaluate(a, attrs)),
      );
    case 'binary':
      return binary(node, attrs);
  }
}

function binary(node: Extract<Node, { kind: 'binary' }>, attrs: Readonly<Record<string, string>>): CesqlValue {
  if (node.op === 'AND') return toBoolean(evaluate(node.left, attrs)) && toBoolean(evaluate(node.right, attrs));
  if (node.op === 'OR') return toBoolean(evaluate(node.left, attrs)) || toBoolean(evaluate(node.right, attrs));
  const left = evaluate(node.left, attrs);
  const right = evaluate(node.right, attrs);
  switch (node.op) {
    case 'XOR':
      return toBoolean(left) !== toBoolean(right);
    case '=':
      return equals(left, right);
    case '!=':
      return !equals(left, right);
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const [a, b] = typeof left === 'string' && typeof right === 'string' ? [left, right] : [toInteger(left), toInteger(right)];
      if (node.op === '<') return a < b;
      if (node.op === '<=') return a <= b;
      if (node.op === '>') return a > b;
      return a >= b;
    }
    default: {
      const a = toInteger(left);
      const b = toInteger(right);
      if (node.op === '+') return a + b;
      if (node.op === '-') return a - b;
      if (node.op === '*') return a * b;
      if (b === 0) throw new CesqlError('division by zero');
      return node.op === '/' ? Math.trunc(a / b) : a % b;
    }
  }
}

function call(name: string, args: CesqlValue[]): CesqlValue {
  const first = args[0]!;
  switch (name) {
    case 'LOWER':
      return toText(first).toLowerCase();
    case 'UPPER':
      return toText(first).toUpperCase();
    case 'TRIM':
      return toText(first).trim();
    case 'LENGTH':
      return [...toText(first)].length;
    case 'ABS':
      return Math.abs(toInteger(first));
    case 'BOOL':
      return toBoolean(first);
    case 'INT':
      return toInteger(first);
    case 'STRING':
      return toText(first);
    default:
      return args.map(toText).join('');
  }
}

// Mixed-type equality casts the string side to the other operand's type.
function equals(a: CesqlValue, b: CesqlValue): boolean {
  if (typeof a === typeof b) return a === b;
  if (typeof a === 'boolean' || typeof b === 'boolean') return toBoolean(a) === toBoolean(b);
  return toInteger(a) === toInteger(b);
}

function toText(v: CesqlValue): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

function toInteger(v: CesqlValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') throw new CesqlError('cannot cast a boolean to an integer');
  if (!/^[+-]?\d+$/.test(v.trim())) throw new CesqlError(`cannot cast ${JSON.stringify(v)} to an integer`);
  return Number(v.trim());
}

function toBoolean(v: CesqlValue): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const lower = v.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  throw new CesqlError(`cannot cast ${JSON.stringify(v)} to a boolean`);
}

function likeToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRegExp(pattern[++i]!);
    } else if (c === '%') {
      re += '[\\s\\S]*';
    } else if (c === '_') {
      re += '[\\s\\S]';
    } else {
      re += escapeRegExp(c);
    }
  }
  return new RegExp(`^${re}$`, 'u');
}

function escapeRegExp(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
