/**
 * The on-disk framing of one queued batch in a persistent queue segment:
 *
 *   offset  size  field
 *   0       4     magic "TWQ1"
 *   4       4     payload length N (uint32, little-endian)
 *   8       4     CRC-32 of bytes 12 … 28+N (everything after this field)
 *   12      8     sequence number (uint64, little-endian; below 2^53)
 *   20      4     span count
 *   24      4     flags (0; reserved)
 *   28      N     the encoded ExportTraceServiceRequest
 *
 * The checksum covers the sequence number, the span count and the payload, so a torn or flipped record is
 * never delivered; a wrong length shows as a wrong checksum. After a damaged record the reader looks for the
 * next magic whose record checks out, so one bad record costs only itself.
 */
import { crc32 } from 'node:zlib';

export const RECORD_MAGIC = 0x31515754; // "TWQ1" read as a little-endian uint32
export const RECORD_HEADER_BYTES = 28;
/** Larger than any batch the receivers accept; a length above it is damage, not data. */
export const MAX_RECORD_PAYLOAD = 1 << 30;

export interface RecordHeader {
  seq: number;
  spans: number;
  length: number;
}

/** The 28-byte header for a payload; its checksum already covers the payload. */
export function encodeRecordHeader(seq: number, spans: number, payload: Uint8Array): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  h.writeUInt32LE(RECORD_MAGIC, 0);
  h.writeUInt32LE(payload.byteLength, 4);
  h.writeUInt32LE(seq % 0x1_0000_0000, 12);
  h.writeUInt32LE(Math.floor(seq / 0x1_0000_0000), 16);
  h.writeUInt32LE(spans, 20);
  h.writeUInt32LE(0, 24);
  h.writeUInt32LE(crc32(payload, crc32(h.subarray(12, RECORD_HEADER_BYTES))), 8);
  return h;
}

/** Whether `buf` holds, at `at`, a whole record whose checksum is right; its header then, else null. */
export function readRecordAt(buf: Buffer, at: number): RecordHeader | null {
  if (at + RECORD_HEADER_BYTES > buf.length || buf.readUInt32LE(at) !== RECORD_MAGIC) return null;
  const length = buf.readUInt32LE(at + 4);
  if (length > MAX_RECORD_PAYLOAD || at + RECORD_HEADER_BYTES + length > buf.length) return null;
  const sum = crc32(buf.subarray(at + 12, at + RECORD_HEADER_BYTES + length));
  if (sum !== buf.readUInt32LE(at + 8)) return null;
  return { seq: buf.readUInt32LE(at + 12) + buf.readUInt32LE(at + 16) * 0x1_0000_0000, spans: buf.readUInt32LE(at + 20), length };
}

/** Whether `payload` is the one the header at `header` was written for (a record read back from disk). */
export function payloadMatches(header: Buffer, payload: Uint8Array): boolean {
  return crc32(payload, crc32(header.subarray(12, RECORD_HEADER_BYTES))) === header.readUInt32LE(8);
}

export interface ScannedRecord extends RecordHeader {
  /** Offset of the record's header in the segment. */
  offset: number;
}

export interface SegmentScan {
  records: ScannedRecord[];
  /** Damaged stretches skipped: each a record (or the torn tail) that could not be read. */
  corrupt: number;
  /** Bytes up to the end of the last good record: what a torn tail is cut back to. */
  goodLength: number;
}

/**
 * Every intact record of a segment, in file order. A stretch that is not a record is counted once and
 * stepped over to the next offset where an intact record starts; a record cut short at the end (a crash
 * during the write) is counted the same way.
 */
export function scanSegment(buf: Buffer): SegmentScan {
  const records: ScannedRecord[] = [];
  let corrupt = 0;
  let at = 0;
  let goodLength = 0;
  while (at < buf.length) {
    const r = readRecordAt(buf, at);
    if (r !== null) {
      records.push({ ...r, offset: at });
      at += RECORD_HEADER_BYTES + r.length;
      goodLength = at;
      continue;
    }
    corrupt++;
    at = nextIntactRecord(buf, at + 1);
  }
  return { records, corrupt, goodLength };
}

const MAGIC_BYTES = Buffer.from('TWQ1', 'latin1');

function nextIntactRecord(buf: Buffer, from: number): number {
  for (let at = buf.indexOf(MAGIC_BYTES, from); at >= 0; at = buf.indexOf(MAGIC_BYTES, at + 1)) {
    if (readRecordAt(buf, at) !== null) return at;
  }
  return buf.length;
}
