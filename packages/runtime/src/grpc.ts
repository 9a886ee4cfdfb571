// gRPC bootstrap: a server that binds an explicit host:port (port 0 = ephemeral, as tests need) and shuts
// down gracefully within a bound, and a client whose every call carries a deadline. A call without a
// deadline can hang forever on a half-dead peer, so the client makes it impossible.

import type { Message, MessageInitShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import type {
  ChannelOptions,
  ClientReadableStream,
  MethodDefinition,
  ServiceDefinition,
  ServiceError,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { Client, credentials, Metadata, Server, ServerCredentials, status } from "@grpc/grpc-js";
import { GrpcCallError, GrpcServerError } from "./errors.js";

export interface GrpcServiceRegistration {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface StartGrpcServerOptions {
  /** `127.0.0.1`, `0.0.0.0`, `::1` … */
  host: string;
  /** 0 picks a free port; the bound one is in `address`. */
  port: number;
  services: readonly GrpcServiceRegistration[];
  /** Defaults to insecure (in-cluster traffic behind a mesh). */
  credentials?: ServerCredentials;
  channelOptions?: ChannelOptions;
}

export interface GrpcServer {
  server: Server;
  address: { host: string; port: number };
  /** `host:port` to dial. */
  target: string;
  /**
   * Stops accepting calls, lets running ones finish for up to `graceMs`, then cancels the rest.
   * `forced` says whether the bound was hit. Idempotent.
   */
  shutdown(graceMs: number): Promise<{ forced: boolean }>;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function startGrpcServer(options: StartGrpcServerOptions): Promise<GrpcServer> {
  const server = new Server(options.channelOptions);
  for (const { definition, implementation } of options.services)
    server.addService(definition, implementation);
  const requested = formatHostPort(options.host, options.port);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(requested, options.credentials ?? ServerCredentials.createInsecure(), (err, bound) => {
      if (err)
        reject(new GrpcServerError(`gRPC server cannot bind ${requested}: ${err.message}`, { cause: err }));
      else resolve(bound);
    });
  });
  const host = options.host.replace(/^\[|\]$/g, "");
  let stopping: Promise<{ forced: boolean }> | undefined;
  return {
    server,
    address: { host, port },
    target: formatHostPort(host, port),
    shutdown(graceMs) {
      stopping ??= new Promise((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve({ forced: true });
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve({ forced: false });
        });
      });
      return stopping;
    },
  };
}

export const DEFAULT_GRPC_DEADLINE_MS = 5_000;

export interface GrpcClientOptions {
  /** Deadline of every call that does not set its own. */
  defaultDeadlineMs?: number;
  /** Defaults to insecure. */
  credentials?: ReturnType<typeof credentials.createInsecure>;
  channelOptions?: ChannelOptions;
}

export function grpcClientOptionsWithDefaults(o: GrpcClientOptions): Required<GrpcClientOptions> {
  const r: Required<GrpcClientOptions> = {
    defaultDeadlineMs: o.defaultDeadlineMs ?? DEFAULT_GRPC_DEADLINE_MS,
    credentials: o.credentials ?? credentials.createInsecure(),
    channelOptions: o.channelOptions ?? {},
  };
  checkDeadlineMs(r.defaultDeadlineMs, "defaultDeadlineMs");
  return r;
}

export interface GrpcCallOptions {
  /** Overrides the client's default deadline for this call. Must be finite and > 0. */
  deadlineMs?: number;
  metadata?: Metadata;
  /** Cancels the call (e.g. when the HTTP client that caused it goes away). */
  signal?: AbortSignal;
}

// Inferred from the client-side halves only: the server-side (de)serializers may be typed more loosely.
type RequestShapeOf<M> = M extends { requestSerialize: (value: infer Req) => Buffer } ? Req : never;
// protobuf-es messages may be passed as plain init objects (`{ requestId: "a" }`): the @sluice/proto
// serializers re-create them, so callers need not import `create` and the schema for every call.
type RequestOf<M> =
  RequestShapeOf<M> extends Message ? MessageInitShape<GenMessage<RequestShapeOf<M>>> : RequestShapeOf<M>;
type ResponseOf<M> = M extends { responseDeserialize: (bytes: Buffer) => infer Res } ? Res : never;

export interface GrpcClient<D extends ServiceDefinition> {
  unary<K extends keyof D & string>(
    method: K,
    request: RequestOf<D[K]>,
    options?: GrpcCallOptions,
  ): Promise<ResponseOf<D[K]>>;
  serverStream<K extends keyof D & string>(
    method: K,
    request: RequestOf<D[K]>,
    options?: GrpcCallOptions,
  ): ClientReadableStream<ResponseOf<D[K]>>;
  /** The underlying grpc-js client, e.g. for `waitForReady`. Calls made on it directly bypass deadlines. */
  raw: Client;
  close(): void;
}

export function createGrpcClient<D extends ServiceDefinition>(
  definition: D,
  target: string,
  options: GrpcClientOptions = {},
): GrpcClient<D> {
  const o = grpcClientOptionsWithDefaults(options);
  const client = new Client(target, o.credentials, o.channelOptions);
  const methodOf = (name: string, streaming: boolean) => {
    const m = (definition as Record<string, MethodDefinition<unknown, unknown>>)[name];
    if (m === undefined) throw new TypeError(`gRPC service has no method "${name}"`);
    if (m.requestStream || m.responseStream !== streaming) {
      throw new TypeError(`gRPC method "${name}" is not ${streaming ? "server-streaming" : "unary"}`);
    }
    return m;
  };
  const deadlineOf = (call?: GrpcCallOptions) => {
    const ms = call?.deadlineMs ?? o.defaultDeadlineMs;
    checkDeadlineMs(ms, "deadlineMs");
    return new Date(Date.now() + ms);
  };
  return {
    raw: client,
    close: () => client.close(),
    unary(method, request, call) {
      const m = methodOf(method, false);
      const deadline = deadlineOf(call);
      return new Promise((resolve, reject) => {
        if (call?.signal?.aborted) {
          reject(
            new GrpcCallError(`${m.path}: CANCELLED before start`, {
              code: status.CANCELLED,
              method: m.path,
            }),
          );
          return;
        }
        const onAbort = () => grpcCall.cancel();
        const grpcCall = client.makeUnaryRequest(
          m.path,
          m.requestSerialize,
          m.responseDeserialize,
          request,
          call?.metadata ?? new Metadata(),
          { deadline },
          (err, response) => {
            call?.signal?.removeEventListener("abort", onAbort);
            if (err) reject(translateError(err, m.path));
            else resolve(response as ResponseOf<D[typeof method]>);
          },
        );
        call?.signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    serverStream(method, request, call) {
      const m = methodOf(method, true);
      const stream = client.makeServerStreamRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        request,
        call?.metadata ?? new Metadata(),
        { deadline: deadlineOf(call) },
      );
      if (call?.signal) {
        const onAbort = () => stream.cancel();
        if (call.signal.aborted) onAbort();
        else call.signal.addEventListener("abort", onAbort, { once: true });
        stream.once("close", () => call.signal?.removeEventListener("abort", onAbort));
      }
      return stream as ClientReadableStream<ResponseOf<D[typeof method]>>;
    },
  };
}

function checkDeadlineMs(ms: number, what: string): void {
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new RangeError(`${what} must be a finite number of milliseconds > 0, got ${ms}`);
  }
}

function translateError(err: ServiceError, method: string): GrpcCallError {
  const name = status[err.code] ?? String(err.code);
  return new GrpcCallError(`${method}: ${name}: ${err.details}`, { code: err.code, method }, { cause: err });
}
