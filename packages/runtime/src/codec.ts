import {
  type DescMessage,
  fromBinary,
  fromJsonString,
  type MessageShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";

/** A payload that could not be encoded or decoded. Callers count these and drop the message. */
export class CodecError extends Error {
  override readonly name = "CodecError";
  constructor(
    message: string,
    /** Codec that failed, e.g. `proto:sluice.v1.EngineLoad` or `json`. */
    readonly codec: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: CodecError };

/** Turns values into message payloads and back. `decode` throws only {@link CodecError}. */
export interface Codec<T> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(data: Uint8Array): T;
  /** `decode` without exceptions, for subscription loops that count and drop bad messages. */
  tryDecode(data: Uint8Array): DecodeResult<T>;
}

function makeCodec<T>(
  name: string,
  encode: (value: T) => Uint8Array,
  decode: (data: Uint8Array) => T,
): Codec<T> {
  const wrap = <R>(what: string, fn: () => R): R => {
    try {
      return fn();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new CodecError(`${name}: cannot ${what}: ${reason}`, name, { cause: err });
    }
  };
  const codec: Codec<T> = {
    name,
    encode: (value) => wrap("encode", () => encode(value)),
    decode: (data) => wrap("decode", () => decode(data)),
    tryDecode: (data) => {
      try {
        return { ok: true, value: codec.decode(data) };
      } catch (err) {
        return { ok: false, error: err as CodecError };
      }
    },
  };
  return codec;
}

const utf8Encoder = new TextEncoder();
// fatal: a payload that is not UTF-8 is malformed, not something to paper over with U+FFFD.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Binary protobuf (hot-path messages). */
export function protoCodec<Desc extends DescMessage>(schema: Desc): Codec<MessageShape<Desc>> {
  return makeCodec(
    `proto:${schema.typeName}`,
    (value) => toBinary(schema, value),
    (data) => fromBinary(schema, data),
  );
}

export interface ProtoJsonCodecOptions {
  /** Accept fields this build does not know (a newer publisher). Default true. */
  readonly ignoreUnknownFields?: boolean;
}

/** Proto3 JSON (human-facing events, readable with `nats sub`). */
export function protoJsonCodec<Desc extends DescMessage>(
  schema: Desc,
  options: ProtoJsonCodecOptions = {},
): Codec<MessageShape<Desc>> {
  const ignoreUnknownFields = options.ignoreUnknownFields ?? true;
  return makeCodec(
    `protojson:${schema.typeName}`,
    (value) => utf8Encoder.encode(toJsonString(schema, value)),
    (data) => fromJsonString(schema, utf8Decoder.decode(data), { ignoreUnknownFields }),
  );
}

/**
 * Plain JSON. `parse` checks the decoded value's shape and throws on a mismatch; without it
 * the value is trusted as `T`, which only suits payloads this process wrote itself.
 */
export function jsonCodec<T>(parse?: (value: unknown) => T): Codec<T> {
  return makeCodec<T>(
    "json",
    (value) => utf8Encoder.encode(JSON.stringify(value)),
    (data) => {
      const value: unknown = JSON.parse(utf8Decoder.decode(data));
      return parse === undefined ? (value as T) : parse(value);
    },
  );
}
