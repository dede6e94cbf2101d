/**
 * Checks a configured header before it reaches grpc-js or node:http, whose own errors quote the
 * offending value, which may be a token. Returns the lower-cased name.
 */
export function checkHeader(name: string, value: string): string {
  const key = name.toLowerCase();
  if (!/^[0-9a-z_.-]+$/.test(key)) throw new Error(`header name ${JSON.stringify(name)} has characters not allowed in a header name`);
  if (key.endsWith('-bin')) throw new Error(`header ${key}: binary (-bin) headers are not supported`);
  // Printable ASCII only: what gRPC metadata allows, and a safe subset of HTTP field values.
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`header ${key}: the value has characters not allowed in a header (its value is not shown)`);
  return key;
}
