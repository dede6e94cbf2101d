/**
 * The OTTL engine's entry points for components: compile a condition or a statement once at config time
 * (throwing OttlError with the position of what is wrong), then evaluate it against a Target per unit.
 */
import { Compiler, inferContext, pathsOf, type Predicate } from './compiler.js';
import { OttlError } from './errors.js';
import type { Eval } from './paths.js';
import { parseCondition, parseStatement } from './parser.js';
import { CONTEXT_NAMES, type ContextLevel } from './target.js';
import { pathText } from './paths.js';

export { OttlError, OttlRuntimeError } from './errors.js';
export { Target, CTX_RESOURCE, CTX_SCOPE, CTX_SPAN, CTX_SPANEVENT, CONTEXT_NAMES, type ContextLevel, type ContextName } from './target.js';
export type { Predicate } from './compiler.js';

export interface CompiledStatement {
  text: string;
  context: ContextLevel;
  run: Eval;
  /** The attribute keys and other paths it reads or writes, as written (for the identity ordering check). */
  paths: string[];
}

export interface CompiledCondition {
  text: string;
  context: ContextLevel;
  test: Predicate;
  paths: string[];
}

/** Compiles a statement in `context`, or in the context its paths name when `context` is null. */
export function compileStatement(text: string, context: ContextLevel | null): CompiledStatement {
  const ast = parseStatement(text);
  const level = context ?? inferContext(ast);
  return { text, context: level, run: new Compiler(level).statement(ast), paths: pathsOf(ast).map((p) => pathText(p.fields)) };
}

/** Compiles a condition in `context`, or in the context its paths name when `context` is null. */
export function compileCondition(text: string, context: ContextLevel | null): CompiledCondition {
  const ast = parseCondition(text);
  const level = context ?? inferContext(ast);
  return { text, context: level, test: new Compiler(level).condition(ast), paths: pathsOf(ast).map((p) => pathText(p.fields)) };
}

/** The context named `name` (resource, scope, span, spanevent), or null. */
export function contextNamed(name: string): ContextLevel | null {
  const i = (CONTEXT_NAMES as readonly string[]).indexOf(name);
  return i < 0 ? null : (i as ContextLevel);
}

/** `OttlError` as a config problem: what is wrong and where in the statement. */
export function describeOttlError(err: OttlError, text: string): string {
  return `${err.reason} at column ${err.offset + 1} of ${JSON.stringify(text)}`;
}

/**
 * The attribute keys (`attributes["k"]` of any context) a statement or condition reads or writes, from
 * its text: what the ordering check compares with the keys the identity processor writes.
 */
export function attributeKeysOf(text: string, kind: 'condition' | 'statement'): string[] {
  const ast = kind === 'condition' ? parseCondition(text) : parseStatement(text);
  const keys: string[] = [];
  for (const p of pathsOf(ast)) {
    const last = p.fields[p.fields.length - 1]!;
    if (last.name === 'attributes' && last.keys[0]?.str !== undefined) keys.push(last.keys[0].str);
  }
  return keys;
}
