/**
 * The edits a batch records and the encoder applies: their kinds, and the state handed from one to the
 * other. Deletions and replacements are placed at a source offset; insertions are appended to their target.
 */
// Edit kinds.
export const E_DEL_SPAN = 0;
export const E_INS_SPAN = 1;
export const E_DEL_RES = 2;
export const E_INS_RES = 3;
/** An insertion superseded by a later set of the same key on the same target. */
export const E_CANCELLED = 4;
// Replacements of a whole field (source range a..b) by arena bytes (c..d): in a span's content, in a
// Resource message, or in a ScopeSpans outside its spans (its InstrumentationScope).
export const E_REP_SPAN = 5;
export const E_REP_RES = 6;
export const E_REP_SCOPE = 7;

export function isSpanEdit(k: number): boolean {
  return k === E_DEL_SPAN || k === E_INS_SPAN || k === E_REP_SPAN;
}
/** Deletions and replacements: edits at a source offset, applied in offset order. */
export function isPlaced(k: number): boolean {
  return k === E_DEL_SPAN || k === E_DEL_RES || k === E_REP_SPAN || k === E_REP_RES || k === E_REP_SCOPE;
}
export function isReplacement(k: number): boolean {
  return k === E_REP_SPAN || k === E_REP_RES || k === E_REP_SCOPE;
}

export interface EditState {
  count: number;
  kind: Uint8Array | null;
  target: Int32Array | null;
  a: Int32Array | null;
  b: Int32Array | null;
  c: Int32Array | null;
  d: Int32Array | null;
  arena: Uint8Array | null;
  dropped: Uint8Array | null;
}
