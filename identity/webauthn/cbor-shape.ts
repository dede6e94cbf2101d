/**
 * Just enough CBOR to find where one data item ends, so authenticator extension data can be checked
 * for exact length without decoding it. Definite lengths only (CTAP2 canonical CBOR has no indefinite
 * ones) and bounded nesting, so a hostile input costs at most one pass over its bytes.
 */

const MAX_DEPTH = 8;

/** End offset of the item starting at `pos`, or -1 when it is not well-formed or runs past `end`. */
export function cborItemEnd(buf: Uint8Array, pos: number, end: number, depth = 0): number {
  if (depth > MAX_DEPTH || pos >= end) return -1;
  const initial = buf[pos++];
  const major = initial >> 5;
  const info = initial & 0x1f;
  let arg: number;
  if (info < 24) {
    arg = info;
  } else if (info === 24) {
    if (pos + 1 > end) return -1;
    arg = buf[pos];
    pos += 1;
  } else if (info === 25) {
    if (pos + 2 > end) return -1;
    arg = (buf[pos] << 8) | buf[pos + 1];
    pos += 2;
  } else if (info === 26) {
    if (pos + 4 > end) return -1;
    arg = ((buf[pos] << 24) >>> 0) + ((buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]);
    pos += 4;
  } else if (info === 27) {
    if (pos + 8 > end) return -1;
    // Any length this large cannot fit in a 16 KiB input, so the high word only has to be zero.
    if (buf[pos] | buf[pos + 1] | buf[pos + 2] | buf[pos + 3]) return major <= 1 || major === 7 ? pos + 8 : -1;
    arg = ((buf[pos + 4] << 24) >>> 0) + ((buf[pos + 5] << 16) | (buf[pos + 6] << 8) | buf[pos + 7]);
    pos += 8;
  } else {
    return -1; // 28-30 reserved, 31 indefinite length
  }
  switch (major) {
    case 0:
    case 1:
    case 7:
      return pos;
    case 2:
    case 3:
      return arg <= end - pos ? pos + arg : -1;
    case 4:
    case 5: {
      const items = major === 5 ? arg * 2 : arg;
      if (items > end - pos) return -1; // every item takes at least one byte
      for (let i = 0; i < items; i++) {
        pos = cborItemEnd(buf, pos, end, depth + 1);
        if (pos < 0) return -1;
      }
      return pos;
    }
    case 6:
      return cborItemEnd(buf, pos, end, depth + 1);
    default:
      return -1;
  }
}

/** True when bytes [start, end) hold exactly one CBOR map. */
export function isSingleCborMap(buf: Uint8Array, start: number, end: number): boolean {
  return start < end && buf[start] >> 5 === 5 && cborItemEnd(buf, start, end) === end;
}
