/** Applies a batch's edits in one pass: the new request, with every enclosing length prefix fixed. */
import type { BatchIndex } from './batch-index.js';
import { E_CANCELLED, E_INS_RES, E_INS_SPAN, E_REP_SCOPE, isPlaced, isReplacement, isSpanEdit, type EditState } from './edits.js';
import { lenFieldSize, writeLenHeader } from './wire.js';

/** One encoding pass. Sizes are computed bottom-up first, then bytes are written once into an exact buffer. */
export class Encoder {
  private readonly src: Buffer;
  private readonly arena: Buffer | null;
  private readonly e: EditState;
  private out!: Buffer;
  // Per target: first edit, linked through eNext (sorted by source offset when written).
  private readonly spanFirst: Int32Array;
  private readonly resFirst: Int32Array;
  private readonly scopeFirst: Int32Array;
  /** The next scope edit to apply while a scope is written. */
  private scopeCursor = -1;
  private readonly eNext: Int32Array;
  private readonly spanLen: Int32Array; // new content length; -1 = dropped
  private readonly scopeLen: Int32Array; // -1 = dropped
  private readonly scopeChanged: Uint8Array; // 1 = rewritten (a span in it dropped or edited)
  private readonly resLen: Int32Array; // ResourceSpans new content length; -1 = dropped
  private readonly resMsgLen: Int32Array; // Resource message new content length; -1 = unchanged/absent

  constructor(
    bytes: Uint8Array,
    edits: EditState,
    private readonly x: BatchIndex,
    private readonly from: number,
    private readonly to: number,
  ) {
    // Buffer.copy moves bytes natively without the view `subarray` would allocate for every range.
    this.src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.e = edits;
    const arena = this.e.arena;
    this.arena = arena === null ? null : Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength);
    this.spanFirst = new Int32Array(x.spans).fill(-1);
    this.resFirst = new Int32Array(x.resources).fill(-1);
    this.scopeFirst = new Int32Array(x.scopes).fill(-1);
    this.eNext = new Int32Array(this.e.count);
    this.spanLen = new Int32Array(x.spans);
    this.scopeLen = new Int32Array(x.scopes);
    this.scopeChanged = new Uint8Array(x.scopes);
    this.resLen = new Int32Array(x.resources);
    this.resMsgLen = new Int32Array(x.resources).fill(-1);
  }

  run(): Uint8Array {
    const { x, e } = this;
    const isRange = this.from !== 0 || this.to !== x.spans;
    // Link edits per target, keeping source order for deletions (insertions have no source order).
    for (let i = e.count - 1; i >= 0; i--) {
      const k = e.kind![i]!;
      const t = e.target![i]!;
      if (k === E_CANCELLED) continue;
      if (isSpanEdit(k)) {
        this.eNext[i] = this.spanFirst[t]!;
        this.spanFirst[t] = i;
      } else if (k === E_REP_SCOPE) {
        this.eNext[i] = this.scopeFirst[t]!;
        this.scopeFirst[t] = i;
      } else {
        this.eNext[i] = this.resFirst[t]!;
        this.resFirst[t] = i;
      }
    }
    for (let p = 0; p < x.spans; p++) this.spanFirst[p] = this.sortDeletions(this.spanFirst[p]!);
    for (let r = 0; r < x.resources; r++) this.resFirst[r] = this.sortDeletions(this.resFirst[r]!);
    for (let s = 0; s < x.scopes; s++) this.scopeFirst[s] = this.sortDeletions(this.scopeFirst[s]!);

    const dropped = e.dropped;
    for (let p = 0; p < x.spans; p++) {
      if (p < this.from || p >= this.to || (dropped !== null && dropped[p] === 1)) {
        this.spanLen[p] = -1;
        continue;
      }
      this.spanLen[p] = x.spEnd[p]! - x.spStart[p]! + this.delta(this.spanFirst[p]!);
    }
    // Unchanged spans and scopes are copied with their original headers (which a sender may have written
    // with non-minimal varints); rewritten ones get fresh minimal headers. Sizes follow the same rule.
    // A range holds only its resources: top-level bytes between them (unknown fields) are not copied.
    let total = isRange ? 0 : this.src.length;
    for (let r = 0; r < x.resources; r++) {
      if (isRange) total += x.rsEnd[r]! - x.rsTag[r]!;
      const resOld = x.rsEnd[r]! - x.rsStart[r]!;
      let rsLen = resOld;
      let keptScopes = 0;
      const fs = x.rsFirstScope[r]!;
      const ns = x.rsScopeCount[r]!;
      for (let s = fs; s < fs + ns; s++) {
        const oldLen = x.ssEnd[s]! - x.ssStart[s]!;
        let len = oldLen;
        let kept = 0;
        const fp = x.ssFirstSpan[s]!;
        const np = x.ssSpanCount[s]!;
        let changed = false;
        for (let p = fp; p < fp + np; p++) {
          const old = x.spEnd[p]! - x.spTag[p]!;
          const nl = this.spanLen[p]!;
          if (nl < 0) {
            len -= old;
            changed = true;
          } else {
            kept++;
            if (this.spanFirst[p]! >= 0) {
              len += lenFieldSize(nl) - old;
              changed = true;
            }
          }
        }
        if (this.scopeFirst[s]! >= 0) {
          len += this.delta(this.scopeFirst[s]!);
          changed = true;
        }
        const keep = kept > 0 || (np === 0 && !isRange);
        this.scopeLen[s] = keep ? len : -1;
        this.scopeChanged[s] = changed ? 1 : 0;
        const oldEnc = x.ssEnd[s]! - x.ssTag[s]!;
        if (keep) {
          keptScopes++;
          if (changed) rsLen += lenFieldSize(len) - oldEnc;
        } else rsLen -= oldEnc;
      }
      const fr = this.resFirst[r]!;
      if (fr >= 0) {
        const hasMsg = x.rsResTag[r]! >= 0;
        const oldContent = hasMsg ? x.rsResEnd[r]! - x.rsResStart[r]! : 0;
        const newContent = oldContent + this.delta(fr);
        this.resMsgLen[r] = newContent;
        rsLen += lenFieldSize(newContent) - (hasMsg ? x.rsResEnd[r]! - x.rsResTag[r]! : 0);
      }
      const keep = keptScopes > 0 || (ns === 0 && !isRange);
      this.resLen[r] = keep ? rsLen : -1;
      const oldEnc = x.rsEnd[r]! - x.rsTag[r]!;
      total += keep ? lenFieldSize(rsLen) - oldEnc : -oldEnc;
    }

    // Every byte is written (checked below), so the buffer need not be zeroed first.
    this.out = Buffer.allocUnsafeSlow(total);
    let pos = 0;
    let cur = 0;
    for (let r = 0; r < x.resources; r++) {
      if (!isRange) pos = this.copy(cur, x.rsTag[r]!, pos);
      cur = x.rsEnd[r]!;
      if (this.resLen[r]! >= 0) pos = this.writeResourceSpans(r, pos);
    }
    if (!isRange) pos = this.copy(cur, this.src.length, pos);
    if (pos !== total) throw new Error(`encoder size mismatch: wrote ${pos}, computed ${total}`);
    return this.out;
  }

  /**
   * Size change of a target's sorted edit list. A placed edit overlapping the one before it (the same
   * attribute removed by two processors) is skipped, here and when writing.
   */
  private delta(first: number): number {
    const e = this.e;
    let d = 0;
    let cur = -1;
    for (let i = first; i >= 0; i = this.eNext[i]!) {
      const k = e.kind![i]!;
      const a = e.a![i]!;
      if (isPlaced(k)) {
        if (a < cur) continue;
        d -= e.b![i]! - a;
        if (isReplacement(k)) d += e.d![i]! - e.c![i]!;
        cur = e.b![i]!;
      } else d += e.b![i]! - a;
    }
    return d;
  }

  /** Insertion sort of a short edit list by kind (deletions first) then source offset. */
  private sortDeletions(first: number): number {
    if (first < 0 || this.eNext[first]! < 0) return first;
    let sorted = -1;
    let i = first;
    while (i >= 0) {
      const next = this.eNext[i]!;
      const ki = this.sortKey(i);
      if (sorted < 0 || this.sortKey(sorted) > ki) {
        this.eNext[i] = sorted;
        sorted = i;
      } else {
        let p = sorted;
        while (this.eNext[p]! >= 0 && this.sortKey(this.eNext[p]!) <= ki) p = this.eNext[p]!;
        this.eNext[i] = this.eNext[p]!;
        this.eNext[p] = i;
      }
      i = next;
    }
    return sorted;
  }

  private sortKey(i: number): number {
    return isPlaced(this.e.kind![i]!) ? this.e.a![i]! : 0x7fffffff;
  }

  private copy(from: number, to: number, pos: number): number {
    if (to > from) {
      this.src.copy(this.out, pos, from, to);
      return pos + (to - from);
    }
    return pos;
  }

  /** Copies [start,end) applying the deletions and replacements in the list, then appends its insertions. */
  private writeEdited(start: number, end: number, first: number, pos: number): number {
    const e = this.e;
    let cur = start;
    for (let i = first; i >= 0; i = this.eNext[i]!) {
      const k = e.kind![i]!;
      if (isPlaced(k) && e.a![i]! >= cur) {
        pos = this.copy(cur, e.a![i]!, pos);
        if (isReplacement(k)) pos = this.writeArena(e.c![i]!, e.d![i]!, pos);
        cur = e.b![i]!;
      }
    }
    pos = this.copy(cur, end, pos);
    for (let i = first; i >= 0; i = this.eNext[i]!) {
      const k = e.kind![i]!;
      if (k === E_INS_SPAN || k === E_INS_RES) {
        this.arena!.copy(this.out, pos, e.a![i]!, e.b![i]!);
        pos += e.b![i]! - e.a![i]!;
      }
    }
    return pos;
  }

  private writeResourceSpans(r: number, pos: number): number {
    const x = this.x;
    const out = this.out;
    pos = writeLenHeader(out, pos, 1, this.resLen[r]!);
    const resEdited = this.resMsgLen[r]! >= 0;
    const resTag = x.rsResTag[r]!;
    let cur = x.rsStart[r]!;
    if (resEdited && resTag < 0) {
      // No Resource message was sent: the new one goes first.
      pos = writeLenHeader(out, pos, 1, this.resMsgLen[r]!);
      pos = this.writeEdited(0, 0, this.resFirst[r]!, pos);
    }
    let resourcePending = resEdited && resTag >= 0;
    const fs = x.rsFirstScope[r]!;
    const ns = x.rsScopeCount[r]!;
    for (let s = fs; s <= fs + ns; s++) {
      const scopeTag = s < fs + ns ? x.ssTag[s]! : 0x7fffffff;
      if (resourcePending && resTag < scopeTag) {
        pos = this.copy(cur, resTag, pos);
        pos = writeLenHeader(out, pos, 1, this.resMsgLen[r]!);
        pos = this.writeEdited(x.rsResStart[r]!, x.rsResEnd[r]!, this.resFirst[r]!, pos);
        cur = x.rsResEnd[r]!;
        resourcePending = false;
      }
      if (s === fs + ns) break;
      pos = this.copy(cur, scopeTag, pos);
      cur = x.ssEnd[s]!;
      if (this.scopeLen[s]! >= 0) pos = this.writeScope(s, pos);
    }
    return this.copy(cur, x.rsEnd[r]!, pos);
  }

  private writeArena(from: number, to: number, pos: number): number {
    if (to > from) {
      this.arena!.copy(this.out, pos, from, to);
      return pos + (to - from);
    }
    return pos;
  }

  /** Copies the bytes of a scope between its spans, applying the scope's replacements that fall there. */
  private copyScopeGap(from: number, to: number, pos: number): number {
    const e = this.e;
    let cur = from;
    let i = this.scopeCursor;
    while (i >= 0 && e.a![i]! < to) {
      if (e.a![i]! >= cur) {
        pos = this.copy(cur, e.a![i]!, pos);
        pos = this.writeArena(e.c![i]!, e.d![i]!, pos);
        cur = e.b![i]!;
      }
      i = this.eNext[i]!;
    }
    this.scopeCursor = i;
    return this.copy(cur, to, pos);
  }

  private writeScope(s: number, pos: number): number {
    const x = this.x;
    const fp = x.ssFirstSpan[s]!;
    const np = x.ssSpanCount[s]!;
    if (this.scopeChanged[s] === 0) return this.copy(x.ssTag[s]!, x.ssEnd[s]!, pos);
    pos = writeLenHeader(this.out, pos, 2, this.scopeLen[s]!);
    let cur = x.ssStart[s]!;
    this.scopeCursor = this.scopeFirst[s]!;
    for (let p = fp; p < fp + np; p++) {
      pos = this.copyScopeGap(cur, x.spTag[p]!, pos);
      cur = x.spEnd[p]!;
      const len = this.spanLen[p]!;
      if (len < 0) continue;
      if (this.spanFirst[p]! < 0) pos = this.copy(x.spTag[p]!, x.spEnd[p]!, pos);
      else {
        pos = writeLenHeader(this.out, pos, 2, len);
        pos = this.writeEdited(x.spStart[p]!, x.spEnd[p]!, this.spanFirst[p]!, pos);
      }
    }
    return this.copyScopeGap(cur, x.ssEnd[s]!, pos);
  }
}
