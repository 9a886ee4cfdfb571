// Adapter from protobuf-es v2 service descriptors to @grpc/grpc-js service definitions.
//
// grpc-js wants, per method, a path and four (de)serializers; protobuf-es describes services
// as data (`GenService`). Deriving the former from the latter keeps the generated code the
// single source of truth: no hand-written paths, no protobufjs / proto-loader at run time.
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, isMessage, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type {
  CallOptions,
  ChannelCredentials,
  ChannelOptions,
  Client,
  ClientDuplexStream,
  ClientReadableStream,
  ClientUnaryCall,
  ClientWritableStream,
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  Metadata,
  MethodDefinition,
  requestCallback,
  ServiceError,
} from "@grpc/grpc-js";
import { makeGenericClientConstructor } from "@grpc/grpc-js";

type In<M extends GenServiceMethods[string]> = MessageShape<M["input"]>;
type Out<M extends GenServiceMethods[string]> = MessageShape<M["output"]>;

/**
 * grpc-js service definition of a protobuf-es service, keyed by the method's local (lower
 * camel case) name; the proto name (`Route`) is set as `originalName`, so servers may
 * implement either and clients expose both.
 */
export type GrpcServiceDefinition<Methods extends GenServiceMethods> = {
  readonly [K in keyof Methods]: MethodDefinition<In<Methods[K]>, Out<Methods[K]>>;
};

/** Typed server implementation for `server.addService(definition, implementation)`. */
export type GrpcServiceImplementation<Methods extends GenServiceMethods> = {
  [K in keyof Methods]: Methods[K]["methodKind"] extends "unary"
    ? handleUnaryCall<In<Methods[K]>, Out<Methods[K]>>
    : Methods[K]["methodKind"] extends "server_streaming"
      ? handleServerStreamingCall<In<Methods[K]>, Out<Methods[K]>>
      : Methods[K]["methodKind"] extends "client_streaming"
        ? handleClientStreamingCall<In<Methods[K]>, Out<Methods[K]>>
        : handleBidiStreamingCall<In<Methods[K]>, Out<Methods[K]>>;
};

/** The call shapes grpc-js generates for a unary method (request may be a plain init object). */
export interface UnaryClientMethod<I extends DescMessage, O extends DescMessage> {
  (request: MessageInitShape<I>, callback: requestCallback<MessageShape<O>>): ClientUnaryCall;
  (
    request: MessageInitShape<I>,
    metadata: Metadata,
    callback: requestCallback<MessageShape<O>>,
  ): ClientUnaryCall;
  (
    request: MessageInitShape<I>,
    options: Partial<CallOptions>,
    callback: requestCallback<MessageShape<O>>,
  ): ClientUnaryCall;
  (
    request: MessageInitShape<I>,
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: requestCallback<MessageShape<O>>,
  ): ClientUnaryCall;
}

/** Typed grpc-js client of a protobuf-es service (methods by local name). */
export type GrpcClient<Methods extends GenServiceMethods> = Client & {
  [K in keyof Methods]: Methods[K]["methodKind"] extends "unary"
    ? UnaryClientMethod<Methods[K]["input"], Methods[K]["output"]>
    : Methods[K]["methodKind"] extends "server_streaming"
      ? (
          request: MessageInitShape<Methods[K]["input"]>,
          metadata?: Metadata,
          options?: Partial<CallOptions>,
        ) => ClientReadableStream<Out<Methods[K]>>
      : Methods[K]["methodKind"] extends "client_streaming"
        ? (
            metadata: Metadata,
            options: Partial<CallOptions>,
            callback: requestCallback<Out<Methods[K]>>,
          ) => ClientWritableStream<In<Methods[K]>>
        : (
            metadata?: Metadata,
            options?: Partial<CallOptions>,
          ) => ClientDuplexStream<In<Methods[K]>, Out<Methods[K]>>;
};

/** Constructor of a typed client, as returned by grpc-js `makeGenericClientConstructor`. */
export interface GrpcClientConstructor<Methods extends GenServiceMethods> {
  new (
    address: string,
    credentials: ChannelCredentials,
    options?: Partial<ChannelOptions>,
  ): GrpcClient<Methods>;
  readonly service: GrpcServiceDefinition<Methods>;
  readonly serviceName: string;
}

function serializer<D extends DescMessage>(schema: D): (value: MessageShape<D>) => Buffer {
  return (value) => {
    // Accept plain init objects too (`{ requestId: "a" }`), as callers naturally write them;
    // toBinary of a message of another type would silently drop fields, so re-create it.
    const message = isMessage(value, schema) ? value : create(schema, value as MessageInitShape<D>);
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  // fromBinary throws on malformed input; grpc-js turns that into an INTERNAL status for the
  // call instead of crashing the process.
  return (bytes) => fromBinary(schema, bytes);
}

const definitionCache = new WeakMap<object, unknown>();

/** grpc-js service definition for `server.addService` and `makeGenericClientConstructor`. */
export function grpcServiceDefinition<Methods extends GenServiceMethods>(
  service: GenService<Methods>,
): GrpcServiceDefinition<Methods> {
  const cached = definitionCache.get(service);
  if (cached !== undefined) return cached as GrpcServiceDefinition<Methods>;
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input) as (value: unknown) => Buffer,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as (value: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
    };
  }
  definitionCache.set(service, definition);
  return definition as GrpcServiceDefinition<Methods>;
}

/** Typed grpc-js client class for a protobuf-es service. */
export function grpcClientConstructor<Methods extends GenServiceMethods>(
  service: GenService<Methods>,
): GrpcClientConstructor<Methods> {
  return makeGenericClientConstructor(
    grpcServiceDefinition(service),
    service.typeName,
  ) as unknown as GrpcClientConstructor<Methods>;
}

/** Per-call options of {@link callUnary}. */
export interface UnaryCallOptions {
  /** Time the call may take before it fails with DEADLINE_EXCEEDED; no deadline when unset. */
  timeoutMs?: number;
  /** Request metadata (headers). */
  metadata?: Metadata;
}

/**
 * Promise form of a typed unary client method, e.g. `callUnary(client, client.route, req)`;
 * the client is passed so the method runs with its `this`. Rejects with the grpc-js
 * `ServiceError` (which carries `code`, `details` and `metadata`).
 */
export function callUnary<I extends DescMessage, O extends DescMessage>(
  client: Client,
  method: UnaryClientMethod<I, O>,
  request: MessageInitShape<I>,
  options: UnaryCallOptions = {},
): Promise<MessageShape<O>> {
  const callOptions: Partial<CallOptions> = {};
  if (options.timeoutMs !== undefined) {
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs < 0) {
      return Promise.reject(
        new RangeError(`timeoutMs must be a finite number >= 0, got ${String(options.timeoutMs)}`),
      );
    }
    callOptions.deadline = Date.now() + options.timeoutMs;
  }
  return new Promise((resolve, reject) => {
    const callback = (error: ServiceError | null, response?: MessageShape<O>): void => {
      if (error) reject(error);
      else if (response === undefined) reject(new Error("gRPC call completed without a response"));
      else resolve(response);
    };
    // `call` on an overloaded signature only sees the last overload; the arguments below
    // match the (request, [metadata,] options, callback) overloads exactly.
    const invoke = method as (this: Client, ...args: unknown[]) => ClientUnaryCall;
    if (options.metadata) invoke.call(client, request, options.metadata, callOptions, callback);
    else invoke.call(client, request, callOptions, callback);
  });
}
