/**
 * A read-only view of one attribute list (the KeyValue fields of a resource, scope, span or span event)
 * in a batch's bytes: where each key and value lies. Reused from list to list, so reading allocates
 * nothing once the arrays have grown to the longest list seen.
 *
 * Values are read as any protobuf decoder reads them, and what decoders could read differently from this
 * view is refused: a KeyValue with two value fields (decoders merge them) or an AnyValue with two kinds set.
 */
import { invalidArgument } from '../../pipeline/service/errors.js';
import { WireReader, WT_LEN } from '../../pipeline/batch/wire.js';

export class AttrList {
  count = 0;
  /** The whole KeyValue field [fStart, fEnd): tag, length and content. */
  fStart: Int32Array;
  fEnd: Int32Array;
  /** Key bytes [kStart, kEnd); empty when the KeyValue has no key. */
  kStart: Int32Array;
  kEnd: Int32Array;
  /** AnyValue kind (VALUE_*), 0 when the value is empty or absent. */
  kind: Uint8Array;
  /** The value's payload: string/bytes/array/kvlist content, the varint bytes, or the 8 double bytes. */
  vStart: Int32Array;
  vEnd: Int32Array;
  /** The AnyValue message body (an EncodedValue), [-1, -1) when the KeyValue has no value field. */
  mStart: Int32Array;
  mEnd: Int32Array;
  /** Per attribute, the decision (A_* in redactor.ts). */
  action: Uint8Array;
  /** Per attribute, the masked value when the decision is to mask. */
  masked: (string | null)[];

  private readonly r = new WireReader();
  private readonly kv = new WireReader();

  constructor(capacity = 32) {
    this.fStart = new Int32Array(capacity);
    this.fEnd = new Int32Array(capacity);
    this.kStart = new Int32Array(capacity);
    this.kEnd = new Int32Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.vStart = new Int32Array(capacity);
    this.vEnd = new Int32Array(capacity);
    this.mStart = new Int32Array(capacity);
    this.mEnd = new Int32Array(capacity);
    this.action = new Uint8Array(capacity);
    this.masked = new Array<string | null>(capacity).fill(null);
  }

  /** Reads the KeyValue fields numbered `field` in the message body buf[start, end). */
  read(buf: Uint8Array, start: number, end: number, field: number): void {
    this.count = 0;
    const want = (field << 3) | WT_LEN;
    const r = this.r;
    r.reset(buf, start);
    while (r.pos < end) {
      const tagPos = r.pos;
      const tag = r.uint32(end);
      if (tag === want) {
        const stop = r.lengthDelimitedEnd(end);
        this.add(buf, tagPos, r.pos, stop);
        r.pos = stop;
      } else {
        r.skip(tag & 7, end);
      }
    }
  }

  private add(buf: Uint8Array, fieldStart: number, start: number, end: number): void {
    if (this.count === this.kStart.length) this.grow();
    const i = this.count++;
    this.fStart[i] = fieldStart;
    this.fEnd[i] = end;
    const r = this.kv;
    r.reset(buf, start);
    let ks = start;
    let ke = start;
    let keys = 0;
    let ms = -1;
    let me = -1;
    let values = 0;
    while (r.pos < end) {
      const tag = r.uint32(end);
      if (tag === 0x0a) {
        ke = r.lengthDelimitedEnd(end);
        ks = r.pos;
        r.pos = ke;
        keys++;
      } else if (tag === 0x12) {
        me = r.lengthDelimitedEnd(end);
        ms = r.pos;
        r.pos = me;
        values++;
      } else {
        r.skip(tag & 7, end);
      }
    }
    if (keys > 1) throw invalidArgument('an attribute has more than one key');
    if (values > 1) throw invalidArgument('an attribute has more than one value');
    this.kStart[i] = ks;
    this.kEnd[i] = ke;
    this.mStart[i] = ms;
    this.mEnd[i] = me;
    this.action[i] = 0;
    this.masked[i] = null;
    let kind = 0;
    let vs = -1;
    let ve = -1;
    if (ms >= 0) {
      let kinds = 0;
      r.reset(buf, ms);
      while (r.pos < me) {
        const tag = r.uint32(me);
        const f = tag >>> 3;
        let s = r.pos;
        if ((tag & 7) === WT_LEN) {
          const stop = r.lengthDelimitedEnd(me);
          s = r.pos;
          r.pos = stop;
        } else r.skip(tag & 7, me);
        if (f >= 1 && f <= 7) {
          kind = f;
          vs = s;
          ve = r.pos;
          kinds++;
        }
      }
      if (kinds > 1) throw invalidArgument('an attribute value has more than one kind set');
    }
    this.kind[i] = kind;
    this.vStart[i] = vs;
    this.vEnd[i] = ve;
  }

  private grow(): void {
    const n = this.kStart.length * 2;
    const g = (a: Int32Array): Int32Array => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.fStart = g(this.fStart);
    this.fEnd = g(this.fEnd);
    this.kStart = g(this.kStart);
    this.kEnd = g(this.kEnd);
    this.vStart = g(this.vStart);
    this.vEnd = g(this.vEnd);
    this.mStart = g(this.mStart);
    this.mEnd = g(this.mEnd);
    const k = new Uint8Array(n);
    k.set(this.kind);
    this.kind = k;
    this.action = new Uint8Array(n);
    this.masked = new Array<string | null>(n).fill(null);
  }
}
