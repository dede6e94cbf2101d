/** Protobuf wire bytes written by hand, for tests that need encodings no encoder would produce. */

/** A base-128 varint, minimally encoded (exact up to 2^53). */
export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
