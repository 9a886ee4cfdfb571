import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.js";

/**
 * Reads a request body of at most `maxBytes`, refusing at once on a larger `content-length` and
 * stopping at the bound otherwise, so an oversized body never sits in memory. Throws `HttpError`
 * 413, or 400 when the client aborts mid-body.
 */
export async function readBoundedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(`request body exceeds the limit of ${maxBytes} bytes`, {
      status: 413,
      type: "invalid_request_error",
      code: "request_too_large",
    });
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of req) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > maxBytes) throw tooLarge();
      chunks.push(buffer);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(
      "request body could not be read",
      { status: 400, type: "invalid_request_error", code: "body_read_failed" },
      { cause: error },
    );
  }
  return Buffer.concat(chunks, total);
}
