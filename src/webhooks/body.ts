import { HTTPException } from "hono/http-exception";

/**
 * The largest delivery accepted. Meta batches up to 1000 updates in one delivery, and one
 * update with a long message in a non-Latin script can pass 3 KB, so 4 MiB leaves room for a
 * full batch while still bounding what an unsigned sender can make the Worker read.
 */
export const MAX_DELIVERY_BYTES = 4 * 1024 * 1024;

/** Reads the raw body once, refusing with 413 as soon as it passes the limit. */
export async function readBody(
  request: Request,
  limit = MAX_DELIVERY_BYTES,
): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () => new HTTPException(413, { message: `body is larger than ${limit} bytes` });

  const declared = Number(request.headers.get("content-length"));
  if (declared > limit) throw tooLarge();
  if (!request.body) return new Uint8Array(0);

  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }

  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
