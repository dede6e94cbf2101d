/**
 * A bare HTTP/2 client that writes its own frames, for requests Node's client refuses to send (the same
 * header twice, as an attacker would). One request per connection; resolves with the response HEADERS
 * frame's arrival (its HPACK block is not decoded) or the connection's end.
 */
import { connect } from 'node:net';

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** Literal header fields without indexing, new names, no Huffman: every header exactly as given. */
function hpack(headers: readonly (readonly [string, string])[]): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    out.push(0x00, ...hpackInt(n.length, 7, 0), ...n, ...hpackInt(v.length, 7, 0), ...v);
  }
  return Buffer.from(out);
}

export interface RawH2Result {
  /** Whether the server answered the request with a HEADERS frame (as opposed to resetting or closing). */
  answered: boolean;
  /** RST_STREAM error code for the request, or -1. */
  reset: number;
}

export function rawH2Request(port: number, headers: readonly (readonly [string, string])[], body: Buffer, timeoutMs = 5000): Promise<RawH2Result> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (r: RawH2Result): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ answered: false, reset: -1 }), timeoutMs);
    sock.on('error', (e) => (done ? undefined : reject(e)));
    sock.on('close', () => finish({ answered: false, reset: -1 }));
    sock.on('connect', () => {
      sock.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      sock.write(frame(4, 0, 0, Buffer.alloc(0)));
      sock.write(frame(1, 0x4, 1, hpack(headers)));
      sock.write(frame(0, 0x1, 1, body));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) sock.write(frame(4, 1, 0, Buffer.alloc(0)));
        if (type === 1 && stream === 1) finish({ answered: true, reset: -1 });
        if (type === 3 && stream === 1) finish({ answered: false, reset: payload.readUInt32BE(0) });
      }
    });
  });
}
