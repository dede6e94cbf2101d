/**
 * The syntax tree of an OTTL statement or condition, as the parser builds it. Every node carries `pos`,
 * its offset in the statement text, so a type error can point at the part that is wrong.
 */

export interface Key {
  pos: number;
  /** `["text"]`, `[3]`, or a path or converter whose value is the key. */
  str?: string;
  int?: bigint;
  expr?: ValueNode;
}

export interface PathField {
  name: string;
  keys: Key[];
  pos: number;
}

export type ValueNode =
  | { t: 'nil'; pos: number }
  | { t: 'string'; v: string; pos: number }
  | { t: 'int'; v: bigint; pos: number }
  | { t: 'float'; v: number; pos: number }
  | { t: 'bool'; v: boolean; pos: number }
  | { t: 'bytes'; v: Uint8Array; pos: number }
  | { t: 'enum'; name: string; pos: number }
  | { t: 'path'; fields: PathField[]; pos: number }
  | { t: 'call'; call: Call }
  | { t: 'list'; items: ValueNode[]; pos: number }
  | { t: 'map'; entries: [string, ValueNode][]; pos: number }
  | { t: 'math'; op: '+' | '-' | '*' | '/'; left: ValueNode; right: ValueNode; pos: number };

export interface Argument {
  /** Set for a named argument (`pattern = "x"`). */
  name: string | null;
  value: ValueNode;
  pos: number;
}

/** An editor (lower-case name, a statement's action) or a converter (upper-case name, a value). */
export interface Call {
  name: string;
  args: Argument[];
  keys: Key[];
  pos: number;
}

export type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type BoolNode =
  | { t: 'or'; items: BoolNode[]; pos: number }
  | { t: 'and'; items: BoolNode[]; pos: number }
  | { t: 'not'; inner: BoolNode; pos: number }
  | { t: 'compare'; op: CompareOp; left: ValueNode; right: ValueNode; pos: number }
  /** `true`, `false`, or a converter that returns a boolean. */
  | { t: 'const'; value: ValueNode; pos: number };

export interface Statement {
  editor: Call;
  where: BoolNode | null;
}

export function nodePos(n: ValueNode): number {
  return n.t === 'call' ? n.call.pos : n.pos;
}
